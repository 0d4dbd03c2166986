// SPDX-License-Identifier: GPL-2.0
/*
 * links_map_iter.bpf.c - a map iterator: dump_values (iter/bpf_map_elem) prints "KEY=VALUE\n"
 * for each element of the map the link names (iter_values here: ARRAY, key u32, value u64,
 * 4 entries), through bpf_seq_printf.
 *
 * The host's 6.18 sandbox kernel refuses to load bpf_map_elem iterators (BPF_PROG_LOAD: EPERM
 * before verification), so the test skips there with that reason.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Map iter_values: type 2, key 4, value 8, max_entries 4. .rodata: the format string.
 */
#include "bpfdepot_common.h"

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map_elem {
	struct bpf_iter_meta *meta;
	void *map;
	void *key;
	void *value;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} iter_values SEC(".maps");

SEC("iter/bpf_map_elem")
int dump_values(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	__u32 *key = ctx->key;
	__u64 *value = ctx->value;

	if (!key || !value)
		return 0;
	BPF_SEQ_PRINTF(seq, "%u=%llu\n", *key, *value);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
