// SPDX-License-Identifier: GPL-2.0
/*
 * maps_live.bpf.c - one map of every kind GET /v1/loads/{id}/maps/{name}/entries
 * serves, filled by a syscall program with values a test can predict, plus a
 * ringbuf (not readable by key) and a custom data section whose map name is
 * longer than the kernel's 15 characters.
 *
 * Program xdp / fill (run once after load with BPF_PROG_TEST_RUN and a 64-byte
 * packet; XDP, not syscall: sleepable programs may not use LRU or LPM maps;
 * returns XDP_PASS) writes:
 *   stats (array, u32 -> struct stats, 4 entries): key i -> packets 10*(i+1),
 *     bytes 1500*(i+1), kind i % 2 ? KIND_TCP : KIND_UDP, name "s<i>".
 *   flows (hash, struct flow_key -> struct stats, 16 max): for i in 0..5,
 *     key {saddr 0x0a000001 + i, dport 8000 + i, proto 6 (i even) or 17}
 *     -> packets i + 1, bytes 100 * (i + 1), kind KIND_TCP/UDP as proto,
 *     name "f<i>".
 *   recent (LRU hash, u32 -> u64, 8 max): key 100 + i -> (i + 1) * 7, i in 0..2.
 *   cpu_hits (per-CPU array, u32 -> u64, 4 entries): on every possible CPU c
 *     (via bpf_map_lookup_percpu_elem), key i -> 1000 * c + i + 1.
 *   cpu_flows (per-CPU hash, u32 -> struct cpu_stat, 8 max): keys 7 and 8;
 *     on CPU c: hits = k * (c + 1), last_cpu = c, flag = (c == 0).
 *   lru_cpu (LRU per-CPU hash, u32 -> u64, 8 max): key 5; on CPU c: 10 * (c + 1).
 *   routes (LPM trie, struct lpm_key -> u32, no prealloc): 10.0.0.0/8 -> 1,
 *     192.168.1.0/24 -> 2, 192.168.0.0/16 -> 3.
 *   events (ringbuf): one record.
 *   tuning (.data.read_mostly, u32): 42 before the run; the run adds 1.
 *   device_total (.bss.counters_per_device, u64): the run adds tenant_limit.
 *   tenant_limit (.rodata.limits_for_tenants, const u32): 7.
 *   wide (array, u32 -> u64, 1100 entries): untouched (all zero); more entries
 *     than a load may export as series.
 *
 * Names, as libbpf's bpf_map__name gives them: .data.read_mostly and
 * .rodata.limits_for_tenants by the whole section name (the kernel keeps
 * ".data.read_most" and ".rodata.limits_"), but .bss.counters_per_device by
 * the kernel's ".bss.counters_p" (libbpf's map_uses_real_name covers .data.*
 * and .rodata.* only).
 */
#include "bpfdepot_common.h"

enum kind { KIND_UDP = 17, KIND_TCP = 6 };

struct stats {
	__u64 packets;
	__u64 bytes;
	enum kind kind;
	char name[4];
};

struct flow_key {
	__u32 saddr;
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

struct cpu_stat {
	__u64 hits;
	__u32 last_cpu;
	_Bool flag;
};

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow_key);
	__type(value, struct stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} cpu_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct cpu_stat);
} cpu_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} lru_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1100);
	__type(key, __u32);
	__type(value, __u64);
} wide SEC(".maps");

__u32 tuning SEC(".data.read_mostly") = 42;
__u64 device_total SEC(".bss.counters_per_device");
const volatile __u32 tenant_limit SEC(".rodata.limits_for_tenants") = 7;

static __always_inline void set_name(char *dst, char tag, __u32 i)
{
	dst[0] = tag;
	dst[1] = '0' + i;
	dst[2] = 0;
	dst[3] = 0;
}

static __always_inline void route(__u32 prefixlen, __u8 a, __u8 b, __u8 c, __u32 value)
{
	struct lpm_key k = { .prefixlen = prefixlen, .addr = { a, b, c, 0 } };

	bpf_map_update_elem(&routes, &k, &value, BPF_ANY);
}

static __always_inline void fill_cpu_hits(const __u32 i)
{
	__u32 key = i, c;

#pragma unroll
	for (c = 0; c < 64; c++) {
		__u64 *v = bpf_map_lookup_percpu_elem(&cpu_hits, &key, c);

		if (!v)
			break;
		*v = 1000 * c + i + 1;
	}
}

static __always_inline void fill_cpu_flows(const __u32 k)
{
	struct cpu_stat zero = {};
	__u32 key = k, c;

	bpf_map_update_elem(&cpu_flows, &key, &zero, BPF_ANY);
#pragma unroll
	for (c = 0; c < 64; c++) {
		struct cpu_stat *v = bpf_map_lookup_percpu_elem(&cpu_flows, &key, c);

		if (!v)
			break;
		v->hits = k * (c + 1);
		v->last_cpu = c;
		v->flag = c == 0;
	}
}

static __always_inline void fill_lru_cpu(void)
{
	__u64 zero = 0;
	__u32 key = 5, c;

	bpf_map_update_elem(&lru_cpu, &key, &zero, BPF_ANY);
#pragma unroll
	for (c = 0; c < 64; c++) {
		__u64 *v = bpf_map_lookup_percpu_elem(&lru_cpu, &key, c);

		if (!v)
			break;
		*v = 10 * (c + 1);
	}
}

static __always_inline int fill_stat(const __u32 i)
{
	__u32 key = i;
	struct stats *s = bpf_map_lookup_elem(&stats, &key);

	if (!s)
		return -1;
	s->packets = 10 * (i + 1);
	s->bytes = 1500 * (i + 1);
	s->kind = i % 2 ? KIND_TCP : KIND_UDP;
	set_name(s->name, 's', i);
	return 0;
}

static __always_inline void fill_flow(const __u32 i)
{
	struct flow_key k = { .saddr = 0x0a000001 + i, .dport = 8000 + i, .proto = i % 2 ? 17 : 6 };
	struct stats v = { .packets = i + 1, .bytes = 100 * (i + 1), .kind = i % 2 ? KIND_UDP : KIND_TCP };

	set_name(v.name, 'f', i);
	bpf_map_update_elem(&flows, &k, &v, BPF_ANY);
}

static __always_inline void fill_recent(const __u32 i)
{
	__u32 k = 100 + i;
	__u64 v = (i + 1) * 7;

	bpf_map_update_elem(&recent, &k, &v, BPF_ANY);
}

SEC("xdp")
int fill(struct xdp_md *ctx)
{
	__u32 one = 1;

	if (fill_stat(0) || fill_stat(1) || fill_stat(2) || fill_stat(3))
		return XDP_ABORTED;
	fill_flow(0);
	fill_flow(1);
	fill_flow(2);
	fill_flow(3);
	fill_flow(4);
	fill_recent(0);
	fill_recent(1);
	fill_recent(2);
	fill_cpu_hits(0);
	fill_cpu_hits(1);
	fill_cpu_hits(2);
	fill_cpu_hits(3);
	fill_cpu_flows(7);
	fill_cpu_flows(8);
	fill_lru_cpu();
	route(8, 10, 0, 0, 1);
	route(24, 192, 168, 1, 2);
	route(16, 192, 168, 0, 3);
	bpf_ringbuf_output(&events, &one, sizeof(one), 0);
	tuning += 1;
	device_total += tenant_limit;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
