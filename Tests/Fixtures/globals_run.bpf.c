// SPDX-License-Identifier: GPL-2.0
/*
 * globals_run.bpf.c - .data, .bss and .rodata globals and __kconfig externs
 * whose run-time values a test reads back.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: syscall 824 bytes; .rodata PROGBITS A 20 align 4; .data
 * PROGBITS WA 24 align 8; .bss NOBITS WA 21 align 4; license "GPL". No .maps.
 * The externs are SHN_UNDEF symbols (CONFIG_NR_CPUS and LINUX_KERNEL_VERSION
 * STB_GLOBAL, CONFIG_BPF_SYSCALL STB_WEAK) in the BTF DATASEC '.kconfig'.
 *
 * .rodata: @0 scale s32 = 3, @4 offset s32 = -7, @8 mode u32 = 1,
 *   @12 greeting char[8] = "depot" (bytes 03000000 f9ffffff 01000000
 *   6465706f 74000000).
 * .data: @0 input s32 = 20, @8 acc s64 = 1000, @16 note char[8] = "init".
 * .bss: @0 out s32, @4 runs u32, @8 greeting_len u32, @12 nr_cpus u32,
 *   @16 kernel_version s32, @20 have_bpf_syscall u8.
 * libbpf 1.6 lays out .kconfig (9 bytes) as CONFIG_NR_CPUS @0 (4),
 *   LINUX_KERNEL_VERSION @4 (4), CONFIG_BPF_SYSCALL @8 (1).
 *
 * Program: syscall / compute, 103 insns. Relocations (all R_BPF_64_64):
 *   input #0; scale #6; offset #10; acc #17; runs #22; note #30; out #40;
 *   greeting #44 #52 #60 #68 (the strlen loop is unrolled); greeting_len
 *   #76; CONFIG_NR_CPUS #79; nr_cpus #82; LINUX_KERNEL_VERSION #85;
 *   kernel_version #88; CONFIG_BPF_SYSCALL #91; have_bpf_syscall #94;
 *   mode #97.
 *
 * Runtime (6.18, libbpf 1.6). The k-th compute after load (k = 1, 2, ...)
 * with the initial values S = scale, O = offset, I = input, A = acc:
 *   out = S*(I+k-1) + O; retval = out if mode == 1, else -out (as u32);
 *   input = I + k; acc = A + sum of the outs so far; runs = k;
 *   note = "r" + ('0' + k % 10) + "it"; greeting_len = strlen(greeting)
 *   (5); nr_cpus = CONFIG_NR_CPUS from /proc/config.gz (256 here);
 *   kernel_version = LINUX_KERNEL_VERSION = KERNEL_VERSION(6,18,44) =
 *   0x6122c for uname 6.18.44-...; have_bpf_syscall 1 (CONFIG_BPF_SYSCALL=y).
 *   Defaults: run 1 -> retval 53, out 53, acc 1053, input 21;
 *             run 2 -> retval 56, out 56, acc 1109, input 22.
 *   Patched scale 5, offset 2, mode 0 and .data input -4, one run ->
 *   out -18, retval 18, acc 982, input -3.
 */
#include "bpfdepot_common.h"

/* ---- .rodata: frozen before load, constants to the verifier ---- */
const volatile __s32 scale = 3;
const volatile __s32 offset = -7;
const volatile __u32 mode = 1;		/* 1: return out, else return -out */
const volatile char greeting[8] = "depot";

/* ---- .data ---- */
__s32 input = 20;
__s64 acc = 1000;
char note[8] = "init";

/* ---- .bss ---- */
__s32 out;
__u32 runs;
__u32 nr_cpus;
__s32 kernel_version;
__u32 greeting_len;
__u8 have_bpf_syscall;

extern unsigned int CONFIG_NR_CPUS __kconfig;
extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;

SEC("syscall")
int compute(void *ctx)
{
	__u32 i;

	out = scale * input + offset;
	acc += out;
	input += 1;
	runs += 1;
	note[0] = 'r';
	note[1] = '0' + (runs % 10);

	for (i = 0; i < sizeof(greeting) && greeting[i]; i++)
		;
	greeting_len = i;

	nr_cpus = CONFIG_NR_CPUS;
	kernel_version = LINUX_KERNEL_VERSION;
	have_bpf_syscall = CONFIG_BPF_SYSCALL;

	return mode == 1 ? out : -out;
}

char LICENSE[] SEC("license") = "GPL";
