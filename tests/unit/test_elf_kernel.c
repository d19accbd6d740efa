/* elf_kernel_load / elf_kernel_symbolize on ELF files built in memory:
 * a valid vmlinux-like image (two PT_LOAD segments, one with bss, and a
 * symtab), then the same image broken in every way the loader must
 * survive. If build/vmlinux exists, the real kernel is loaded too;
 * otherwise that test is not run and a "SKIP" line says why. */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mem/guest_mem.h"
#include "x86/elf_kernel.h"

#define MiB        (1ull << 20)
#define MEM_SIZE   (4 * MiB)
#define KERNEL_MAP 0xffffffff80000000ull /* __START_KERNEL_map */

/* File layout of the crafted image. */
#define OFF_PH       0x40
#define OFF_SEG1     0x100
#define SEG1_SIZE    0x100
#define OFF_SEG2     0x200
#define SEG2_FILESZ  0x40
#define SEG2_MEMSZ   0x1000
#define OFF_SYM      0x240
#define NSYMS        6
#define OFF_STR      0x2f0
#define OFF_SH       0x340
#define NSECTIONS    3
#define FILE_SIZE    (OFF_SH + NSECTIONS * 64)
#define SEG_DATA_END (OFF_SEG2 + SEG2_FILESZ)

#define PADDR1 0x200000ull
#define PADDR2 0x300000ull
#define ENTRY  (PADDR1 + 0x10)

static const char strtab[] = "\0func_a\0func_b\0data_x\0entry_lbl\0abs_sym\0unterminated";
#define NAME_FUNC_A    1
#define NAME_FUNC_B    8
#define NAME_DATA_X    15
#define NAME_ENTRY_LBL 22
#define NAME_ABS_SYM   32
#define NAME_UNTERM    40

static uint64_t g_store[FILE_SIZE / 8 + 1];
static uint8_t *const g_file = (uint8_t *)g_store;
static uint8_t *g_guest;
static struct guest_mem g_mem;
static struct vmp_error g_err;
static struct elf_kernel g_k;

static Elf64_Ehdr *eh(void)
{
	return (Elf64_Ehdr *)g_file;
}
static Elf64_Phdr *ph(unsigned i)
{
	return (Elf64_Phdr *)(g_file + OFF_PH) + i;
}
static Elf64_Sym *sym(unsigned i)
{
	return (Elf64_Sym *)(g_file + OFF_SYM) + i;
}
static Elf64_Shdr *sh(unsigned i)
{
	return (Elf64_Shdr *)(g_file + OFF_SH) + i;
}

