// SPDX-License-Identifier: GPL-2.0
/*
 * module_kfuncs.bpf.c - externs that only a kernel module could provide:
 * two weak kfuncs and a weak typed ksym, all absent from vmlinux, so the
 * loader has to look for them in module BTF (libbpf's load_module_btfs).
 *
 * FACTS (clang 21 -target bpf -O2 -g; read back with llvm-objdump/readelf)
 *
 * Externs (all SHN_UNDEF, STB_WEAK, in the '.ksyms' DATASEC):
 *   bpfdepot_mod_kfunc_a   kfunc  void (void)
 *   bpfdepot_mod_kfunc_b   kfunc  int (int)
 *   bpfdepot_mod_counter   typed ksym  const int
 * .bss: @0 mod_result 4.
 *
 * Program: syscall / use_module, 21 insns. Each extern is first loaded with
 * ld_imm64 (existence test, "if r1 == 0 goto") and then, for the kfuncs,
 * called (call src_reg=1 imm=-1); the typed ksym is read through its address.
 * Relocations (instruction numbers):
 *   #0 bpfdepot_mod_kfunc_a R_BPF_64_64, #3 its call R_BPF_64_32
 *   #5 bpfdepot_mod_kfunc_b R_BPF_64_64, #9 its call R_BPF_64_32
 *   #10 bpfdepot_mod_counter R_BPF_64_64, #16 mod_result R_BPF_64_64 (.bss)
 *
 * Runtime on a kernel without the module (this machine: 6.18 without
 * CONFIG_MODULES): every extern stays unresolved (weak), the calls are
 * poisoned but unreachable, the program loads and a test run returns 0 with
 * mod_result 0.
 */
#include "bpfdepot_common.h"

extern void bpfdepot_mod_kfunc_a(void) __ksym __weak;
extern int bpfdepot_mod_kfunc_b(int x) __ksym __weak;
extern const int bpfdepot_mod_counter __ksym __weak;

int mod_result;

SEC("syscall")
int use_module(void *ctx)
{
	int r = 0;

	if (bpf_ksym_exists(bpfdepot_mod_kfunc_a))
		bpfdepot_mod_kfunc_a();
	if (bpf_ksym_exists(bpfdepot_mod_kfunc_b))
		r += bpfdepot_mod_kfunc_b(1);
	if (bpf_ksym_exists(&bpfdepot_mod_counter))
		r += bpfdepot_mod_counter;
	mod_result = r;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
