#include "x86/elf_kernel.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Largest program header table we accept; vmlinux has about five. */
#define MAX_PHDRS 64

/* The file is an untrusted byte buffer: headers are copied out with
 * memcpy, never read through misaligned struct pointers. */
static Elf64_Phdr phdr_at(const uint8_t *file, uint64_t phoff, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, file + phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

static int check_header(const uint8_t *file, size_t size, Elf64_Ehdr *out, struct vmp_error *err)
{
	if (size < sizeof(Elf64_Ehdr))
		return vmp_fail(err, -ENOEXEC,
		                "kernel image is %zu bytes: too short for an ELF header", size);
	Elf64_Ehdr ehdr;
	const Elf64_Ehdr *eh = &ehdr;
	memcpy(&ehdr, file, sizeof(ehdr));
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return vmp_fail(
		    err, -ENOEXEC,
		    "kernel image is not an ELF file (vmproc boots an uncompressed vmlinux)");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64)
		return vmp_fail(err, -ENOEXEC, "kernel image is not a 64-bit x86 ELF file");
	if (eh->e_type != ET_EXEC)
		return vmp_fail(err, -ENOEXEC, "kernel image is not an ELF executable");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS)
		return vmp_fail(err, -ENOEXEC, "kernel image has a malformed program header table");
	if (eh->e_phoff > size || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
		return vmp_fail(err, -ENOEXEC,
		                "kernel image is truncated (program headers past the end)");
	*out = ehdr;
	return 0;
}

int elf_kernel_load(struct guest_mem *mem, const uint8_t *file, size_t size, struct elf_kernel *out,
                    struct vmp_error *err)
{
	Elf64_Ehdr eh;
	int rc = check_header(file, size, &eh, err);
	if (rc)
		return rc;
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned loaded = 0;
	bool entry_loaded = false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = phdr_at(file, eh.e_phoff, i);
		if (ph.p_type != PT_LOAD)
			continue;
		uint64_t off = ph.p_offset, filesz = ph.p_filesz, memsz = ph.p_memsz;
		uint64_t paddr = ph.p_paddr;
		if (filesz > memsz)
			return vmp_fail(err, -ENOEXEC,
			                "kernel segment %u: file size exceeds memory size", i);
		if (off > size || filesz > size - off)
			return vmp_fail(err, -ENOEXEC,
			                "kernel image is truncated: segment %u needs bytes up to "
			                "%llu, file has %zu",
			                i, (unsigned long long)off + filesz, size);
		uint8_t *dst = guest_mem_ptr(mem, paddr, memsz);
		if (!dst)
			return vmp_fail(err, -ENOMEM,
			                "kernel segment %u (0x%llx-0x%llx) does not fit in %llu "
			                "MiB of guest memory",
			                i, (unsigned long long)paddr,
			                (unsigned long long)paddr + memsz,
			                (unsigned long long)(mem->ram_size >> 20));
		memcpy(dst, file + off, filesz);
		memset(dst + filesz, 0, memsz - filesz);
		if (eh.e_entry >= paddr && eh.e_entry - paddr < memsz)
			entry_loaded = true;
		if (paddr < lo)
			lo = paddr;
		if (paddr + memsz > hi)
			hi = paddr + memsz;
		loaded++;
	}
	if (!loaded)
		return vmp_fail(err, -ENOEXEC, "kernel image has no loadable segment");
	if (!entry_loaded)
		return vmp_fail(err, -ENOEXEC, "kernel entry point 0x%llx is outside its segments",
		                (unsigned long long)eh.e_entry);
	out->entry = eh.e_entry;
	out->load_lo = lo;
	out->load_hi = hi;
	return 0;
}

