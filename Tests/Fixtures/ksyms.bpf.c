// SPDX-License-Identifier: GPL-2.0
/*
 * ksyms.bpf.c - typeless and typed __ksym variables, resolved as libbpf does:
 * typeless ones to their /proc/kallsyms address (ld_imm64 src_reg 0, the
 * address in imm / next imm), typed ones to their vmlinux BTF VAR
 * (ld_imm64 src_reg BPF_PSEUDO_BTF_ID) and read per CPU through
 * bpf_per_cpu_ptr / bpf_this_cpu_ptr.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Externs (SHN_UNDEF symbols in the '.ksyms' DATASEC), in libbpf's order
 * (by name):
 *   __per_cpu_offset      typeless, strong   (D: unsigned long[NR_CPUS])
 *   __per_cpu_start       typeless, strong   (A at 0 on x86-64 6.1/6.12)
 *   bpf_prog_active       typed const int, strong      (per-CPU)
 *   bpfdepot_no_such_percpu typed const int, weak (no kernel has it)
 *   bpfdepot_no_such_symbol typeless, weak          (no kernel has it)
 *   init_task             typeless, strong   (D: struct task_struct)
 *   init_task___flavor    typeless, weak: libbpf looks typeless ksyms
 *                         up under their full name, so this stays 0
 *   runqueues             typed const struct rq, strong (per-CPU)
 * The data symbols are in /proc/kallsyms only with CONFIG_KALLSYMS_ALL;
 * without them the strong typeless externs fail the load (libbpf:
 * "extern '__per_cpu_offset' (strong): not resolved", the first by name),
 * and the typed ones fail verification too: the kernel places a typed ksym
 * with its own kallsyms_lookup_name ("ldimm64 failed to find the address
 * for kernel symbol 'runqueues'").
 *
 * struct rq here has only `cpu`, with preserve_access_index: the field's
 * offset comes from the kernel's struct rq through a CO-RE relocation, and
 * libbpf's type check for a typed ksym compares only the kinds of structs.
 *
 * .bss NOBITS 220 bytes (KSYM_CPUS = 8): @0 per_cpu_start_addr u64,
 *   @8 per_cpu_offset_addr u64, @16 init_task_addr u64, @24 missing_addr u64,
 *   @32 flavored_addr u64, @40 rq_cpu[8] s32, @72 rq_addr[8] u64,
 *   @136 cpu_offset[8] u64, @200 this_cpu u32, @204 this_rq_cpu s32,
 *   @208 prog_active s32, @212 have_no_such_percpu u32, @216 runs u32.
 *   No .data, .rodata or .maps.
 *
 * Program: syscall / ksym_run, 93 insns. Extern ld_imm64 (R_BPF_64_64):
 *   __per_cpu_start #2, init_task #7, bpfdepot_no_such_symbol #12,
 *   init_task___flavor #17, __per_cpu_offset #22, runqueues #51 #72,
 *   bpf_prog_active #58, bpfdepot_no_such_percpu #66. CO-RE field byte
 *   offset of struct rq::cpu (0:0) at #33 and #54.
 *
 * Runtime (BPF_PROG_TEST_RUN, returns 0), checked on Debian 6.12 and 6.1
 * (CONFIG_KALLSYMS_ALL). Each run:
 *   *_addr = the externs' addresses (what the loader put in the ld_imm64);
 *   for cpu i < 8: rq = bpf_per_cpu_ptr(&runqueues, i); NULL (i >= nr_cpu_ids)
 *   gives rq_cpu[i] = -1, rq_addr[i] = cpu_offset[i] = 0; else rq_cpu[i] =
 *   rq->cpu (== i: sched_init sets it for every possible CPU), rq_addr[i] =
 *   rq, cpu_offset[i] = __per_cpu_offset[i] (bpf_probe_read_kernel), so
 *   rq_addr[i] == kallsyms(runqueues) + cpu_offset[i];
 *   this_cpu = bpf_get_smp_processor_id(), this_rq_cpu =
 *   bpf_this_cpu_ptr(&runqueues)->cpu (== this_cpu); prog_active =
 *   *bpf_this_cpu_ptr(&bpf_prog_active) (0: no kprobe/tracepoint program is
 *   running on this CPU while a syscall program runs); have_no_such_percpu =
 *   bpf_ksym_exists(&bpfdepot_no_such_percpu) (0); runs += 1.
 */
#include "bpfdepot_common.h"

#define KSYM_CPUS 8

struct rq {
	int cpu;
} __attribute__((preserve_access_index));

extern const struct rq runqueues __ksym;
extern const int bpf_prog_active __ksym;
extern const int bpfdepot_no_such_percpu __ksym __weak;

extern const void __per_cpu_start __ksym;
extern const void __per_cpu_offset __ksym;
extern const void init_task __ksym;
extern const void bpfdepot_no_such_symbol __ksym __weak;
extern const void init_task___flavor __ksym __weak;

__u64 per_cpu_start_addr;
__u64 per_cpu_offset_addr;
__u64 init_task_addr;
__u64 missing_addr;
__u64 flavored_addr;
__u64 rq_addr[KSYM_CPUS];
__u64 cpu_offset[KSYM_CPUS];
__s32 rq_cpu[KSYM_CPUS];
__u32 this_cpu;
__s32 this_rq_cpu;
__s32 prog_active;
__u32 have_no_such_percpu;
__u32 runs;

SEC("syscall")
int ksym_run(void *ctx)
{
	const struct rq *rq;
	__u32 i;

	per_cpu_start_addr = (__u64)&__per_cpu_start;
	per_cpu_offset_addr = (__u64)&__per_cpu_offset;
	init_task_addr = (__u64)&init_task;
	missing_addr = (__u64)&bpfdepot_no_such_symbol;
	flavored_addr = (__u64)&init_task___flavor;

	for (i = 0; i < KSYM_CPUS; i++) {
		rq = bpf_per_cpu_ptr(&runqueues, i);
		if (!rq) {
			rq_cpu[i] = -1;
			rq_addr[i] = 0;
			cpu_offset[i] = 0;
			continue;
		}
		rq_cpu[i] = rq->cpu;
		rq_addr[i] = (__u64)rq;
		bpf_probe_read_kernel(&cpu_offset[i], sizeof(cpu_offset[i]),
				      (const char *)&__per_cpu_offset + i * sizeof(__u64));
	}

	this_cpu = bpf_get_smp_processor_id();
	rq = bpf_this_cpu_ptr(&runqueues);
	this_rq_cpu = rq->cpu;
	prog_active = *(const int *)bpf_this_cpu_ptr(&bpf_prog_active);
	have_no_such_percpu = bpf_ksym_exists(&bpfdepot_no_such_percpu);
	runs += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
