// SPDX-License-Identifier: GPL-2.0
/*
 * perfmon.bpf.c - a tracing program and nothing else: loading it needs CAP_PERFMON beside
 * CAP_BPF on every kernel (raw tracepoint programs are "perfmon" program types), so
 * scripts/check-deploy.sh shows with it that the unit's CAP_PERFMON is needed even where the
 * kernel refuses arenas (the other program kind that needs it).
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: raw_tp/sys_enter 48 bytes (6 insns); .bss NOBITS WA 8 align 8: @0 entries u64.
 * Program: raw_tp / count_entries (raw_tracepoint), counts every syscall entry when attached.
 */
#include "bpfdepot_common.h"

__u64 entries = 0;

SEC("raw_tp/sys_enter")
int count_entries(void *ctx)
{
	__sync_fetch_and_add(&entries, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
