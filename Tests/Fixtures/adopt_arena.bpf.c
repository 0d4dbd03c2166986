// SPDX-License-Identifier: GPL-2.0
/*
 * adopt_arena.bpf.c - restart adoption (BPFKernelTests/AdoptionTests and the
 * service restart tests): one variable in each kind of memory a load owns,
 * and a syscall program that changes all of them, so a value read after
 * adoption can only be right if the same kernel objects were re-opened.
 * Its own map_extra (0x160000000000), so it never meets another fixture's
 * arena in one test process.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 4 (pages), map_extra
 * 0x160000000000.
 * Variables: .addr_space.1 @0 ad_counter (__u64) 100; .addr_space.1 @8
 * ad_hist (__u32[4]) {1,2,3,4}; .rodata @0 ad_step (const volatile __u32) 3;
 * .data @0 ad_seen (__u64) 0; .bss @0 ad_runs (__u32) 0.
 * Program syscall / ad_tick, one run: ad_counter += ad_step; ad_hist[i] +=
 * ad_runs (before the increment); ad_runs += 1; ad_seen = ad_counter;
 * retval = low 32 bits of the new ad_counter.
 * Defaults, one run: retval 103, ad_counter 103, ad_seen 103, ad_runs 1.
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__ulong(map_extra, 0x160000000000ull);
} arena SEC(".maps");

__u64 __arena ad_counter = 100;
__u32 __arena ad_hist[4] = { 1, 2, 3, 4 };

const volatile __u32 ad_step = 3;

__u64 ad_seen = 0;
__u32 ad_runs;

SEC("syscall")
int ad_tick(void *ctx)
{
	__u32 runs = ad_runs;
	int i;

	ad_counter += ad_step;
	for (i = 0; i < 4; i++)
		ad_hist[i] += runs;
	ad_runs = runs + 1;
	ad_seen = ad_counter;
	return (int)ad_counter;
}

char _license[] SEC("license") = "GPL";
