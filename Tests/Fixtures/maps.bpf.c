// SPDX-License-Identifier: GPL-2.0
/*
 * maps.bpf.c - BTF-defined maps of many kinds, map-in-map and prog-array
 * initial slots, tail calls, CO-RE relocations and an iterator.
 *
 * FACTS (clang 21 -target bpf -O2 -g; read back with llvm-objdump/readelf)
 *
 * Sections: .maps PROGBITS WA 448 (0x1c0); .rel.maps 5 entries; .bss NOBITS
 * 24; license "GPL"; no .data/.rodata.
 *
 * Maps (.maps @offset, symbol size; type; key -> value; max_entries; extra):
 *   @0x000 32 inner_one    ARRAY (2)   int -> int (4/4)       1
 *                          (type 'struct inner_map_def')
 *   @0x020 32 inner_two    ARRAY (2)   int -> int (4/4)       1 (same type)
 *   @0x040 56 outer_arr    ARRAY_OF_MAPS (12)  __u32 -> inner_map_def  4
 *                          slots [0]=inner_one, [3]=inner_two
 *   @0x078 40 outer_hash   HASH_OF_MAPS (13)  key_size 4 -> inner_map_def
 *                          8; slot [1]=inner_two
 *   @0x0a0 48 jmp_table    PROG_ARRAY (3)  key_size 4, values int (void *)
 *                          4; slots [0]=tail_a, [2]=tail_b
 *   @0x0d0 32 stats_hash   HASH (1)    __u32 -> struct flow_stats (4/24) 128
 *   @0x0f0 32 sized_array  ARRAY (2)   key_size 4, value_size 8 (no BTF
 *                          key/value types)  16
 *   @0x110 40 lru_cache    LRU_HASH (9)  __u64 -> __u32 (8/4)  64
 *                          map_flags 0x2 (BPF_F_NO_COMMON_LRU)
 *   @0x138 32 pcpu_counts  PERCPU_ARRAY (6)  __u32 -> __u64 (4/8)  4
 *   @0x158 40 pinned_hash  HASH (1)    __u32 -> __u64 (4/8)  8
 *                          pinning 1 (LIBBPF_PIN_BY_NAME)
 *   @0x180 48 numa_array   ARRAY (2)   __u32 -> __u32 (4/4)  2
 *                          map_flags 0x4 (BPF_F_NUMA_NODE), numa_node 0
 *   @0x1b0 16 events       RINGBUF (27)  16384 (4096*4), no key/value
 * .rel.maps (R_BPF_64_ABS64): 0x58 inner_one (outer_arr[0]), 0x70 inner_two
 * (outer_arr[3]), 0x98 inner_two (outer_hash[1]), 0xb8 tail_a
 * (jmp_table[0]), 0xc8 tail_b (jmp_table[2]).
 *
 * .bss: @0 tail_hits, @4 tail_slot, @8 inner_sum, @12 switch_pid,
 *       @16 switch_tgid, @20 iter_tasks (4 bytes each).
 *
 * Programs (section / function, insns = st_size / 8):
 *   socket               tail_a    @0x00    7
 *   socket               tail_b    @0x38    7
 *   socket               dispatch  @0x70  149  (bpf_tail_call, helper 12,
 *                                  at section insn #160)
 *   tp_btf/sched_switch  on_switch         19
 *   iter/task            dump_task         18
 * Relocations: .relsocket 19 (all R_BPF_64_64: 12 map refs - stats_hash x2,
 * sized_array, lru_cache, pcpu_counts, pinned_hash x2, numa_array,
 * outer_arr, outer_hash, events, jmp_table - and 7 .bss refs),
 * .reltp_btf/sched_switch 2, .reliter/task 1.
 *
 * .BTF.ext CO-RE relocations (section, insn byte offset, root type, access
 * string, kind):
 *   tp_btf/sched_switch  8  task_struct     "0:0"  FIELD_BYTE_OFFSET (pid)
 *   tp_btf/sched_switch 40  task_struct     "0:1"  FIELD_EXISTS (tgid)
 *   tp_btf/sched_switch 56  task_struct     "0:1"  FIELD_BYTE_OFFSET (tgid)
 *   iter/task            8  bpf_iter__task  "0:0"  FIELD_BYTE_OFFSET (meta)
 *   iter/task           16  bpf_iter_meta   "0:0"  FIELD_BYTE_OFFSET (seq)
 *   iter/task           24  bpf_iter__task  "0:1"  FIELD_BYTE_OFFSET (task)
 *   iter/task           40  task_struct     "0:0"  FIELD_BYTE_OFFSET (pid)
 *
 * Runtime (6.18, BPF_PROG_TEST_RUN of the socket programs needs a packet of
 * at least 14 bytes): dispatch returns 0xA with tail_slot=0 (tail_a, which
 * adds 1 to tail_hits), 0xB with tail_slot=2 (tail_b, adds 100), -1 for an
 * empty slot. After two runs with tail_slot=0: inner_sum=6 (inner_one[0]=2,
 * inner_two[0]=4), stats_hash[0]={packets 2, bytes 64, last_slot 0},
 * sized_array[3]=14, lru_cache[0xfeed]=5, pinned_hash[1]=0xfeed,
 * numa_array[1]=0x4e, one 8-byte ringbuf record 0xbeef per run.
 * Loading pins pinned_hash at <pin root>/pinned_hash (libbpf default root
 * /sys/fs/bpf): tests should use their own pin root and remove it.
 */
