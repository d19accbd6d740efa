/* Tiny hand-made "kernels" for failure tests: an ELF64 executable whose
 * one PT_LOAD segment at 16 MiB holds a few bytes of x86-64 code. The VMM
 * enters them exactly like vmlinux (64-bit mode, IDT limit 0), so any
 * exception they raise ends in a triple fault. */
#ifndef VMP_TESTS_TINY_KERNEL_H
#define VMP_TESTS_TINY_KERNEL_H

#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TINY_LOAD_ADDR 0x1000000ull

/* mov rax, 0x8000000000000000; mov [rax], rax  -> #GP -> triple fault */
static const unsigned char tiny_code_triple_fault[] = {
    0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x48, 0x89, 0x00,
};
/* int3: the emulator of hosts without VT-x/AMD-V cannot execute it at
 * CPL 0 (docs/platform.md, "What the emulator cannot execute"); on
 * hardware it triple-faults. */
static const unsigned char tiny_code_int3[] = {0x90, 0x90, 0xcc};
/* 1: jmp 1b  -> spins in guest kernel mode forever */
static const unsigned char tiny_code_spin[] = {0xeb, 0xfe};
/* cli; hlt  -> sleeps forever with interrupts off */
static const unsigned char tiny_code_halt[] = {0xfa, 0xf4, 0xeb, 0xfc};
/* mov al, 42; out 0x601, al via dx  -> clean "poweroff" with status 42 */
static const unsigned char tiny_code_exit42[] = {
    0xb0, 42, 0x66, 0xba, 0x01, 0x06, 0xee, 0xeb, 0xfe,
};

/* Starts vCPU 1 the way Linux starts an AP, through the x2APIC (WRMSR):
 * INIT, then a startup IPI with vector 0x10, so vCPU 1 begins in real
 * mode at 0x10000; then spins. */
static const unsigned char tiny_code_start_ap[] = {
    0xb9, 0x1b, 0x00, 0x00, 0x00, /* mov ecx, IA32_APIC_BASE */
    0x0f, 0x32,                   /* rdmsr */
    0x0d, 0x00, 0x0c, 0x00, 0x00, /* or eax, EN | EXTD (x2APIC mode) */
    0x0f, 0x30,                   /* wrmsr */
    0xb9, 0x30, 0x08, 0x00, 0x00, /* mov ecx, x2APIC ICR */
    0xba, 0x01, 0x00, 0x00, 0x00, /* mov edx, 1 (destination APIC id) */
    0xb8, 0x00, 0x45, 0x00, 0x00, /* mov eax, INIT | assert */
    0x0f, 0x30,                   /* wrmsr */
    0xb8, 0x10, 0x46, 0x00, 0x00, /* mov eax, STARTUP | assert | vector 0x10 */
    0x0f, 0x30,                   /* wrmsr */
    0xeb, 0xfe,                   /* 1: jmp 1b */
};
#define TINY_AP_ADDR 0x10000ull
/* Real mode, CS base 0x10000: mov al, 7; mov dx, 0x601; out dx, al; spin */
static const unsigned char tiny_ap_code_exit7[] = {0xb0, 7, 0xba, 0x01, 0x06, 0xee, 0xeb, 0xfe};

/* Writes an ELF file holding code at TINY_LOAD_ADDR (the entry) and, if
 * ap_len, ap_code at TINY_AP_ADDR, to path. Returns 0 or -1. */
static int tiny_kernel_write_ap(const char *path, const unsigned char *code, size_t len,
                                const unsigned char *ap_code, size_t ap_len)
{
	struct {
		Elf64_Ehdr eh;
		Elf64_Phdr ph[2];
	} h;
	memset(&h, 0, sizeof(h));
	memcpy(h.eh.e_ident, ELFMAG, SELFMAG);
	h.eh.e_ident[EI_CLASS] = ELFCLASS64;
	h.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	h.eh.e_ident[EI_VERSION] = EV_CURRENT;
	h.eh.e_type = ET_EXEC;
	h.eh.e_machine = EM_X86_64;
	h.eh.e_version = EV_CURRENT;
	h.eh.e_entry = TINY_LOAD_ADDR;
	h.eh.e_phoff = sizeof(Elf64_Ehdr);
	h.eh.e_ehsize = sizeof(Elf64_Ehdr);
	h.eh.e_phentsize = sizeof(Elf64_Phdr);
	h.eh.e_phnum = ap_len ? 2 : 1;
	size_t headers = sizeof(Elf64_Ehdr) + h.eh.e_phnum * sizeof(Elf64_Phdr);
	h.ph[0].p_type = PT_LOAD;
	h.ph[0].p_offset = headers;
	h.ph[0].p_vaddr = h.ph[0].p_paddr = TINY_LOAD_ADDR;
	h.ph[0].p_filesz = h.ph[0].p_memsz = len;
	h.ph[0].p_flags = PF_R | PF_X;
	h.ph[1].p_type = PT_LOAD;
	h.ph[1].p_offset = headers + len;
	h.ph[1].p_vaddr = h.ph[1].p_paddr = TINY_AP_ADDR;
	h.ph[1].p_filesz = h.ph[1].p_memsz = ap_len;
	h.ph[1].p_flags = PF_R | PF_X;
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(&h, headers, 1, f) == 1 && fwrite(code, len, 1, f) == 1 &&
	         (!ap_len || fwrite(ap_code, ap_len, 1, f) == 1);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Writes an ELF file holding code to path. Returns 0 or -1. */
static int tiny_kernel_write(const char *path, const unsigned char *code, size_t len)
{
	return tiny_kernel_write_ap(path, code, len, NULL, 0);
}

#endif
