// SPDX-License-Identifier: GPL-2.0
/*
 * service_arena_links.bpf.c - the mission's scenario end to end: a tracing program attached to
 * a real hook counts into an __arena variable, which a dashboard reads live over HTTP (straight
 * from the mmap'ed arena).
 *
 * arena_count_getpid: raw_tp/sys_enter, counts getpid(2) (x86-64 syscall 39) entered by the
 *   process whose tgid is arena_watch_tgid (every process while it is 0) into arena_hits, and
 *   keeps the last caller's tgid in arena_last_tgid.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 2 (pages), map_extra 0x170000000000 (its
 * own address: no other fixture uses it). .addr_space.1 PROGBITS WA 20 bytes align 8 (clang
 * lays the zero-initialised arena globals out in its own order): @0 arena_watch_tgid u32,
 * @8 arena_hits u64, @16 arena_last_tgid u32. raw_tp/sys_enter: 22 insns.
 */
#include "bpfdepot_common.h"

#define NR_GETPID 39

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
	__ulong(map_extra, 0x170000000000ull);
} arena SEC(".maps");

__u64 __arena arena_hits;
__u32 __arena arena_watch_tgid;
__u32 __arena arena_last_tgid;

SEC("raw_tp/sys_enter")
int arena_count_getpid(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (ctx->args[1] != NR_GETPID)
		return 0;
	if (arena_watch_tgid && tgid != arena_watch_tgid)
		return 0;
	__sync_fetch_and_add(&arena_hits, 1);
	arena_last_tgid = tgid;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
