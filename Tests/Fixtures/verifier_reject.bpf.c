// SPDX-License-Identifier: GPL-2.0
/*
 * verifier_reject.bpf.c - one program the verifier must reject and one it
 * accepts, in the same object.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: syscall 312 bytes; .maps 32; .bss NOBITS 8; license "GPL".
 * Map 'counts': HASH (1), key u32 (4), value u64 (8), max_entries 16,
 * BTF key/value types.
 * .bss: @0 good_seen u64.
 *
 * Programs (syscall):
 *   bad_null_deref @0, 12 insns: counts #4 (R_BPF_64_64). The unchecked
 *     load is insn #7, "r1 = *(u64 *)(r0 +0)".
 *   good_lookup @0x60, 27 insns: counts #8 #13; good_seen #21.
 *
 * Load (6.18, libbpf 1.6):
 *   All programs: BPF_PROG_LOAD of bad_null_deref fails with EACCES (-13),
 *     so loading the object fails. The log (level 1) contains
 *       "6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=counts,ks=4,vs=8)"
 *       "7: (79) r1 = *(u64 *)(r0 +0)"
 *       "R0 invalid mem access 'map_value_or_null'"
 *     Assert on the last line; the first log line of every syscall program
 *     here is the harmless "arg#0 reference type('UNKNOWN ') size cannot be
 *     determined: -22".
 *   bad_null_deref not loaded (autoload off): good_lookup loads. Run k
 *     (k = 1, 2, ...) -> retval 0, good_seen = 41 + k, counts[1] = 41 + k
 *     (the first run inserts 41 with BPF_NOEXIST, every run adds 1).
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

__u64 good_seen;

/* Rejected: the lookup result may be NULL and is dereferenced unchecked. */
SEC("syscall")
int bad_null_deref(void *ctx)
{
	__u32 key = 1;
	__u64 *val;

	val = bpf_map_lookup_elem(&counts, &key);
	*val += 1;
	return 0;
}

/* Accepted: inserts key 1 with value 41, then increments it through the
 * checked lookup result. */
SEC("syscall")
int good_lookup(void *ctx)
{
	__u32 key = 1;
	__u64 init = 41, *val;

	bpf_map_update_elem(&counts, &key, &init, BPF_NOEXIST);
	val = bpf_map_lookup_elem(&counts, &key);
	if (!val)
		return 1;
	*val += 1;
	good_seen = *val;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
