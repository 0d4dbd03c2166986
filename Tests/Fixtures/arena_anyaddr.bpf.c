// SPDX-License-Identifier: GPL-2.0
/*
 * arena_anyaddr.bpf.c - an arena without map_extra: the kernel picks the
 * user address when the loader mmaps the map. Arena pointers are kept in
 * .bss and dereferenced by a second program.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: syscall 744 bytes; .addr_space.1 PROGBITS WA 32 align 8;
 * .maps 24 (no map_extra member); .bss NOBITS 40; license "GPL".
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 8, map_extra 0: the
 * loader must mmap it with a NULL hint (no MAP_FIXED) before loading the
 * programs, and user_vm_start is whatever mmap returned (the kernel keeps
 * the 8 pages inside one 4 GiB window).
 *
 * .addr_space.1: @0 any_counter u64 = 100, @8 any_small u32 = 7,
 *   @16 any_sample struct sample {u64 seq = 0x5eed; u32 tag = 0xabcd;
 *   u32 copies = 1} (bytes ed5e0000 00000000 cdab0000 01000000).
 * .bss: @0 any_page (struct sample __arena *), @8 any_counter_ptr
 *   (u64 __arena *), @16 any_base u64, @24 any_read_seq u64,
 *   @32 any_read_tag u32, @36 any_read_ok u32.
 *
 * Programs (syscall); llvm-objdump 21 shows "rX = addr_space_cast(rY, 0x0,
 * 0x1)" (arena -> kernel view) before every arena access, never the
 * reverse cast:
 *   any_alloc 56 insns, 6 addr_space_cast: any_counter #0 #47; any_small
 *     #6; any_sample #12 #14; arena #22; bpf_arena_alloc_pages #28 (call);
 *     any_page #42; any_counter_ptr #45; any_base #50
 *   any_read 37 insns, 3 addr_space_cast: any_page #1; any_counter_ptr #5;
 *     any_read_seq #12; any_read_tag #16; any_small #25; any_read_ok #31
 *
 * Runtime (6.18, libbpf 1.6, globals at arena offset 0); A = the arena's
 * mmap address (user_vm_start):
 *   any_read before any_alloc -> retval 1 (no pointers yet).
 *   any_alloc -> retval 0; any_counter 101, any_small 21, any_sample.copies
 *     2; any_base = any_counter_ptr = A (address of any_counter);
 *     any_page = A + 0x1000; the page holds {seq 0x5f52 (0x5eed + 101),
 *     tag 0xabcd, copies 2}.
 *   any_read (after any_alloc) -> retval 0; any_read_seq 0x5f52,
 *     any_read_tag 0xabcd, any_read_ok 1; any_counter += 10 (111 after one
 *     any_read, 121 after two); any_small += 1 (22, 23); page copies += 1
 *     (3, 4).
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 8);
	/* no map_extra: 0, address chosen at mmap time */
} arena SEC(".maps");

struct sample {
	__u64 seq;
	__u32 tag;
	__u32 copies;
};

/* ---- arena globals, all non-zero ---- */
__u64 __arena any_counter = 100;
__u32 __arena any_small = 7;
struct sample __arena any_sample = { .seq = 0x5eed, .tag = 0xabcd, .copies = 1 };

/* ---- .bss: pointers into the arena ---- */
struct sample __arena *any_page;	/* page allocated by any_alloc */
__u64 __arena *any_counter_ptr;		/* &any_counter */
__u64 any_base;				/* (u64)&any_counter */
__u64 any_read_seq;			/* filled by any_read */
__u32 any_read_tag;
__u32 any_read_ok;

SEC("syscall")
int any_alloc(void *ctx)
{
	struct sample __arena *s;

	any_counter += 1;
	any_small *= 3;
	any_sample.copies += 1;

	s = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	if (!s)
		return 1;
	s->seq = any_sample.seq + any_counter;
	s->tag = any_sample.tag;
	s->copies = any_sample.copies;
	any_page = s;
	any_counter_ptr = &any_counter;
	any_base = (__u64)&any_counter;
	return 0;
}

/*
 * Works through the pointers that any_alloc left in .bss. It must still name
 * the arena somewhere (here: any_small): a program with addr_space_cast but
 * no ld_imm64 of the arena map or of an arena global has no associated arena
 * and is rejected ("addr_space_cast insn can only be used in a program that
 * has an associated arena").
 */
SEC("syscall")
int any_read(void *ctx)
{
	struct sample __arena *s = any_page;
	__u64 __arena *c = any_counter_ptr;

	if (!s || !c)
		return 1;
	any_read_seq = s->seq;
	any_read_tag = s->tag;
	*c += 10;
	s->copies += 1;
	any_small += 1;
	any_read_ok = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
