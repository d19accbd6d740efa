/* Where the VMM puts things in guest physical memory before the first
 * instruction. The kernel itself goes where its ELF headers say (16 MiB
 * for a default x86_64 vmlinux). */
#ifndef VMP_X86_LAYOUT_H
#define VMP_X86_LAYOUT_H

#define LAYOUT_MPTABLE 0x0ull /* MP floating pointer: first place Linux looks */
#define LAYOUT_GDT     0x500ull
/* The MP configuration table, which the floating pointer points to: past
 * the BIOS data area (0x400..0x4ff), whose EBDA and base-memory words
 * Linux reads to decide how much low memory to reserve. */
#define LAYOUT_MPC_TABLE         0x1000ull
#define LAYOUT_MPC_TABLE_MAX     0x1000ull
#define LAYOUT_ZERO_PAGE         0x7000ull /* struct boot_params */
#define LAYOUT_SETUP_DATA        0x8000ull /* linked list of struct setup_data */
#define LAYOUT_SETUP_DATA_MAX    0x1000ull
#define LAYOUT_PML4              0x9000ull
#define LAYOUT_PDPT              0xa000ull
#define LAYOUT_PD                0xb000ull /* 512 x 2 MiB: identity map of 1 GiB */
#define LAYOUT_CMDLINE           0x20000ull
#define LAYOUT_CMDLINE_MAX       2048 /* x86 COMMAND_LINE_SIZE, with NUL */
#define LAYOUT_EBDA_START        0x9fc00ull
#define LAYOUT_HIMEM_START       0x100000ull
#define LAYOUT_IDENTITY_MAP_SIZE (1ull << 30)

/* virtio-mmio devices: one 4 KiB window each, in the 32-bit MMIO hole. */
#define LAYOUT_VIRTIO_MMIO_BASE 0xd0000000ull
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ull

#endif
