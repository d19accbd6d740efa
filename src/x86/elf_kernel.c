#include "x86/elf_kernel.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Largest program header table we accept; vmlinux has about five. */
#define MAX_PHDRS 64

static int check_header(const uint8_t *file, size_t size, const Elf64_Ehdr **out,
			struct vmp_error *err)
{
	if (size < sizeof(Elf64_Ehdr))
		return vmp_fail(err, -ENOEXEC, "kernel image is %zu bytes: too short for an ELF header", size);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return vmp_fail(err, -ENOEXEC,
				"kernel image is not an ELF file (vmproc boots an uncompressed vmlinux)");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64)
		return vmp_fail(err, -ENOEXEC, "kernel image is not a 64-bit x86 ELF file");
	if (eh->e_type != ET_EXEC)
		return vmp_fail(err, -ENOEXEC, "kernel image is not an ELF executable");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS)
		return vmp_fail(err, -ENOEXEC, "kernel image has a malformed program header table");
	if (eh->e_phoff > size || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
		return vmp_fail(err, -ENOEXEC, "kernel image is truncated (program headers past the end)");
	*out = eh;
	return 0;
}

int elf_kernel_load(struct guest_mem *mem, const uint8_t *file, size_t size,
		    struct elf_kernel *out, struct vmp_error *err)
{
	const Elf64_Ehdr *eh;
	int rc = check_header(file, size, &eh, err);
	if (rc)
		return rc;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(file + eh->e_phoff);
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned loaded = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		uint64_t off = ph[i].p_offset, filesz = ph[i].p_filesz, memsz = ph[i].p_memsz;
		uint64_t paddr = ph[i].p_paddr;
		if (filesz > memsz)
			return vmp_fail(err, -ENOEXEC, "kernel segment %u: file size exceeds memory size", i);
		if (off > size || filesz > size - off)
			return vmp_fail(err, -ENOEXEC,
					"kernel image is truncated: segment %u needs bytes up to %llu, file has %zu",
					i, (unsigned long long)(off + filesz), size);
		uint8_t *dst = guest_mem_ptr(mem, paddr, memsz);
		if (!dst)
			return vmp_fail(err, -ENOMEM,
					"kernel segment %u (0x%llx-0x%llx) does not fit in %llu MiB of guest memory",
					i, (unsigned long long)paddr, (unsigned long long)(paddr + memsz),
					(unsigned long long)(mem->ram_size >> 20));
		memcpy(dst, file + off, filesz);
		memset(dst + filesz, 0, memsz - filesz);
		if (paddr < lo)
			lo = paddr;
		if (paddr + memsz > hi)
			hi = paddr + memsz;
		loaded++;
	}
	if (!loaded)
		return vmp_fail(err, -ENOEXEC, "kernel image has no loadable segment");
	if (eh->e_entry < lo || eh->e_entry >= hi)
		return vmp_fail(err, -ENOEXEC, "kernel entry point 0x%llx is outside its segments",
				(unsigned long long)eh->e_entry);
	out->entry = eh->e_entry;
	out->load_lo = lo;
	out->load_hi = hi;
	return 0;
}

static const Elf64_Shdr *section_headers(const uint8_t *file, size_t size, unsigned *count)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
	    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size - eh->e_shoff)
		return NULL;
	*count = eh->e_shnum;
	return (const Elf64_Shdr *)(file + eh->e_shoff);
}

int elf_kernel_symbolize(const uint8_t *file, size_t size, uint64_t vaddr,
			 char *name, size_t name_len, uint64_t *offset)
{
	const Elf64_Ehdr *eh;
	if (check_header(file, size, &eh, NULL))
		return -ENOENT;
	unsigned nsh;
	const Elf64_Shdr *sh = section_headers(file, size, &nsh);
	if (!sh)
		return -ENOENT;
	for (unsigned i = 0; i < nsh; i++) {
		if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= nsh ||
		    sh[i].sh_entsize != sizeof(Elf64_Sym))
			continue;
		const Elf64_Shdr *strs = &sh[sh[i].sh_link];
		if (sh[i].sh_offset > size || sh[i].sh_size > size - sh[i].sh_offset ||
		    strs->sh_offset > size || strs->sh_size > size - strs->sh_offset)
			return -ENOENT;
		const Elf64_Sym *sym = (const Elf64_Sym *)(file + sh[i].sh_offset);
		uint64_t n = sh[i].sh_size / sizeof(Elf64_Sym);
		const Elf64_Sym *best = NULL;
		for (uint64_t k = 0; k < n; k++) {
			unsigned type = ELF64_ST_TYPE(sym[k].st_info);
			if (type != STT_FUNC && type != STT_NOTYPE)
				continue;
			if (sym[k].st_value > vaddr || sym[k].st_name >= strs->sh_size)
				continue;
			if (sym[k].st_size && vaddr - sym[k].st_value >= sym[k].st_size)
				continue;
			if (!best || sym[k].st_value > best->st_value)
				best = &sym[k];
		}
		if (!best)
			return -ENOENT;
		const char *s = (const char *)file + strs->sh_offset + best->st_name;
		size_t maxlen = strs->sh_size - best->st_name;
		size_t len = strnlen(s, maxlen);
		if (len == maxlen || len == 0)
			return -ENOENT;
		snprintf(name, name_len, "%.*s", (int)len, s);
		*offset = vaddr - best->st_value;
		return 0;
	}
	return -ENOENT;
}
