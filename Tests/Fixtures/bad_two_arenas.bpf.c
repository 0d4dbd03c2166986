// SPDX-License-Identifier: GPL-2.0
/*
 * bad_two_arenas.bpf.c - error fixture: two BPF_MAP_TYPE_ARENA maps.
 *
 * FACTS: .maps 56 bytes: arena_one @0 (32 bytes: type 33, map_flags 0x400,
 * max_entries 2, map_extra 1<<44 as ENUM64 member) and arena_two @32
 * (24 bytes: type 33, map_flags 0x400, max_entries 2, no map_extra).
 * Program syscall / two_arenas, 24 insns; .relsyscall 4 entries: arena_one,
 * bpf_arena_alloc_pages, arena_two, bpf_arena_alloc_pages.
 * Expected: rejected at open. libbpf 1.6: "map 'arena_two': only single
 * ARENA map is supported (map 'arena_one' is also ARENA)", -EINVAL.
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
	__ulong(map_extra, 1ull << 44);
} arena_one SEC(".maps");

/*
 * No map_extra here: a libbpf-provided __ulong() cannot be used twice in
 * one file (its enumerator name does not get a unique suffix).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
} arena_two SEC(".maps");

SEC("syscall")
int two_arenas(void *ctx)
{
	int __arena *a = bpf_arena_alloc_pages(&arena_one, NULL, 1, NUMA_NO_NODE, 0);
	int __arena *b = bpf_arena_alloc_pages(&arena_two, NULL, 1, NUMA_NO_NODE, 0);

	return (a ? 1 : 0) + (b ? 2 : 0);
}

char LICENSE[] SEC("license") = "GPL";
