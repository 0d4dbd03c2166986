// SPDX-License-Identifier: GPL-2.0
/*
 * service_links.bpf.c - programs the service attaches to real hooks (POST /v1/loads/{id}/links,
 * or "links"/"attach" when loading), counting into globals a test reads live over HTTP.
 *
 * count_getpid: raw_tp/sys_enter, counts getpid(2) (x86-64 syscall 39) entered by the process
 *   whose tgid is in watch_tgid (every process while it is 0) into getpid_hits.
 * tp_getpid: tracepoint/syscalls/sys_enter_getpid, the same count into tp_hits.
 * xdp_pass: xdp, passes every packet and counts it; needs an interface, so "attach": true
 *   skips it.
 * run_only: syscall, names no hook; only run through BPF_PROG_TEST_RUN.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: raw_tp/sys_enter 128 bytes (16 insns), tracepoint/syscalls/sys_enter_getpid 112
 * (14), xdp 48 (6), syscall 16 (2); .bss NOBITS WA 32 align 8: @0 watch_tgid u32, @8
 * getpid_hits u64, @16 tp_hits u64, @24 xdp_packets u64. No .maps, no .data, no .rodata.
 */
#include "bpfdepot_common.h"

#define NR_GETPID 39

__u32 watch_tgid = 0;     /* .bss: written live by the test */
__u64 getpid_hits = 0;
__u64 tp_hits = 0;
__u64 xdp_packets = 0;

static __always_inline int watched(void)
{
	return !watch_tgid || (__u32)(bpf_get_current_pid_tgid() >> 32) == watch_tgid;
}

SEC("raw_tp/sys_enter")
int count_getpid(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id) */
	if (ctx->args[1] != NR_GETPID || !watched())
		return 0;
	__sync_fetch_and_add(&getpid_hits, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	if (watched())
		__sync_fetch_and_add(&tp_hits, 1);
	return 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&xdp_packets, 1);
	return XDP_PASS;
}

SEC("syscall")
int run_only(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
