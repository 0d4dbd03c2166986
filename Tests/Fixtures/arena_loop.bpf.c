// SPDX-License-Identifier: GPL-2.0
/*
 * arena_loop.bpf.c - may_goto loops (can_loop from bpfdepot_common.h) whose
 * bound the verifier cannot prove, summing into arena globals.
 *
 * FACTS (clang 21 -target bpf -O2 -g; llvm-objdump 21 disassembles may_goto,
 * Debian's llvm-objdump 14 shows it as <unknown>)
 *
 * Sections: syscall 920 bytes; .rodata 4; .addr_space.1 PROGBITS WA 40
 * (0x28) align 8; .maps 32; .bss NOBITS 12; license "GPL".
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 4, map_extra
 * 0x140000000000 (ENUM64 member).
 *
 * .rodata: @0 loop_n u32 = 1000 (patchable).
 * .addr_space.1: @0 loop_magic u64 = 0x6c6f6f70, @8 loop_bound u32,
 *   @16 loop_sum u64, @24 loop_iters u32, @32 loop_sq_sum u64 (all but
 *   loop_magic zero).
 * .bss: @0 loop_page u64, @8 loop_done u32.
 *
 * Program: syscall / loop_run, 115 insns, 3 may_goto (opcode 0xe5), 9
 * addr_space_cast. Relocations (instruction numbers): loop_n #0;
 * loop_bound #3 #38 #91; loop_sum #17; loop_iters #21 #87; arena #27 #108;
 * bpf_arena_alloc_pages #33 (call); loop_page #35; loop_sq_sum #78;
 * loop_done #99; loop_magic #102; bpf_arena_free_pages #112 (call).
 *
 * Runtime (6.18, libbpf 1.6, globals at arena offset 0). Run loop_run once;
 * with n = loop_n and m = min(n, 1023):
 *   retval 0; loop_bound = n; loop_iters = n; loop_sum = n(n+1)/2;
 *   loop_sq_sum = m(m+1)(2m+1)/6; loop_done 1; loop_magic 0x6c6f6f71
 *   (+1 per run); loop_page = 0x140000001000 (page 1, page 0 holds the
 *   globals; freed before returning, so every run reuses it).
 *   Default n = 1000: loop_sum 500500, loop_sq_sum 333833500.
 *   Patched: n = 50 -> 1275 / 42925; n = 100000 -> 5000050000 / 357389824;
 *   n = 0 -> 0 / 0 (loop_done still 1).
 * The bound goes through arena memory (loop_bound) on purpose: compared with
 * the frozen .rodata value directly, the verifier walks every iteration and
 * rejects large n (n = 100000: E2BIG, 1M instructions processed).
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__ulong(map_extra, 0x140000000000ull);
} arena SEC(".maps");

/* Loop bound; frozen .rodata, patch it before load to change the results. */
const volatile __u32 loop_n = 1000;

/* Arena results. loop_magic keeps the image non-trivial and at offset 0. */
__u64 __arena loop_magic = 0x6c6f6f70;		/* "loop" */
__u64 __arena loop_sum;
__u64 __arena loop_sq_sum;
__u32 __arena loop_iters;
__u32 __arena loop_bound;			/* copy of loop_n */

/* .bss results. */
__u32 loop_done;	/* 1 when both loops ended by their own bound */
__u64 loop_page;	/* user address of the scratch page */

#define SLOTS_PER_PAGE (4096 / sizeof(__u32))

/* A fresh load from arena memory: an unknown scalar for the verifier. */
#define arena_read(var) (*(volatile typeof(var) *)&(var))

SEC("syscall")
int loop_run(void *ctx)
{
	__u32 __arena *slot;
	__u64 sum = 0, sq = 0;
	__u32 i, n, limit;

	/*
	 * Take the bound from arena memory, which the verifier cannot see into.
	 * Compared with the frozen .rodata constant itself, i would be tracked
	 * exactly and every iteration verified (a large loop_n is rejected).
	 * For the same reason n is not used again after the loop.
	 */
	loop_bound = loop_n;
	n = arena_read(loop_bound);

	/* 1 + 2 + ... + n; no verifier-visible bound but may_goto */
	for (i = 1; i <= n && can_loop; i++)
		sum += i;
	loop_sum = sum;
	loop_iters = i - 1;

	/* squares 1..limit stored in a page, then summed back */
	slot = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	if (!slot)
		return 1;
	loop_page = (__u64)slot;
	limit = arena_read(loop_bound);
	if (limit > SLOTS_PER_PAGE - 1)
		limit = SLOTS_PER_PAGE - 1;
	for (i = 1; i <= limit; i++) {
		if (!can_loop)
			break;
		slot[i] = i * i;
	}
	for (i = 1; i <= limit; i++) {
		if (!can_loop)
			break;
		sq += slot[i];
	}
	loop_sq_sum = sq;
	loop_done = arena_read(loop_iters) == arena_read(loop_bound) &&
		    i == limit + 1;
	loop_magic += 1;
	bpf_arena_free_pages(&arena, slot, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
