// SPDX-License-Identifier: GPL-2.0
/*
 * links_probes.bpf.c - probe programs the link tests attach: uprobes on a function of a small
 * binary the test compiles, and kprobes on do_nanosleep (the nanosleeps of the test process).
 *
 * on_call:      uprobe (bare: binary and function come from the attach target) -> uprobe_hits
 * on_return:    uretprobe (bare) -> uretprobe_hits
 * kp_sleep:     kprobe/do_nanosleep, tgid == target_tgid -> kprobe_hits
 * krp_sleep:    kretprobe/do_nanosleep, tgid == target_tgid -> kretprobe_hits
 * kmulti_sleep: kprobe.multi/do_nanoslee? (a glob), tgid == target_tgid -> kmulti_hits
 *
 * The uprobes count every run of the probed function (the binary is the test's own), so their
 * counts and run_cnt are exact. Kernels without kprobes (the host) still load kprobe programs
 * when uprobes exist; attaching them fails with the reason.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * .bss (NOBITS WA, align 8): target_tgid u32, uprobe_hits, uretprobe_hits, kprobe_hits,
 * kretprobe_hits, kmulti_hits (u64 each). Every program returns 0.
 */
#include "bpfdepot_common.h"

__u32 target_tgid;
__u64 uprobe_hits;
__u64 uretprobe_hits;
__u64 kprobe_hits;
__u64 kretprobe_hits;
__u64 kmulti_hits;

static __always_inline int from_test(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("uprobe")
int on_call(void *ctx)
{
	__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

SEC("uretprobe")
int on_return(void *ctx)
{
	__sync_fetch_and_add(&uretprobe_hits, 1);
	return 0;
}

SEC("kprobe/do_nanosleep")
int kp_sleep(void *ctx)
{
	if (from_test())
		__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kretprobe/do_nanosleep")
int krp_sleep(void *ctx)
{
	if (from_test())
		__sync_fetch_and_add(&kretprobe_hits, 1);
	return 0;
}

SEC("kprobe.multi/do_nanoslee?")
int kmulti_sleep(void *ctx)
{
	if (from_test())
		__sync_fetch_and_add(&kmulti_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