static void build_elf(void)
{
	memset(g_store, 0, sizeof(g_store));
	Elf64_Ehdr *e = eh();
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = ENTRY;
	e->e_phoff = OFF_PH;
	e->e_shoff = OFF_SH;
	e->e_ehsize = sizeof(Elf64_Ehdr);
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = 2;
	e->e_shentsize = sizeof(Elf64_Shdr);
	e->e_shnum = NSECTIONS;
	e->e_shstrndx = SHN_UNDEF;

	*ph(0) = (Elf64_Phdr){.p_type = PT_LOAD,
	                      .p_flags = PF_R | PF_X,
	                      .p_offset = OFF_SEG1,
	                      .p_vaddr = KERNEL_MAP + PADDR1,
	                      .p_paddr = PADDR1,
	                      .p_filesz = SEG1_SIZE,
	                      .p_memsz = SEG1_SIZE,
	                      .p_align = 0x1000};
	*ph(1) = (Elf64_Phdr){.p_type = PT_LOAD,
	                      .p_flags = PF_R | PF_W,
	                      .p_offset = OFF_SEG2,
	                      .p_vaddr = KERNEL_MAP + PADDR2,
	                      .p_paddr = PADDR2,
	                      .p_filesz = SEG2_FILESZ,
	                      .p_memsz = SEG2_MEMSZ,
	                      .p_align = 0x1000};
	for (unsigned i = 0; i < SEG1_SIZE; i++)
		g_file[OFF_SEG1 + i] = (uint8_t)(0x90 ^ i);
	for (unsigned i = 0; i < SEG2_FILESZ; i++)
		g_file[OFF_SEG2 + i] = (uint8_t)(0x40 + i);

	*sym(1) = (Elf64_Sym){.st_name = NAME_FUNC_A,
	                      .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
	                      .st_shndx = 1,
	                      .st_value = KERNEL_MAP + PADDR1,
	                      .st_size = 0x40};
	*sym(2) = (Elf64_Sym){.st_name = NAME_FUNC_B,
	                      .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
	                      .st_shndx = 1,
	                      .st_value = KERNEL_MAP + PADDR1 + 0x40,
	                      .st_size = 0x80};
	*sym(3) = (Elf64_Sym){.st_name = NAME_DATA_X,
	                      .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
	                      .st_shndx = 1,
	                      .st_value = KERNEL_MAP + PADDR2,
	                      .st_size = 0x10};
	/* Assembly entry points (SYM_CODE_START) are sized NOTYPE symbols. */
	*sym(4) = (Elf64_Sym){.st_name = NAME_ENTRY_LBL,
	                      .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE),
	                      .st_shndx = 1,
	                      .st_value = KERNEL_MAP + PADDR1 + 0xd0,
	                      .st_size = 0x20};
	/* A function whose name runs to the end of the string table. */
	*sym(5) = (Elf64_Sym){.st_name = NAME_UNTERM,
	                      .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
	                      .st_shndx = 1,
	                      .st_value = KERNEL_MAP + PADDR1 + 0x400,
	                      .st_size = 0x10};
	memcpy(g_file + OFF_STR, strtab, sizeof(strtab) - 1); /* no final NUL */

	*sh(1) = (Elf64_Shdr){.sh_type = SHT_SYMTAB,
	                      .sh_offset = OFF_SYM,
	                      .sh_size = NSYMS * sizeof(Elf64_Sym),
	                      .sh_link = 2,
	                      .sh_info = 1,
	                      .sh_addralign = 8,
	                      .sh_entsize = sizeof(Elf64_Sym)};
	*sh(2) = (Elf64_Shdr){.sh_type = SHT_STRTAB,
	                      .sh_offset = OFF_STR,
	                      .sh_size = sizeof(strtab) - 1,
	                      .sh_addralign = 1};
}

static int setup(void)
{
	if (!g_guest)
		g_guest = malloc(MEM_SIZE);
	if (!g_guest)
		return -1;
	memset(g_guest, 0xcc, MEM_SIZE);
	guest_mem_layout(&g_mem, g_guest, MEM_SIZE);
	build_elf();
	vmp_error_clear(&g_err);
	memset(&g_k, 0, sizeof(g_k));
	return 0;
}

#define SETUP()                                                                                    \
	do {                                                                                       \
		CHECK(setup() == 0);                                                               \
		if (!g_guest)                                                                      \
			return;                                                                    \
	} while (0)

static int load(size_t size)
{
	vmp_error_clear(&g_err);
	return elf_kernel_load(&g_mem, g_file, size, &g_k, &g_err);
}

/* The loader refuses with a message and reports no kernel. */
#define CHECK_REJECTED(what)                                                                       \
	do {                                                                                       \
		int rc_ = load(FILE_SIZE);                                                         \
		CHECK_MSG(rc_ < 0, "%s: rc %d", what, rc_);                                        \
		CHECK_MSG(g_err.code == rc_ && g_err.msg[0], "%s: no message", what);              \
	} while (0)

