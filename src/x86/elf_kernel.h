/* Loading an uncompressed Linux kernel (vmlinux, ELF64) into guest memory,
 * and naming the kernel function that contains a guest address. Both work
 * on a byte buffer so they can be tested with crafted files. */
#ifndef VMP_X86_ELF_KERNEL_H
#define VMP_X86_ELF_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "mem/guest_mem.h"

struct elf_kernel {
	uint64_t entry;   /* physical entry address (startup_64) */
	uint64_t load_lo; /* lowest physical byte loaded */
	uint64_t load_hi; /* one past the highest physical byte (incl. bss) */
};

/* Validates the ELF header and program headers, copies every PT_LOAD
 * segment to its physical address and zero-fills its bss. Rejects
 * anything that is not an x86_64 executable or whose segments do not fit
 * in guest RAM, with a message saying which. */
int elf_kernel_load(struct guest_mem *mem, const uint8_t *file, size_t size, struct elf_kernel *out,
                    struct vmp_error *err);

/* Finds the function symbol containing vaddr in the ELF's .symtab.
 * Returns 0 and fills name/offset, or -ENOENT. */
int elf_kernel_symbolize(const uint8_t *file, size_t size, uint64_t vaddr, char *name,
                         size_t name_len, uint64_t *offset);

/* Like elf_kernel_symbolize, returning the symbol's start and size. */
int elf_kernel_symbol_at(const uint8_t *file, size_t size, uint64_t vaddr, char *name,
                         size_t name_len, uint64_t *start, uint64_t *sym_size);

/* Copies the initial value of the data object called name (len bytes,
 * from the file's section contents) into buf. Returns 0, or -ENOENT if
 * there is no such symbol of at least len bytes with contents in the
 * file. */
int elf_kernel_read_object(const uint8_t *file, size_t size, const char *name, void *buf,
                           size_t len);

#endif
