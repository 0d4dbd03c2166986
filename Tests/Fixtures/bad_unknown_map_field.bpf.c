// SPDX-License-Identifier: GPL-2.0
/*
 * bad_unknown_map_field.bpf.c - error fixture: a .maps definition with a
 * member the loader does not know.
 *
 * FACTS: .maps 40 bytes: odd_map (HASH, max_entries 16, key __u32, value
 * __u64, plus member 'bogus_field' = __uint 1). Program syscall /
 * uses_odd_map, 12 insns; .relsyscall 1 entry (odd_map).
 * Expected: rejected at open (strict map parsing, the default). libbpf 1.6:
 * "map 'odd_map': unknown field 'bogus_field'.", -ENOTSUP (-EOPNOTSUPP).
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(bogus_field, 1);
} odd_map SEC(".maps");

SEC("syscall")
int uses_odd_map(void *ctx)
{
	__u32 key = 1;
	__u64 *val = bpf_map_lookup_elem(&odd_map, &key);

	return val ? (int)*val : 0;
}

char LICENSE[] SEC("license") = "GPL";
