#include "vmm/profile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x86/elf_kernel.h"

#define PROFILE_TOP 40

static void append(struct profile *p, uint64_t rip)
{
	if (p->n == p->cap) {
		if (p->cap >= PROFILE_MAX_SAMPLES)
			return;
		size_t cap = p->cap ? p->cap * 2 : 4096;
		uint64_t *r = realloc(p->rip, cap * sizeof(*r));
		if (!r)
			return;
		p->rip = r;
		p->cap = cap;
	}
	p->rip[p->n++] = rip;
}

uint64_t profile_record(struct profile *p, uint64_t rip)
{
	bool stuck = p->n && p->rip[p->n - 1] == rip;
	if (!p->interval_ns || !stuck)
		p->interval_ns = PROFILE_INTERVAL_NS;
	else if (p->interval_ns < PROFILE_MAX_INTERVAL_NS)
		p->interval_ns *= 2;
	/* One sample stands for the interval it covered, so a long stall
	 * weighs what it cost. */
	uint64_t weight = p->interval_ns / PROFILE_INTERVAL_NS;
	for (uint64_t i = 0; i < (stuck ? 1 : weight); i++)
		append(p, rip);
	return p->interval_ns;
}

void profile_merge(struct profile *dst, struct profile *src)
{
	if (!dst->n) {
		free(dst->rip);
		dst->rip = src->rip;
		dst->n = src->n;
		dst->cap = src->cap;
		src->rip = NULL;
		src->n = src->cap = 0;
	} else {
		for (size_t i = 0; i < src->n; i++)
			append(dst, src->rip[i]);
		src->n = 0;
	}
}

struct bucket {
	char name[64];
	size_t count;
};

static int by_rip(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int by_count(const void *a, const void *b)
{
	const struct bucket *x = a, *y = b;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

/* Samples sorted by RIP, so runs of one function are adjacent once each
 * RIP is named; names are looked up once per distinct RIP. */
static size_t aggregate(struct profile *p, const uint8_t *kernel, size_t size, struct bucket *b,
                        size_t max)
{
	size_t nb = 0;
	uint64_t fn_start = 1, fn_end = 0; /* the function of the previous run */
	char name[64] = "";
	qsort(p->rip, p->n, sizeof(*p->rip), by_rip);
	for (size_t i = 0; i < p->n;) {
		uint64_t rip = p->rip[i];
		size_t j = i;
		/* Sorted samples: everything up to the function's end is its. */
		if (rip >= fn_start && rip < fn_end) {
			while (j < p->n && p->rip[j] < fn_end)
				j++;
		} else {
			uint64_t sz = 0;
			fn_start = rip;
			fn_end = rip + 1;
			if (rip < 0xffff800000000000ull)
				snprintf(name, sizeof(name), "(guest user space)");
			else if (!kernel || elf_kernel_symbol_at(kernel, size, rip, name,
			                                         sizeof(name), &fn_start, &sz))
				snprintf(name, sizeof(name), "(unknown kernel address)");
			else
				fn_end = fn_start + sz;
			while (j < p->n && p->rip[j] < fn_end)
				j++;
		}
		size_t k;
		for (k = 0; k < nb && strcmp(b[k].name, name) != 0; k++)
			;
		if (k == nb && nb < max) {
			snprintf(b[nb].name, sizeof(b[nb].name), "%s", name);
			b[nb++].count = 0;
		}
		if (k < nb)
			b[k].count += j - i;
		i = j;
	}
	return nb;
}

void profile_finish(struct profile *p, const uint8_t *kernel, size_t kernel_size)
{
	if (!p->n)
		return;
	size_t max = 4096;
	struct bucket *b = calloc(max, sizeof(*b));
	size_t len = 64 + PROFILE_TOP * 96;
	char *out = malloc(len);
	if (!b || !out) {
		free(b);
		free(out);
		return;
	}
	size_t nb = aggregate(p, kernel, kernel_size, b, max);
	qsort(b, nb, sizeof(*b), by_count);
	size_t used = (size_t)snprintf(
	    out, len, "guest profile: %zu samples, one per 2 ms of vCPU time\n", p->n);
	for (size_t i = 0; i < nb && i < PROFILE_TOP && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "  %6.2f%% %7zu  %s\n",
		                         100.0 * (double)b[i].count / (double)p->n, b[i].count,
		                         b[i].name);
	free(b);
	free(p->report);
	p->report = out;
}

void profile_release(struct profile *p)
{
	free(p->rip);
	free(p->report);
	memset(p, 0, sizeof(*p));
}