static int all_bytes(uint64_t gpa, uint64_t len, uint8_t v)
{
	for (uint64_t i = 0; i < len; i++)
		if (g_guest[gpa + i] != v)
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- */

static void loads_valid_image(void)
{
	SETUP();
	int rc = load(FILE_SIZE);
	CHECK_MSG(rc == 0, "rc %d: %s", rc, g_err.msg);
	CHECK(g_k.entry == ENTRY);
	CHECK(g_k.load_lo == PADDR1);
	CHECK(g_k.load_hi == PADDR2 + SEG2_MEMSZ);
	/* Segments at p_paddr (not p_vaddr), byte for byte. */
	CHECK(memcmp(g_guest + PADDR1, g_file + OFF_SEG1, SEG1_SIZE) == 0);
	CHECK(memcmp(g_guest + PADDR2, g_file + OFF_SEG2, SEG2_FILESZ) == 0);
	/* bss zeroed, and nothing written around the segments. */
	CHECK(all_bytes(PADDR2 + SEG2_FILESZ, SEG2_MEMSZ - SEG2_FILESZ, 0));
	CHECK(all_bytes(PADDR2 + SEG2_MEMSZ, 0x100, 0xcc));
	CHECK(all_bytes(PADDR1 - 0x100, 0x100, 0xcc));
	CHECK(all_bytes(PADDR1 + SEG1_SIZE, PADDR2 - PADDR1 - SEG1_SIZE, 0xcc));
	CHECK(all_bytes(0, PADDR1, 0xcc));
}

static void ignores_non_load_segments(void)
{
	SETUP();
	eh()->e_phnum = 3;
	/* A PT_NOTE that points nowhere sensible: not loaded, not checked. */
	*ph(2) = (Elf64_Phdr){.p_type = PT_NOTE,
	                      .p_offset = 0xfffffff0,
	                      .p_paddr = 1ull << 50,
	                      .p_filesz = 0x10000,
	                      .p_memsz = 0x10};
	/* Program headers now reach 0x40 + 3 * 56 = 0xe8 < OFF_SEG1. */
	int rc = load(FILE_SIZE);
	CHECK_MSG(rc == 0, "rc %d: %s", rc, g_err.msg);
	CHECK(g_k.load_lo == PADDR1 && g_k.load_hi == PADDR2 + SEG2_MEMSZ);
}

static void rejects_bad_headers(void)
{
	SETUP();
	g_file[0] = 0x7e;
	CHECK_REJECTED("bad magic");
	SETUP();
	memcpy(g_file, "MZ\x90\0", 4);
	CHECK_REJECTED("PE file");
	SETUP();
	eh()->e_ident[EI_CLASS] = ELFCLASS32;
	CHECK_REJECTED("ELFCLASS32");
	SETUP();
	eh()->e_ident[EI_CLASS] = ELFCLASSNONE;
	CHECK_REJECTED("ELFCLASSNONE");
	SETUP();
	eh()->e_ident[EI_DATA] = ELFDATA2MSB;
	CHECK_REJECTED("big endian");
	SETUP();
	eh()->e_machine = EM_386;
	CHECK_REJECTED("EM_386");
	SETUP();
	eh()->e_machine = EM_AARCH64;
	CHECK_REJECTED("EM_AARCH64");
	SETUP();
	eh()->e_type = ET_DYN;
	CHECK_REJECTED("ET_DYN");
	SETUP();
	eh()->e_type = ET_REL;
	CHECK_REJECTED("ET_REL");
	SETUP();
	eh()->e_type = ET_CORE;
	CHECK_REJECTED("ET_CORE");
	/* Nothing was loaded by any of these. */
	CHECK(all_bytes(PADDR1, SEG1_SIZE, 0xcc));
}

static void rejects_bad_program_header_table(void)
{
	SETUP();
	eh()->e_phnum = 0;
	CHECK_REJECTED("phnum 0");
	SETUP();
	eh()->e_phnum = 0xffff;
	CHECK_REJECTED("phnum 65535");
	SETUP();
	eh()->e_phnum = 1000;
	CHECK_REJECTED("phnum 1000");
	SETUP();
	eh()->e_phnum = 50; /* plausible count, but the table runs past the file */
	eh()->e_phoff = FILE_SIZE - 56 * 10;
	CHECK_REJECTED("phnum past end");
	SETUP();
	eh()->e_phentsize = 32;
	CHECK_REJECTED("phentsize 32");
	SETUP();
	eh()->e_phoff = FILE_SIZE;
	CHECK_REJECTED("phoff at end");
	SETUP();
	eh()->e_phoff = UINT64_MAX - 8 * 7; /* phoff + phnum * 56 wraps */
	CHECK_REJECTED("phoff wraps");
	SETUP();
	eh()->e_phoff = 1ull << 62;
	CHECK_REJECTED("phoff huge");
}

static void rejects_segment_outside_memory(void)
{
	SETUP();
	ph(1)->p_paddr = MEM_SIZE; /* just past the end */
	CHECK_REJECTED("paddr at end");
	SETUP();
	ph(1)->p_paddr = MEM_SIZE - 0x800; /* bss straddles the end */
	CHECK_REJECTED("bss straddles end");
	SETUP();
	ph(0)->p_paddr = UINT64_MAX - 0x7f; /* paddr + memsz wraps */
	CHECK_REJECTED("paddr wraps");
	SETUP();
	ph(1)->p_memsz = UINT64_MAX; /* bss of 2^64 bytes */
	CHECK_REJECTED("memsz huge");
	SETUP();
	ph(1)->p_memsz = UINT64_MAX - PADDR2 + 0x10; /* paddr + memsz wraps to small */
	CHECK_REJECTED("memsz wraps");
	SETUP();
	ph(0)->p_paddr = GUEST_MEM_MMIO_HOLE_START; /* in the hole */
	CHECK_REJECTED("paddr in hole");
	/* Guest memory past the regions was not written. */
	CHECK(g_guest[MEM_SIZE - 1] == 0xcc);
}

static void rejects_bad_segment_sizes(void)
{
	SETUP();
	ph(0)->p_filesz = SEG1_SIZE + 1; /* filesz > memsz */
	CHECK_REJECTED("filesz > memsz");
	SETUP();
	ph(1)->p_filesz = FILE_SIZE; /* memsz 0x1000 >= filesz, but past EOF */
	CHECK_REJECTED("filesz past EOF");
	SETUP();
	ph(1)->p_offset = FILE_SIZE - 0x20; /* data runs past EOF */
	CHECK_REJECTED("offset + filesz past EOF");
	SETUP();
	ph(1)->p_offset = FILE_SIZE + 1;
	ph(1)->p_filesz = 0;
	CHECK_REJECTED("offset past EOF");
	SETUP();
	ph(1)->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
	CHECK_REJECTED("offset wraps");
}

static void rejects_bad_entry(void)
{
	SETUP();
	eh()->e_entry = PADDR1 - 1;
	CHECK_REJECTED("entry below");
	SETUP();
	eh()->e_entry = PADDR2 + SEG2_MEMSZ; /* one past the end */
	CHECK_REJECTED("entry at end");
	SETUP();
	eh()->e_entry = KERNEL_MAP + PADDR1 + 0x10; /* virtual, not physical */
	CHECK_REJECTED("entry virtual");
	SETUP();
	eh()->e_entry = 0;
	CHECK_REJECTED("entry 0");
	/* The last byte of a segment is fine. */
	SETUP();
	eh()->e_entry = PADDR2 + SEG2_MEMSZ - 1;
	CHECK(load(FILE_SIZE) == 0 && g_k.entry == PADDR2 + SEG2_MEMSZ - 1);
}

static void rejects_entry_between_segments(void)
{
	/* Inside [load_lo, load_hi) but in no segment: nothing was loaded
	 * there, so the vCPU would start in untouched memory. */
	SETUP();
	eh()->e_entry = PADDR1 + SEG1_SIZE + 0x1000;
	CHECK_REJECTED("entry in the gap between segments");
}

static void rejects_no_load_segment(void)
{
	SETUP();
	ph(0)->p_type = PT_NOTE;
	ph(1)->p_type = PT_GNU_STACK;
	CHECK_REJECTED("no PT_LOAD");
	CHECK(all_bytes(PADDR1, SEG1_SIZE, 0xcc));
}

/* Every prefix of the valid file: the loader either rejects it or loads
 * it, and never reads past the buffer (each prefix gets an allocation of
 * exactly its size, so ASan catches any overread). */
static void truncated_files(void)
{
	SETUP();
	for (size_t len = 0; len <= FILE_SIZE; len++) {
		uint8_t *p = malloc(len ? len : 1);
		CHECK(p);
		if (!p)
			return;
		memcpy(p, g_file, len);
		vmp_error_clear(&g_err);
		int rc = elf_kernel_load(&g_mem, p, len, &g_k, &g_err);
		/* Sections are not needed to load: complete segment data is. */
		if (len >= SEG_DATA_END)
			CHECK_MSG(rc == 0, "len %zu: rc %d: %s", len, rc, g_err.msg);
		else
			CHECK_MSG(rc < 0 && g_err.msg[0], "len %zu: rc %d", len, rc);

		char name[64];
		uint64_t off = 0;
		rc = elf_kernel_symbolize(p, len, KERNEL_MAP + PADDR1 + 0x48, name, sizeof(name),
		                          &off);
		if (len == FILE_SIZE)
			CHECK_MSG(rc == 0 && strcmp(name, "func_b") == 0 && off == 8,
			          "full file: rc %d", rc);
		else
			CHECK_MSG(rc == -ENOENT, "len %zu: symbolize rc %d", len, rc);
		free(p);
	}
}

/* Runs fn in a child so undefined behaviour caught by a sanitizer (which
 * aborts) fails this test instead of the whole program. fn returns 0 when
 * the module behaved. */
static int run_isolated(int (*fn)(void))
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn());
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Table offsets that are not multiples of 8 are legal in a byte buffer;
 * the loader must load (or reject) such a file without misaligned
 * accesses. */