static Elf64_Shdr shdr_at(const uint8_t *file, uint64_t shoff, unsigned i)
{
	Elf64_Shdr sh;
	memcpy(&sh, file + shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
	return sh;
}

static bool section_in_file(const Elf64_Shdr *sh, size_t size)
{
	return sh->sh_offset <= size && sh->sh_size <= size - sh->sh_offset;
}

/* Only sized function symbols count: zero-size markers (_text, __brk_limit,
 * absolute symbols) would otherwise "contain" every later address. */
static bool symbol_contains(const Elf64_Sym *sym, uint64_t vaddr)
{
	unsigned type = ELF64_ST_TYPE(sym->st_info);
	return (type == STT_FUNC || type == STT_NOTYPE) && sym->st_size != 0 &&
	       sym->st_shndx != SHN_UNDEF && sym->st_shndx < SHN_LORESERVE &&
	       vaddr >= sym->st_value && vaddr - sym->st_value < sym->st_size;
}

/* The file's symbol table and its string table: the first SHT_SYMTAB
 * section, both sections checked to lie within the file. */
static int find_symtab(const uint8_t *file, size_t size, Elf64_Ehdr *eh, Elf64_Shdr *sh,
                       Elf64_Shdr *strs)
{
	if (check_header(file, size, eh, NULL))
		return -ENOENT;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
	    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size - eh->e_shoff)
		return -ENOENT;
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		*sh = shdr_at(file, eh->e_shoff, i);
		if (sh->sh_type != SHT_SYMTAB || sh->sh_link >= eh->e_shnum ||
		    sh->sh_entsize != sizeof(Elf64_Sym))
			continue;
		*strs = shdr_at(file, eh->e_shoff, sh->sh_link);
		if (!section_in_file(sh, size) || !section_in_file(strs, size))
			return -ENOENT;
		return 0;
	}
	return -ENOENT;
}

int elf_kernel_symbolize(const uint8_t *file, size_t size, uint64_t vaddr, char *name,
                         size_t name_len, uint64_t *offset)
{
	uint64_t start, sym_size;
	int rc = elf_kernel_symbol_at(file, size, vaddr, name, name_len, &start, &sym_size);
	if (!rc)
		*offset = vaddr - start;
	return rc;
}

int elf_kernel_symbol_at(const uint8_t *file, size_t size, uint64_t vaddr, char *name,
                         size_t name_len, uint64_t *start, uint64_t *sym_size)
{
	Elf64_Ehdr eh;
	Elf64_Shdr sh, strs;
	if (find_symtab(file, size, &eh, &sh, &strs))
		return -ENOENT;
	uint64_t n = sh.sh_size / sizeof(Elf64_Sym);
	bool found = false;
	Elf64_Sym best = {0};
	for (uint64_t k = 0; k < n; k++) {
		Elf64_Sym sym;
		memcpy(&sym, file + sh.sh_offset + k * sizeof(sym), sizeof(sym));
		if (sym.st_name >= strs.sh_size || !symbol_contains(&sym, vaddr))
			continue;
		if (!found || sym.st_value > best.st_value)
			best = sym;
		found = true;
	}
	if (!found)
		return -ENOENT;
	const char *s = (const char *)file + strs.sh_offset + best.st_name;
	size_t maxlen = strs.sh_size - best.st_name;
	size_t len = strnlen(s, maxlen);
	if (len == maxlen || len == 0)
		return -ENOENT;
	snprintf(name, name_len, "%.*s", (int)len, s);
	*start = best.st_value;
	*sym_size = best.st_size;
	return 0;
}

int elf_kernel_read_object(const uint8_t *file, size_t size, const char *name, void *buf,
                           size_t len)
{
	Elf64_Ehdr eh;
	Elf64_Shdr sh, strs;
	if (find_symtab(file, size, &eh, &sh, &strs))
		return -ENOENT;
	size_t name_len = strlen(name);
	uint64_t n = sh.sh_size / sizeof(Elf64_Sym);
	for (uint64_t k = 0; k < n; k++) {
		Elf64_Sym sym;
		memcpy(&sym, file + sh.sh_offset + k * sizeof(sym), sizeof(sym));
		if (ELF64_ST_TYPE(sym.st_info) != STT_OBJECT || sym.st_size < len ||
		    sym.st_name >= strs.sh_size || strs.sh_size - sym.st_name <= name_len ||
		    memcmp(file + strs.sh_offset + sym.st_name, name, name_len + 1) != 0)
			continue;
		if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= eh.e_shnum)
			return -ENOENT;
		Elf64_Shdr data = shdr_at(file, eh.e_shoff, sym.st_shndx);
		if (data.sh_type != SHT_PROGBITS || !section_in_file(&data, size) ||
		    sym.st_value < data.sh_addr || sym.st_value - data.sh_addr > data.sh_size ||
		    len > data.sh_size - (sym.st_value - data.sh_addr))
			return -ENOENT;
		memcpy(buf, file + data.sh_offset + (sym.st_value - data.sh_addr), len);
		return 0;
	}
	return -ENOENT;
}
