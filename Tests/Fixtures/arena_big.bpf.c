// SPDX-License-Identifier: GPL-2.0
/*
 * arena_big.bpf.c - a 1 GiB arena at a fixed address, a multi-page arena
 * image with non-zero initial values, and a page allocated at a fixed
 * address near the end of the arena.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: syscall 704 bytes; .addr_space.1 PROGBITS WA 12300 (0x300c)
 * align 8, stored in full in the ELF; .maps 32; .bss NOBITS 20;
 * license "GPL".
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 262144 (1 GiB),
 * map_extra 0x400000000000 = 1<<46 (ENUM64 member); the range
 * [1<<46, 1<<46 + 1 GiB) stays inside one 4 GiB window.
 *
 * .addr_space.1: @0 big_magic u64 = 0x0123456789abcdef, @8 big_counter
 *   u32 = 41, @12 big_table u32[3072]: [0] = 1, [1024] = 2 (image offset
 *   0x100c, on the image's second page), [3071] = 0xc0ffee (offset 0x3008,
 *   fourth page), everything else 0.
 * .bss: @0 big_second_alloc_null u32, @8 big_page u64, @16 big_table_sum u32.
 *
 * Programs (syscall):
 *   big_touch 75 insns: arena #1 #12 #27; bpf_arena_alloc_pages #8 #19
 *     (calls); big_second_alloc_null #23; bpf_arena_free_pages #31 (call);
 *     big_magic #32; big_counter #37; big_page #47; big_table #50 #52 #60;
 *     big_table_sum #66. The address hint is the constant 0x40003fff0000
 *     (a 64-bit immediate, no relocation).
 *   big_release 13 insns: big_page #1; arena #5; bpf_arena_free_pages #8.
 *
 * Runtime (6.18, libbpf 1.6, image at arena offset 0):
 *   Before any run the mmap'ed arena at 0x400000000000 shows the image:
 *     u64 at +0 = 0x0123456789abcdef, u32 at +8 = 41, u32 at +0x100c = 2,
 *     u32 at +0x3008 = 0xc0ffee.
 *   big_touch -> retval 0; big_page = 0x40003fff0000 (page 262128);
 *     big_second_alloc_null 1; big_counter 42; big_table_sum 0xc0fff1
 *     (1 + 2 + 0xc0ffee); big_table[1] = 0xc0fff1. Through the user
 *     mapping: u64 at 0x40003fff0000 = 0x0123456789abcdef, at
 *     0x40003fff0008 = 41, at 0x40003fff0ff8 = 0xfeedfacecafebeef.
 *     A second big_touch without big_release returns 1 (page taken).
 *   big_release -> retval 0 (1 if big_page is 0); big_page 0. Then
 *     big_touch succeeds again at the same address (big_counter 43).
 */
#include "bpfdepot_common.h"

#define BIG_BASE	(1ull << 46)		/* 0x400000000000, 4 GiB aligned */
#define BIG_PAGES	262144			/* 1 GiB of 4 KiB pages */
#define BIG_HINT_PGOFF	(BIG_PAGES - 16)	/* clear of the last pages, where
						   newer loaders put the globals */
#define BIG_HINT	(BIG_BASE + BIG_HINT_PGOFF * 4096ull)

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, BIG_PAGES);
	__ulong(map_extra, BIG_BASE);
} arena SEC(".maps");

/* ---- arena image: 12 + 12288 = 12300 bytes, so it spans 4 pages ---- */
__u64 __arena big_magic = 0x0123456789abcdefull;
__u32 __arena big_counter = 41;
__u32 __arena big_table[3072] = {
	[0] = 1,
	[1024] = 2,		/* first word of the image's second page */
	[3071] = 0xc0ffee,	/* last word */
};

/* ---- .bss ---- */
__u64 big_page;			/* user address of the allocated page */
__u32 big_second_alloc_null;	/* 1: a second alloc at the same address failed */
__u32 big_table_sum;		/* big_table[0] + [1024] + [3071] */

SEC("syscall")
int big_touch(void *ctx)
{
	__u64 __arena *p, *again;

	p = bpf_arena_alloc_pages(&arena, (void __arena *)BIG_HINT, 1,
				  NUMA_NO_NODE, 0);
	if (!p)
		return 1;
	/* the page is taken now, so the same request must fail */
	again = bpf_arena_alloc_pages(&arena, (void __arena *)BIG_HINT, 1,
				      NUMA_NO_NODE, 0);
	big_second_alloc_null = !again;
	if (again)
		bpf_arena_free_pages(&arena, again, 1);

	p[0] = big_magic;
	p[1] = big_counter;
	p[511] = 0xfeedfacecafebeefull;		/* last word of the page */
	big_counter++;
	big_page = (__u64)p;
	big_table_sum = big_table[0] + big_table[1024] + big_table[3071];
	big_table[1] = big_table_sum;
	return 0;
}

SEC("syscall")
int big_release(void *ctx)
{
	if (!big_page)
		return 1;
	bpf_arena_free_pages(&arena, (void __arena *)big_page, 1);
	big_page = 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