static int unaligned_tables_child(void)
{
	setup();
	/* Move the program headers to 0x41 and the section headers to 0x341. */
	memmove(g_file + 0x41, g_file + OFF_PH, 2 * sizeof(Elf64_Phdr));
	eh()->e_phoff = 0x41;
	memmove(g_file + OFF_SH + 1, g_file + OFF_SH, NSECTIONS * sizeof(Elf64_Shdr) - 1);
	eh()->e_shoff = OFF_SH + 1;
	int rc = load(FILE_SIZE);
	if (rc != 0 && !g_err.msg[0])
		return 2;
	if (rc == 0 && (g_k.entry != ENTRY || memcmp(g_guest + PADDR1, g_file + OFF_SEG1, 16)))
		return 3;
	char name[32];
	uint64_t off;
	rc = elf_kernel_symbolize(g_file, FILE_SIZE, KERNEL_MAP + PADDR1 + 8, name, sizeof(name),
	                          &off);
	if (rc != 0 && rc != -ENOENT)
		return 4;
	return 0;
}

static void unaligned_offsets_are_safe(void)
{
	int st = run_isolated(unaligned_tables_child);
	CHECK_MSG(st == 0, "child status %d (a sanitizer report above means a misaligned access)",
	          st);
}

/* ---------------------------------------------------------------- */

