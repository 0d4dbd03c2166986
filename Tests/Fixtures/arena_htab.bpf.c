// SPDX-License-Identifier: GPL-2.0
/*
 * arena_htab.bpf.c - an open-addressing hash table (linear probing) in BPF
 * arena memory, driven through global subprograms with arena arguments.
 *
 * Table: 512 slots of 16 bytes {used, key, value} in two arena pages from
 * bpf_arena_alloc_pages, linear probing. Keys hash to only 64 home slots
 * (top 6 bits of key * 0x9e3779b9), so inserts collide and probe.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: .text 568 bytes (global subprograms); syscall 1192;
 * .rodata 4; .addr_space.1 PROGBITS WA 56 (0x38) align 8; .maps 32;
 * .bss NOBITS 24; license "GPL". No .rel.text.
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 16, map_extra
 * 0x120000000000 (ENUM64 member).
 *
 * .rodata: @0 htab_keys u32 = 100 (patchable; clamped to 512).
 * .addr_space.1: @0 htab_magic u32 = 0x48544142, @8 table (struct ht, 24:
 *   @8 cap u32, @12 count u32, @16 probes u64, @24 slots ptr),
 *   @32 htab_found_value u64, @40 htab_hits u32, @44 htab_misses u32,
 *   @48 htab_bad u32, @52 htab_target u32 (all but htab_magic zero).
 * .bss: @0 htab_slots_addr u64, @8 htab_inserted u32, @16 htab_value_sum u64.
 *
 * Global subprograms in .text (BTF FUNC linkage global, each arena argument
 * carries BTF DECL_TAG "arg:arena"):
 *   ht_insert @0, 39 insns, 1 may_goto; tag on component_idx 0
 *   ht_find @0x138, 32 insns, 1 may_goto; tags on component_idx 0 and 2
 *   Without the tags the verifier rejects htab_fill with "R1 type=scalar
 *   expected=fp" / "Caller passes invalid args into func#1 ('ht_insert')".
 * Programs (syscall):
 *   htab_fill 64 insns: table #0 #16 #44; arena #7; bpf_arena_alloc_pages
 *     #13 (call); htab_slots_addr #21; htab_keys #24; htab_target #29;
 *     ht_insert #47 (R_BPF_64_32, call src_reg 1 imm -1); htab_inserted #55
 *   htab_lookup 85 insns: htab_keys #0; htab_target #5; htab_hits #35;
 *     htab_misses #40; htab_bad #45; htab_value_sum #49;
 *     htab_found_value #55 #63; table #60; ht_find #65 (call)
 *
 * Runtime (6.18, libbpf 1.6, globals at arena offset 0), K = min(htab_keys,
 * 512):
 *   htab_fill (first run) -> retval K; htab_inserted K; table.cap 512,
 *     table.count K, table.probes 1847 for K = 100 (35411 for 300, 114705
 *     for 512); table.slots = htab_slots_addr = 0x120000001000 (pages 1-2).
 *   htab_fill again -> retval 0, htab_inserted 0, count and probes unchanged.
 *   htab_lookup (after htab_fill) -> retval K; htab_hits K; htab_misses K
 *     (keys K..2K-1); htab_bad 0; htab_value_sum = sum(3k+1, k<K) =
 *     3K(K-1)/2 + K (K = 100: 14950; K = 512: 392960); htab_target K;
 *     htab_found_value 0 (the last key looked up is a miss).
 *   htab_lookup without htab_fill -> retval 0; hits 0, misses K, bad K.
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 16);
	__ulong(map_extra, 0x120000000000ull);
} arena SEC(".maps");

#define HT_SLOT_PAGES	2
#define HT_CAP		(HT_SLOT_PAGES * 4096 / sizeof(struct ht_slot))	/* 512 */
/*
 * Keys hash to one of only 64 home slots, so sequential keys collide and
 * inserts have to probe (table.probes counts the extra slots visited).
 */
#define HT_HOME_BITS	6

struct ht_slot {
	__u32 used;
	__u32 key;
	__u64 value;
};

struct ht {
	__u32 cap;
	__u32 count;
	__u64 probes;			/* extra slots visited by inserts */
	struct ht_slot __arena *slots;
};

/* Number of keys htab_fill inserts (0..htab_keys-1); at most HT_CAP. */
const volatile __u32 htab_keys = 100;

