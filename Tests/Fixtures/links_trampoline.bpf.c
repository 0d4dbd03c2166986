// SPDX-License-Identifier: GPL-2.0
/*
 * links_trampoline.bpf.c - BPF-trampoline programs the link tests attach: their hook is fixed
 * at load (attach_btf_id), the link only names the attach type.
 *
 * on_sleep: fentry/do_nanosleep, nanosleep(2) and clock_nanosleep(2) of the test process
 *   (tgid in target_tgid) -> fentry_hits
 * on_open:  lsm/file_open, files opened by the test process -> lsm_opens; returns 0 (allows)
 *
 * The host's 6.18 sandbox kernel refuses to load trampoline programs (BPF_PROG_LOAD: EPERM),
 * so the tests using this object skip there with that reason; the 6.12 VM runs them.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * .bss (NOBITS WA, align 8): target_tgid u32, fentry_hits u64, lsm_opens u64.
 */
#include "bpfdepot_common.h"

__u32 target_tgid;
__u64 fentry_hits;
__u64 lsm_opens;

static __always_inline int from_test(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("fentry/do_nanosleep")
int on_sleep(__u64 *ctx)
{
	if (from_test())
		__sync_fetch_and_add(&fentry_hits, 1);
	return 0;
}

SEC("lsm/file_open")
int on_open(__u64 *ctx)
{
	if (from_test())
		__sync_fetch_and_add(&lsm_opens, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