static int symbolize(uint64_t vaddr, char *name, size_t name_len, uint64_t *off)
{
	memset(name, 'X', name_len);
	*off = 0xdead;
	return elf_kernel_symbolize(g_file, FILE_SIZE, vaddr, name, name_len, off);
}

static void symbolize_finds_functions(void)
{
	SETUP();
	char name[64];
	uint64_t off;
	CHECK(symbolize(KERNEL_MAP + PADDR1, name, sizeof(name), &off) == 0);
	CHECK(strcmp(name, "func_a") == 0 && off == 0);
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 0x3f, name, sizeof(name), &off) == 0);
	CHECK(strcmp(name, "func_a") == 0 && off == 0x3f);
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 0x40, name, sizeof(name), &off) == 0);
	CHECK(strcmp(name, "func_b") == 0 && off == 0);
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 0xbf, name, sizeof(name), &off) == 0);
	CHECK(strcmp(name, "func_b") == 0 && off == 0x7f);
	/* Sized NOTYPE symbols (assembly entry points) count. */
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 0xd4, name, sizeof(name), &off) == 0);
	CHECK(strcmp(name, "entry_lbl") == 0 && off == 4);
	/* A short buffer gets a truncated, terminated name. */
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 0x41, name, 5, &off) == 0);
	CHECK(strcmp(name, "func") == 0 && off == 1);
}

static void symbolize_outside_is_enoent(void)
{
	SETUP();
	char name[64];
	uint64_t off;
	static const uint64_t outside[] = {
	    0,
	    PADDR1 + 0x10,              /* a physical address */
	    KERNEL_MAP + PADDR1 - 1,    /* just below func_a */
	    KERNEL_MAP + PADDR1 + 0xc0, /* after func_b, before entry_lbl */
	    KERNEL_MAP + PADDR1 + 0xf0, /* after entry_lbl */
	    KERNEL_MAP + PADDR2,        /* an object, not code */
	    KERNEL_MAP + PADDR2 + 4,
	    UINT64_MAX,
	};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
		CHECK_MSG(symbolize(outside[i], name, sizeof(name), &off) == -ENOENT,
		          "0x%llx: got %.20s+%llu", (unsigned long long)outside[i], name,
		          (unsigned long long)off);
	/* A name not terminated inside the string table is not used. */
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 0x404, name, sizeof(name), &off) == -ENOENT);
}