/* ---- arena globals ---- */
__u32 __arena htab_magic = 0x48544142;		/* "HTAB" */
struct ht __arena table;
__u32 __arena htab_hits;			/* htab_lookup: keys 0..K-1 found */
__u32 __arena htab_misses;			/* keys K..2K-1 not found */
__u32 __arena htab_bad;				/* found with a wrong value, or
						   a key >= K that was found */
__u32 __arena htab_target;			/* K as the programs used it */
__u64 __arena htab_found_value;			/* ht_find's out-parameter */

/* ---- .bss ---- */
__u64 htab_value_sum;	/* sum of the values found by htab_lookup */
__u32 htab_inserted;	/* new keys added by the last htab_fill */
__u64 htab_slots_addr;	/* user address of the slot pages */

#define arena_read(var) (*(volatile typeof(var) *)&(var))

static __always_inline __u32 ht_hash(__u32 key)
{
	/* Fibonacci hashing: top HT_HOME_BITS bits of key * 2^32/phi */
	return (key * 2654435769u) >> (32 - HT_HOME_BITS);
}

/*
 * Insert or update. Returns 1 for a new key, 0 for an update, -1 when the
 * table is full or not set up. Global: verified once, on its own, with h
 * known only to be an arena pointer (the arg:arena decl tag).
 */
__noinline int ht_insert(struct ht __arena *h __arg_arena, __u32 key, __u64 value)
{
	struct ht_slot __arena *s;
	__u32 idx, i;

	if (!h || !h->slots)
		return -1;
	idx = ht_hash(key);
	for (i = 0; i < HT_CAP && can_loop; i++) {
		s = &h->slots[(idx + i) & (HT_CAP - 1)];
		if (!s->used) {
			s->used = 1;
			s->key = key;
			s->value = value;
			h->count++;
			h->probes += i;
			return 1;
		}
		if (s->key == key) {
			s->value = value;
			return 0;
		}
	}
	return -1;
}

/*
 * Returns 1 and stores the value through *out when key is present, else 0.
 * Global functions may only return scalars, hence the arena out-pointer.
 */
__noinline int ht_find(struct ht __arena *h __arg_arena, __u32 key,
		       __u64 __arena *out __arg_arena)
{
	struct ht_slot __arena *s;
	__u32 idx, i;

	if (!h || !h->slots || !out)
		return 0;
	idx = ht_hash(key);
	for (i = 0; i < HT_CAP && can_loop; i++) {
		s = &h->slots[(idx + i) & (HT_CAP - 1)];
		if (!s->used)
			return 0;
		if (s->key == key) {
			*out = s->value;
			return 1;
		}
	}
	return 0;
}

static __u32 target_keys(void)
{
	__u32 k = htab_keys;

	if (k > HT_CAP)
		k = HT_CAP;
	htab_target = k;
	/* unknown to the verifier from here on: no per-iteration walk */
	return arena_read(htab_target);
}

SEC("syscall")
int htab_fill(void *ctx)
{
	__u32 k, key, added = 0;
	int ret;

	if (!table.slots) {
		table.slots = bpf_arena_alloc_pages(&arena, NULL, HT_SLOT_PAGES,
						    NUMA_NO_NODE, 0);
		if (!table.slots)
			return -1;
		table.cap = HT_CAP;
	}
	htab_slots_addr = (__u64)table.slots;

	k = target_keys();
	for (key = 0; key < k && can_loop; key++) {
		ret = ht_insert(&table, key, key * 3 + 1);
		if (ret < 0)
			return -2;
		added += ret;
	}
	htab_inserted = added;
	return added;
}

SEC("syscall")
int htab_lookup(void *ctx)
{
	__u32 k, key, hits = 0, misses = 0, bad = 0;
	__u64 sum = 0, v;
	int found;

	k = target_keys();
	for (key = 0; key < 2 * k && can_loop; key++) {
		htab_found_value = 0;
		found = ht_find(&table, key, &htab_found_value);
		v = htab_found_value;
		if (key < k) {
			if (found && v == key * 3 + 1) {
				hits++;
				sum += v;
			} else {
				bad++;
			}
		} else {
			if (found)
				bad++;
			else
				misses++;
		}
	}
	htab_hits = hits;
	htab_misses = misses;
	htab_bad = bad;
	htab_value_sum = sum;
	return hits;
}

char LICENSE[] SEC("license") = "GPL";