#include "bpfdepot_common.h"
#include <bpf/bpf_core_read.h>

/* ---- kernel types, CO-RE relocatable ----------------------------------- */

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

/* ---- plain maps --------------------------------------------------------- */

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	__u32 last_slot;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, struct flow_stats);
} stats_hash SEC(".maps");

/* key/value given by size only: no key/value BTF types */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(max_entries, 16);
} sized_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} lru_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_NUMA_NODE);
	__uint(numa_node, 0);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} numa_array SEC(".maps");

/* ---- map-in-map --------------------------------------------------------- */

struct inner_map_def {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, int);
};

struct inner_map_def inner_one SEC(".maps");
struct inner_map_def inner_two SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_map_def);
} outer_arr SEC(".maps") = {
	.values = {
		[0] = &inner_one,
		[3] = &inner_two,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__uint(key_size, 4);
	__array(values, struct inner_map_def);
} outer_hash SEC(".maps") = {
	.values = {
		[1] = &inner_two,
	},
};

/* ---- program array ------------------------------------------------------ */

int tail_a(void *ctx);
int tail_b(void *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_a,
		[2] = (void *)&tail_b,
	},
};

/* ---- globals ------------------------------------------------------------ */

__u32 tail_slot;          /* which jmp_table slot dispatch() jumps to */
int inner_sum;            /* inner_one[0] + inner_two[0], via outer maps */
int tail_hits;
int switch_pid;
int switch_tgid;
__u32 iter_tasks;

/* ---- programs ----------------------------------------------------------- */

SEC("socket")
int tail_a(void *ctx)
{
	tail_hits += 1;
	return 0xA;
}

SEC("socket")
int tail_b(void *ctx)
{
	tail_hits += 100;
	return 0xB;
}

SEC("socket")
int dispatch(void *ctx)
{
	__u32 zero = 0, one = 1, three = 3;
	struct flow_stats init, *fs;
	__u64 lru_key = 0xfeedULL, *cnt, *rec;
	__u32 lru_val = 5, *nv;
	void *inner;
	int *iv;

	fs = bpf_map_lookup_elem(&stats_hash, &zero);
	if (fs) {
		fs->packets += 1;
		fs->last_slot = tail_slot;
	} else {
		/* field by field: an aggregate initialiser makes clang emit an
		 * unreferenced .rodata copy of it */
		__builtin_memset(&init, 0, sizeof(init));
		init.packets = 1;
		init.bytes = 64;
		bpf_map_update_elem(&stats_hash, &zero, &init, BPF_NOEXIST);
	}

	cnt = bpf_map_lookup_elem(&sized_array, &three);
	if (cnt)
		*cnt += 7;

	bpf_map_update_elem(&lru_cache, &lru_key, &lru_val, BPF_ANY);

	cnt = bpf_map_lookup_elem(&pcpu_counts, &one);
	if (cnt)
		*cnt += 1;

	cnt = bpf_map_lookup_elem(&pinned_hash, &one);
	if (!cnt)
		bpf_map_update_elem(&pinned_hash, &one, &lru_key, BPF_ANY);

	nv = bpf_map_lookup_elem(&numa_array, &one);
	if (nv)
		*nv = 0x4e;

	inner_sum = 0;
	inner = bpf_map_lookup_elem(&outer_arr, &zero);
	if (inner) {
		iv = bpf_map_lookup_elem(inner, &zero);
		if (iv) {
			*iv += 1;
			inner_sum += *iv;
		}
	}
	inner = bpf_map_lookup_elem(&outer_hash, &one);
	if (inner) {
		iv = bpf_map_lookup_elem(inner, &zero);
		if (iv) {
			*iv += 2;
			inner_sum += *iv;
		}
	}

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (rec) {
		*rec = 0xbeef;
		bpf_ringbuf_submit(rec, 0);
	}

	bpf_tail_call(ctx, &jmp_table, tail_slot);
	return -1; /* empty slot */
}

SEC("tp_btf/sched_switch")
int on_switch(__u64 *ctx)
{
	/* sched_switch(bool preempt, struct task_struct *prev, *next, ...) */
	struct task_struct *prev = (struct task_struct *)ctx[1];

	switch_pid = prev->pid;
	if (bpf_core_field_exists(prev->tgid))
		switch_tgid = BPF_CORE_READ(prev, tgid);
	return 0;
}

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	int pid;

	if (!task)
		return 0;
	pid = task->pid;
	iter_tasks += 1;
	bpf_seq_write(seq, &pid, sizeof(pid));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
