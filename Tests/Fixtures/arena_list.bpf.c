// SPDX-License-Identifier: GPL-2.0
/*
 * arena_list.bpf.c - a doubly linked list living in a BPF arena.
 *
 * Nodes (24 bytes: next, prev, value) are carved from pages that
 * bpf_arena_alloc_pages hands out one at a time, 170 per page. The list
 * ends and the page table live in the arena too, so user space can walk the
 * list through the mmap'ed arena: the pointers are user addresses.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: syscall 1984 bytes; .rodata 4; .addr_space.1 PROGBITS WA 308
 * (0x134) align 8; .bss NOBITS 36; .maps 32; license "GPL".
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 40, map_extra
 * 0x110000000000 (ENUM64 member).
 *
 * .rodata: @0 list_len u32 = 100 (patchable; clamped to 5440 = 32 pages).
 * .addr_space.1: @0 list_magic u32 = 0x4c495354, @4 list_target u32,
 *   @8 list_tail ptr, @16 list_head ptr, @24 list_nodes u32,
 *   @32 list_sum_result u64, @40 list_pages u32, @48 page_addr[32] ptrs,
 *   @304 page_used u32 (all but list_magic zero).
 * .bss: @0 bss_sum u64, @8 bss_sum_back u64, @16 bss_weighted u64,
 *   @24 bss_count u32, @28 bss_freed_pages u32, @32 bss_free_verified u32.
 *
 * Programs (syscall), instruction counts and relocations:
 *   list_build 103 insns, 1 may_goto: list_len #0; list_target #5;
 *     page_used #13; list_pages #16; page_addr #19; list_tail #23;
 *     list_nodes #27; arena #60; bpf_arena_alloc_pages #68 (call);
 *     list_head #98
 *   list_sum 52 insns, 2 may_goto: list_head #4; list_tail #22;
 *     list_sum_result #35; bss_sum_back #39; bss_sum #42; bss_weighted #45;
 *     bss_count #48
 *   list_free 93 insns, 1 may_goto: list_pages #0 #58; page_addr #12;
 *     arena #31 #74 #86; bpf_arena_free_pages #35 #90 (calls);
 *     bpf_arena_alloc_pages #80 (call); list_head #44; list_tail #49;
 *     list_nodes #53; page_used #62; bss_free_verified #66 #82;
 *     bss_freed_pages #69
 *
 * Runtime (6.18, libbpf 1.6, globals at arena offset 0), with
 * N = min(list_len, 5440) and P = ceil(N / 170):
 *   list_build -> retval 0; appends nodes with values 1..N (a second
 *     list_build without list_free appends 1..N again); list_nodes N,
 *     list_target N, list_pages P, page_used N - 170(P-1);
 *     list_head = 0x110000001000 (first node on page 1; page 0 holds the
 *     globals), page_addr[i] = 0x110000001000 + i*0x1000,
 *     list_tail = list_head + (N-1)*24 when N <= 170.
 *   list_sum -> retval N; list_sum_result = bss_sum = bss_sum_back =
 *     N(N+1)/2; bss_weighted = sum(pos * value) = N(N+1)(2N+1)/6 (checks
 *     the order); bss_count N.
 *   list_free -> retval P; bss_freed_pages P; bss_free_verified 1 (the
 *     first freed page could be allocated again at its address); list_head,
 *     list_tail, list_nodes, list_pages, page_used back to 0.
 *   Default N = 100: sum 5050, weighted 338350, P 1, list_tail
 *   0x110000001948. N = 1000: 500500, 333833500, P 6. N = 5440 (or any
 *   larger list_len): 14799520, 53677859040, P 32.
 *   Order list_build, list_sum, list_free, list_build, list_sum gives the
 *   same list_sum results twice.
 */
#include "bpfdepot_common.h"

#define LIST_MAX_PAGES	32

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LIST_MAX_PAGES + 8);
	__ulong(map_extra, 0x110000000000ull);
} arena SEC(".maps");

struct node {
	struct node __arena *next;
	struct node __arena *prev;
	__u64 value;
};

