/* A fake virtio-mmio driver for unit tests: the register map (virtio 1.x,
 * 4.2.2) and the steps a Linux driver takes, driven through
 * virtio_mmio_access on the transport given to mmio_driver_attach. */
#ifndef VMP_TESTS_MMIO_DRIVER_H
#define VMP_TESTS_MMIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util/error.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"

#define R_MAGIC               0x000
#define R_VERSION             0x004
#define R_DEVICE_ID           0x008
#define R_VENDOR_ID           0x00c
#define R_DEVICE_FEATURES     0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES     0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL           0x030
#define R_QUEUE_NUM_MAX       0x034
#define R_QUEUE_NUM           0x038
#define R_QUEUE_READY         0x044
#define R_QUEUE_NOTIFY        0x050
#define R_INTERRUPT_STATUS    0x060
#define R_INTERRUPT_ACK       0x064
#define R_STATUS              0x070
#define R_QUEUE_DESC_LOW      0x080
#define R_QUEUE_DESC_HIGH     0x084
#define R_QUEUE_DRIVER_LOW    0x090
#define R_QUEUE_DRIVER_HIGH   0x094
#define R_QUEUE_DEVICE_LOW    0x0a0
#define R_QUEUE_DEVICE_HIGH   0x0a4
#define R_CONFIG_GENERATION   0x0fc
#define R_CONFIG              0x100

#define S_ACKNOWLEDGE 1u
#define S_DRIVER      2u
#define S_DRIVER_OK   4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 0x40u

static struct virtio_mmio *drv_t;
static struct vmp_error *drv_err;

static inline void mmio_driver_attach(struct virtio_mmio *t, struct vmp_error *err)
{
	drv_t = t;
	drv_err = err;
}

/* A 32-bit register read; 0xdeadbeef if the access failed. */
static inline uint32_t rd(uint64_t off)
{
	uint8_t b[4] = {0xee, 0xee, 0xee, 0xee};
	if (virtio_mmio_access(drv_t, off, b, 4, false, drv_err))
		return 0xdeadbeef;
	uint32_t v;
	memcpy(&v, b, 4);
	return v;
}

static inline int wr(uint64_t off, uint32_t v)
{
	uint8_t b[4];
	memcpy(b, &v, 4);
	return virtio_mmio_access(drv_t, off, b, 4, true, drv_err);
}

static inline uint64_t device_features(void)
{
	wr(R_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = rd(R_DEVICE_FEATURES);
	wr(R_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = rd(R_DEVICE_FEATURES);
	return lo | hi << 32;
}

static inline void write_driver_features(uint64_t f)
{
	wr(R_DRIVER_FEATURES_SEL, 0);
	wr(R_DRIVER_FEATURES, (uint32_t)f);
	wr(R_DRIVER_FEATURES_SEL, 1);
	wr(R_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

/* Steps 1-6 of driver initialisation; returns whether FEATURES_OK stuck. */
static inline bool negotiate(uint64_t f)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, S_ACKNOWLEDGE);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	write_driver_features(f);
	wr(R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	return (rd(R_STATUS) & S_FEATURES_OK) != 0;
}

/* Selects queue q, gives its size and ring addresses, and enables it;
 * returns what the QueueReady write returned. */
static inline int setup_queue_at(unsigned q, uint32_t num, uint64_t desc, uint64_t avail,
                                 uint64_t used)
{
	wr(R_QUEUE_SEL, q);
	wr(R_QUEUE_NUM, num);
	wr(R_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(R_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(R_QUEUE_DRIVER_LOW, (uint32_t)avail);
	wr(R_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	wr(R_QUEUE_DEVICE_LOW, (uint32_t)used);
	wr(R_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	return wr(R_QUEUE_READY, 1);
}

/* Writes descriptor d into slot of the table at desc (in guest memory
 * ram) and publishes slot as the next head in the avail ring at avail of
 * a queue of size entries. */
static inline void publish_desc(uint8_t *ram, uint64_t desc, uint64_t avail, uint16_t size,
                                uint16_t slot, struct virtq_desc d)
{
	memcpy(ram + desc + 16ull * slot, &d, sizeof(d));
	uint16_t idx;
	memcpy(&idx, ram + avail + 2, 2);
	memcpy(ram + avail + 4 + 2ull * (idx & (size - 1)), &slot, 2);
	idx++;
	memcpy(ram + avail + 2, &idx, 2);
}

#endif
