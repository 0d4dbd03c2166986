// SPDX-License-Identifier: GPL-2.0
/*
 * links.bpf.c - tracing programs the link tests attach to real hooks, each counting the events
 * of the test process (tgid in target_tgid, written live before attaching) into a .bss global.
 *
 * raw_getpid:  raw_tp/sys_enter, getpid(2) entries (x86-64 syscall 39) -> raw_tp_hits
 * btf_getpid:  tp_btf/sys_enter, the same through the BTF-typed tracepoint -> tp_btf_hits
 * tp_getpid:   tracepoint/syscalls/sys_enter_getpid (tracefs event, perf link) -> tp_hits
 * dump_tasks:  iter/task, one line "TGID PID\n" per task (bpf_seq_printf)
 *
 * These load on every kernel of the matrix. The trampoline programs (fentry, lsm) are in
 * links_trampoline.bpf.c and the map iterator in links_map_iter.bpf.c, as the host kernel
 * refuses to load those (EPERM) and a refused program fails its whole object.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * .bss (NOBITS WA, align 8): target_tgid u32, raw_tp_hits, tp_btf_hits, tp_hits (u64 each).
 * .rodata: the format string. Every program returns 0. The counters use
 * __sync_fetch_and_add, so concurrent CPUs do not lose hits; other processes never count (the
 * tgid check), though the programs run for them.
 */
#include "bpfdepot_common.h"

#define NR_GETPID 39

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

__u32 target_tgid;
__u64 raw_tp_hits;
__u64 tp_btf_hits;
__u64 tp_hits;

static __always_inline int from_test(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("raw_tp/sys_enter")
int raw_getpid(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id) */
	if (ctx->args[1] == NR_GETPID && from_test())
		__sync_fetch_and_add(&raw_tp_hits, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int btf_getpid(__u64 *ctx)
{
	if (ctx[1] == NR_GETPID && from_test())
		__sync_fetch_and_add(&tp_btf_hits, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid(void *ctx)
{
	if (from_test())
		__sync_fetch_and_add(&tp_hits, 1);
	return 0;
}

SEC("iter/task")
int dump_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d %d\n", task->tgid, task->pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
