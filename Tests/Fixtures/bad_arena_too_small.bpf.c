// SPDX-License-Identifier: GPL-2.0
/*
 * bad_arena_too_small.bpf.c - error fixture: arena globals larger than the
 * arena.
 *
 * FACTS: .addr_space.1 PROGBITS WA 8192 (0x2000) bytes, align 1:
 * big @0 size 8192, big[0]=1, rest 0. .maps 24 bytes: small_arena (type 33,
 * map_flags 0x400, max_entries 1, no map_extra). Program syscall /
 * too_small, 9 insns; .relsyscall 1 entry (big).
 * Expected: rejected at open. libbpf 1.6: "elf: sec '.addr_space.1':
 * declared ARENA map size (4096) is too small to hold global __arena
 * variables of size 8192", -E2BIG.
 */
#include "bpfdepot_common.h"

/* one page of arena ... */
struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
} small_arena SEC(".maps");

/* ... but two pages of arena globals */
char __arena big[8192] = { 1 };

SEC("syscall")
int too_small(void *ctx)
{
	big[8191] = big[0];
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