/* vmlinux has absolute, zero-sized NOTYPE symbols (phys_startup_64,
 * L4_START_KERNEL, ...) and zero-sized end markers (__brk_limit). They
 * contain no code: an address outside every function must not be
 * reported as one of them plus a huge offset. */
static void symbolize_ignores_unsized_markers(void)
{
	SETUP();
	/* A seventh symbol, fitting before the string table. */
	*sym(NSYMS) = (Elf64_Sym){.st_name = NAME_ABS_SYM,
	                          .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE),
	                          .st_shndx = SHN_ABS,
	                          .st_value = 0x1000000,
	                          .st_size = 0};
	sh(1)->sh_size = (NSYMS + 1) * sizeof(Elf64_Sym);
	char name[64];
	uint64_t off;
	CHECK(symbolize(KERNEL_MAP + PADDR1 + 8, name, sizeof(name), &off) == 0);
	CHECK(strcmp(name, "func_a") == 0 && off == 8);
	int rc = symbolize(KERNEL_MAP + PADDR1 - 0x1000, name, sizeof(name), &off);
	CHECK_MSG(rc == -ENOENT, "below the image: got %.20s+0x%llx", name,
	          (unsigned long long)off);
	rc = symbolize(KERNEL_MAP + PADDR1 + 0x2000, name, sizeof(name), &off);
	CHECK_MSG(rc == -ENOENT, "past every function: got %.20s+0x%llx", name,
	          (unsigned long long)off);
}

static void symbolize_rejects_corrupt_tables(void)
{
	char name[64];
	uint64_t off;
	uint64_t in_a = KERNEL_MAP + PADDR1 + 8;
	SETUP();
	CHECK(symbolize(in_a, name, sizeof(name), &off) == 0); /* baseline */

#define CORRUPT(what, stmt)                                                                        \
	do {                                                                                       \
		SETUP();                                                                           \
		stmt;                                                                              \
		int rc_ = symbolize(in_a, name, sizeof(name), &off);                               \
		CHECK_MSG(rc_ == -ENOENT, "%s: rc %d", what, rc_);                                 \
	} while (0)

	CORRUPT("not ELF", g_file[1] = 'X');
	CORRUPT("32-bit", eh()->e_ident[EI_CLASS] = ELFCLASS32);
	CORRUPT("no sections", eh()->e_shnum = 0);
	CORRUPT("shoff past EOF", eh()->e_shoff = FILE_SIZE + 64);
	CORRUPT("shoff wraps", eh()->e_shoff = UINT64_MAX - 63);
	CORRUPT("shnum past EOF", eh()->e_shnum = 4);
	CORRUPT("shnum huge", eh()->e_shnum = 0xffff);
	CORRUPT("shentsize", eh()->e_shentsize = 40);
	CORRUPT("symtab offset past EOF", sh(1)->sh_offset = FILE_SIZE + 8);
	CORRUPT("symtab offset huge", sh(1)->sh_offset = UINT64_MAX - 7);
	CORRUPT("symtab size past EOF", sh(1)->sh_size = 0x1000 * sizeof(Elf64_Sym));
	CORRUPT("symtab size wraps", sh(1)->sh_size = UINT64_MAX - 0x100);
	CORRUPT("symtab entsize", sh(1)->sh_entsize = 16);
	CORRUPT("strtab link out of range", sh(1)->sh_link = NSECTIONS);
	CORRUPT("strtab link huge", sh(1)->sh_link = 0xffffffff);
	CORRUPT("strtab offset past EOF", sh(2)->sh_offset = FILE_SIZE + 1);
	CORRUPT("strtab size past EOF", sh(2)->sh_size = FILE_SIZE);
	CORRUPT("strtab offset wraps", sh(2)->sh_offset = UINT64_MAX);
	CORRUPT("st_name past strtab", sym(1)->st_name = sizeof(strtab) - 1);
	CORRUPT("st_name huge", sym(1)->st_name = 0xffffffff);
	CORRUPT("empty name", sym(1)->st_name = 0);
	/* strtab cut inside "func_a": the name is not terminated. */
	CORRUPT("strtab cut", sh(2)->sh_size = NAME_FUNC_A + 3);
#undef CORRUPT
}

/* ---------------------------------------------------------------- */
/* The real kernel, when one has been built. */