#define NODES_PER_PAGE	(4096 / sizeof(struct node))		/* 170 */
#define LIST_MAX_NODES	(LIST_MAX_PAGES * NODES_PER_PAGE)	/* 5440 */

/* Number of nodes list_build pushes. Patch before load to change it. */
const volatile __u32 list_len = 100;

/* ---- arena state: list ends and the pages the nodes are carved from ---- */
__u32 __arena list_magic = 0x4c495354;		/* "LIST" */
struct node __arena * __arena list_head;	/* the pointers live in the arena too */
struct node __arena * __arena list_tail;
__u64 __arena list_sum_result;
__u32 __arena list_nodes;
__u32 __arena list_target;			/* min(list_len, LIST_MAX_NODES) */
__u32 __arena list_pages;
__u32 __arena page_used;			/* nodes taken from the last page */
void __arena * __arena page_addr[LIST_MAX_PAGES];

/* ---- .bss results ---- */
__u64 bss_sum;		/* forward walk: sum of values */
__u64 bss_sum_back;	/* backward walk over prev pointers */
__u64 bss_weighted;	/* forward walk: sum of position * value */
__u32 bss_count;
__u32 bss_freed_pages;
__u32 bss_free_verified;

static struct node __arena *node_alloc(void)
{
	struct node __arena *pg;

	if (!list_pages || page_used == NODES_PER_PAGE) {
		if (list_pages >= LIST_MAX_PAGES)
			return NULL;
		pg = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
		if (!pg)
			return NULL;
		page_addr[list_pages] = pg;
		list_pages++;
		page_used = 0;
	}
	pg = page_addr[list_pages - 1];
	return pg + page_used++;
}

SEC("syscall")
int list_build(void *ctx)
{
	struct node __arena *n;
	__u32 i, len = list_len;

	if (len > LIST_MAX_NODES)
		len = LIST_MAX_NODES;
	/*
	 * Read the bound back from arena memory: the verifier knows the frozen
	 * .rodata value, would then track i exactly and walk every iteration
	 * (a list_len of 100000 failed with "The sequence of 8193 jumps is
	 * too complex."); an arena load is an unknown scalar.
	 */
	list_target = len;
	len = *(volatile __u32 __arena *)&list_target;
	for (i = 1; i <= len && can_loop; i++) {
		n = node_alloc();
		if (!n)
			return 1;
		n->value = i;
		n->next = NULL;
		n->prev = list_tail;
		if (list_tail)
			list_tail->next = n;
		else
			list_head = n;
		list_tail = n;
		list_nodes++;
	}
	return 0;
}

SEC("syscall")
int list_sum(void *ctx)
{
	struct node __arena *n;
	__u64 sum = 0, back = 0, weighted = 0;
	__u32 pos = 0;

	for (n = list_head; n && can_loop; n = n->next) {
		pos++;
		sum += n->value;
		weighted += pos * n->value;
	}
	for (n = list_tail; n && can_loop; n = n->prev)
		back += n->value;

	list_sum_result = sum;
	bss_sum = sum;
	bss_sum_back = back;
	bss_weighted = weighted;
	bss_count = pos;
	return pos;
}

SEC("syscall")
int list_free(void *ctx)
{
	void __arena *first = NULL, *again;
	__u32 i, cnt = list_pages, freed = 0;

	if (cnt > LIST_MAX_PAGES)
		cnt = LIST_MAX_PAGES;
	for (i = 0; i < cnt && can_loop; i++) {
		if (!first)
			first = page_addr[i];
		bpf_arena_free_pages(&arena, page_addr[i], 1);
		page_addr[i] = NULL;
		freed++;
	}
	list_head = NULL;
	list_tail = NULL;
	list_nodes = 0;
	list_pages = 0;
	page_used = 0;
	bss_freed_pages = freed;

	/* A freed page can be allocated again at the same address. */
	bss_free_verified = 0;
	if (first) {
		again = bpf_arena_alloc_pages(&arena, first, 1, NUMA_NO_NODE, 0);
		if (again == first)
			bss_free_verified = 1;
		if (again)
			bpf_arena_free_pages(&arena, again, 1);
	}
	return freed;
}

char LICENSE[] SEC("license") = "GPL";
