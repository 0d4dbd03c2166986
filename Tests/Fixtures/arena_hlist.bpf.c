// SPDX-License-Identifier: GPL-2.0
/*
 * arena_hlist.bpf.c - a list in a BPF arena shaped like the kernel selftests'
 * bpf_arena_list.h: an hlist (head -> first, node -> next, node -> pprev, the
 * address of the previous `next` field) whose nodes are embedded in elements,
 * read back with container_of. Here the node sits after the value, so pprev
 * points into the middle of the previous element.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * BTF: `__arena` (address_space(1)) pointers are plain PTR types; clang 21
 * emits no type tag for the address space.
 *
 * Map 'arena': type 33, map_flags 0x400 (BPF_F_MMAPABLE), max_entries 16
 * pages, map_extra 0x180000000000. No arena globals: before hlist_build no
 * page exists.
 *
 * .rodata: elem_count u32 = 10 (clamped to 100). .bss: list_head (a
 * `struct hl_head __arena *`), tail_elem, pages_found u32.
 *
 * Programs (syscall):
 *   hlist_build -> 0; allocates one page (the first free one: page 0),
 *     puts the head at its start and elements from byte 64, pushes
 *     elements with values 101..100+N at the front, so the list reads
 *     100+N, ..., 101. Every pprev points at the previous element's
 *     node.next (16 bytes in: value and a pad come first), the first
 *     element's at head->first. 1 if the page cannot be had.
 *   hlist_cycle -> 0; points the last element's next back at the first
 *     element's node (a cycle); 1 without a list. It names the arena map
 *     in an empty asm: a program touching arena memory must use the map.
 *   count_pages -> the number of arena pages that exist, by the kernel's
 *     allocator: bpf_arena_alloc_pages at a page's address fails when the
 *     page is taken (allocated by a program or faulted in by user space),
 *     and a page it could allocate is freed again at once. Independent of
 *     bpfdepot's own page probe.
 */
#include "bpfdepot_common.h"

#define HL_PAGES	16
#define HL_BASE		0x180000000000ull
#define HL_MAX		100

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, HL_PAGES);
	__ulong(map_extra, HL_BASE);
} arena SEC(".maps");

struct hl_node;
typedef struct hl_node __arena hl_node_t;

struct hl_node {
	hl_node_t *next;
	hl_node_t * __arena *pprev;
};

struct hl_head {
	struct hl_node __arena *first;
};

struct elem {
	__u64 value;
	__u64 pad;
	struct hl_node node;
};

const volatile __u32 elem_count = 10;

struct hl_head __arena *list_head;
struct elem __arena *tail_elem;
__u32 pages_found;

static void hl_add_head(hl_node_t *n, struct hl_head __arena *h)
{
	hl_node_t *first = h->first;

	n->next = first;
	if (first)
		first->pprev = &n->next;
	h->first = n;
	n->pprev = &h->first;
}

SEC("syscall")
int hlist_build(void *ctx)
{
	struct elem __arena *e;
	char __arena *page;
	__u32 i, n = elem_count;

	if (n > HL_MAX)
		n = HL_MAX;
	page = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	if (!page)
		return 1;
	list_head = (struct hl_head __arena *)page;
	list_head->first = NULL;
	e = (struct elem __arena *)(page + 64);
	tail_elem = e;
	for (i = 0; i < n && can_loop; i++, e++) {
		e->value = 101 + i;
		e->pad = 0;
		hl_add_head(&e->node, list_head);
	}
	return 0;
}

SEC("syscall")
int hlist_cycle(void *ctx)
{
	struct hl_head __arena *h = list_head;
	struct elem __arena *t = tail_elem;

	/*
	 * The verifier ties a program to an arena only through a use of the
	 * map (a ld_imm64 of it); without one, "addr_space_cast insn can only
	 * be used in a program that has an associated arena".
	 */
	asm volatile("" :: "r"(&arena));
	if (!h || !t || !h->first)
		return 1;
	t->node.next = h->first;
	return 0;
}

SEC("syscall")
int count_pages(void *ctx)
{
	__u32 i, found = 0;

	for (i = 0; i < HL_PAGES && can_loop; i++) {
		void __arena *want = (void __arena *)(HL_BASE + (__u64)i * 4096);
		void __arena *got = bpf_arena_alloc_pages(&arena, want, 1, NUMA_NO_NODE, 0);

		if (got)
			bpf_arena_free_pages(&arena, got, 1);
		else
			found++;
	}
	pages_found = found;
	return found;
}

char LICENSE[] SEC("license") = "GPL";