#define VMLINUX_PATH "build/vmlinux"

static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && st.st_size > 0) {
		buf = malloc((size_t)st.st_size);
		if (buf && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
			free(buf);
			buf = NULL;
		}
		*size = (size_t)st.st_size;
	}
	fclose(f);
	return buf;
}

/* The test's own symtab walk: the value of the symbol called name. */
static int find_symbol(const uint8_t *f, size_t size, const char *want, uint64_t *value)
{
	Elf64_Ehdr e;
	if (size < sizeof(e))
		return -1;
	memcpy(&e, f, sizeof(e));
	if (e.e_shentsize != sizeof(Elf64_Shdr) || e.e_shoff > size ||
	    (uint64_t)e.e_shnum * sizeof(Elf64_Shdr) > size - e.e_shoff)
		return -1;
	for (unsigned i = 0; i < e.e_shnum; i++) {
		Elf64_Shdr s, str;
		memcpy(&s, f + e.e_shoff + i * sizeof(s), sizeof(s));
		if (s.sh_type != SHT_SYMTAB || s.sh_link >= e.e_shnum)
			continue;
		memcpy(&str, f + e.e_shoff + s.sh_link * sizeof(str), sizeof(str));
		if (s.sh_offset > size || s.sh_size > size - s.sh_offset || str.sh_offset > size ||
		    str.sh_size > size - str.sh_offset)
			return -1;
		for (uint64_t k = 0; k < s.sh_size / sizeof(Elf64_Sym); k++) {
			Elf64_Sym y;
			memcpy(&y, f + s.sh_offset + k * sizeof(y), sizeof(y));
			if (y.st_name >= str.sh_size)
				continue;
			const char *n = (const char *)f + str.sh_offset + y.st_name;
			size_t max = str.sh_size - y.st_name;
			if (strnlen(n, max) < max && strcmp(n, want) == 0) {
				*value = y.st_value;
				return 0;
			}
		}
	}
	return -1;
}

/* Whether some symbol called name has the given value (aliases such as
 * _text share startup_64's address). */
static int symbol_has_value(const uint8_t *f, size_t size, const char *name, uint64_t value)
{
	uint64_t v;
	return find_symbol(f, size, name, &v) == 0 && v == value;
}

static void loads_real_vmlinux(void)
{
	size_t size = 0;
	uint8_t *file = read_file(VMLINUX_PATH, &size);
	CHECK_MSG(file, "cannot read %s", VMLINUX_PATH);
	if (!file)
		return;
	uint64_t startup = 0;
	CHECK_MSG(find_symbol(file, size, "startup_64", &startup) == 0, "no startup_64 symbol");
	CHECK((startup & 0xffffffff00000000ull) == 0xffffffff00000000ull);

	struct guest_mem m;
	struct vmp_error err = {0};
	int rc = guest_mem_init(&m, 128 * MiB, &err);
	CHECK_MSG(rc == 0, "%s", err.msg);
	if (rc == 0) {
		struct elf_kernel k;
		rc = elf_kernel_load(&m, file, size, &k, &err);
		CHECK_MSG(rc == 0, "load: %s", err.msg);
		if (rc == 0) {
			CHECK_MSG(k.entry == startup - KERNEL_MAP,
			          "entry 0x%llx, startup_64 0x%llx", (unsigned long long)k.entry,
			          (unsigned long long)startup);
			CHECK(k.load_lo <= k.entry && k.entry < k.load_hi &&
			      k.load_hi <= 128 * MiB);
			/* The entry's first bytes are the kernel's, not zeros. */
			uint8_t *p = guest_mem_ptr(&m, k.entry, 16);
			CHECK(p && !(p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0));
		}
		guest_mem_release(&m);
	}

	char name[128];
	uint64_t off = 0;
	rc = elf_kernel_symbolize(file, size, startup, name, sizeof(name), &off);
	CHECK_MSG(rc == 0, "symbolize startup_64: rc %d", rc);
	if (rc == 0) {
		CHECK(off == 0);
		CHECK_MSG(symbol_has_value(file, size, name, startup), "got %s", name);
	}
	rc = elf_kernel_symbolize(file, size, startup + 4, name, sizeof(name), &off);
	CHECK(rc == 0 && off == 4 && symbol_has_value(file, size, name, startup));
	free(file);
}

/* Kernel-map addresses where the kernel has no code: below _text and in
 * the fixmap/module area far above the image. */
static void symbolize_outside_real_vmlinux(void)
{
	size_t size = 0;
	uint8_t *file = read_file(VMLINUX_PATH, &size);
	CHECK_MSG(file, "cannot read %s", VMLINUX_PATH);
	if (!file)
		return;
	uint64_t text = 0;
	CHECK_MSG(find_symbol(file, size, "_text", &text) == 0, "no _text symbol");
	static const uint64_t outside[] = {0xffffffff80001000ull, 0xffffffffff000000ull};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		char name[128] = "";
		uint64_t off = 0;
		CHECK(outside[i] < text || outside[i] > text + (1ull << 30));
		int rc = elf_kernel_symbolize(file, size, outside[i], name, sizeof(name), &off);
		CHECK_MSG(rc == -ENOENT, "0x%llx: got %s+0x%llx", (unsigned long long)outside[i],
		          name, (unsigned long long)off);
	}
	free(file);
}

/* nr_cpu_ids starts out as NR_CPUS: the VMM reads it to refuse more
 * vCPUs than the kernel would use. Other symbols are not data objects. */
static void reads_nr_cpus_of_real_vmlinux(void)
{
	size_t size = 0;
	uint8_t *file = read_file(VMLINUX_PATH, &size);
	CHECK_MSG(file, "cannot read %s", VMLINUX_PATH);
	if (!file)
		return;
	unsigned want = 0;
	FILE *cfg = fopen("build/kernel.config", "re");
	char line[256];
	while (cfg && fgets(line, sizeof(line), cfg))
		if (sscanf(line, "CONFIG_NR_CPUS=%u", &want) == 1)
			break;
	if (cfg)
		fclose(cfg);
	CHECK_MSG(want >= 2, "no CONFIG_NR_CPUS in build/kernel.config");
	uint32_t nr = 0;
	int rc = elf_kernel_read_object(file, size, "nr_cpu_ids", &nr, sizeof(nr));
	CHECK_MSG(rc == 0 && nr == want, "rc %d, nr_cpu_ids %u, NR_CPUS %u", rc, nr, want);
	uint64_t big = 0;
	CHECK(elf_kernel_read_object(file, size, "nr_cpu_ids", &big, 1024) == -ENOENT);
	CHECK(elf_kernel_read_object(file, size, "startup_64", &nr, sizeof(nr)) == -ENOENT);
	CHECK(elf_kernel_read_object(file, size, "no_such_symbol_at_all", &nr, sizeof(nr)) ==
	      -ENOENT);
	CHECK(elf_kernel_read_object(file, size / 2, "nr_cpu_ids", &nr, sizeof(nr)) == -ENOENT);
	free(file);
}

int main(int argc, char **argv)
{
	struct harness_test tests[] = {
	    T(loads_valid_image),
	    T(ignores_non_load_segments),
	    T(rejects_bad_headers),
	    T(rejects_bad_program_header_table),
	    T(rejects_segment_outside_memory),
	    T(rejects_bad_segment_sizes),
	    T(rejects_bad_entry),
	    T(rejects_entry_between_segments),
	    T(rejects_no_load_segment),
	    T(truncated_files),
	    T(unaligned_offsets_are_safe),
	    T(symbolize_finds_functions),
	    T(symbolize_outside_is_enoent),
	    T(symbolize_ignores_unsized_markers),
	    T(symbolize_rejects_corrupt_tables),
	    /* These need the kernel and must stay last. */
	    T(loads_real_vmlinux),
	    T(symbolize_outside_real_vmlinux),
	    T(reads_nr_cpus_of_real_vmlinux),
	};
	const size_t need_kernel = 3;
	size_t n = sizeof(tests) / sizeof(tests[0]);
	struct stat st;
	if (stat(VMLINUX_PATH, &st) != 0) {
		for (size_t i = n - need_kernel; i < n; i++)
			if (argc < 2 || strstr(tests[i].name, argv[1]))
				printf("SKIP %s: %s not built (make kernel)\n", tests[i].name,
				       VMLINUX_PATH);
		n -= need_kernel;
	}
	return harness_run(tests, n, argc, argv);
}
