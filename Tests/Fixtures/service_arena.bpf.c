// SPDX-License-Identifier: GPL-2.0
/*
 * service_arena.bpf.c - the service end-to-end fixture (DepotHTTPTests):
 * arena globals (a scalar and a struct), a patchable .rodata constant, a
 * .data scalar and .bss results, and one syscall program that updates them
 * deterministically. Its own map_extra, so it can be loaded while other
 * suites load arena.bpf.c (1<<44) or the other run fixtures.
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * Sections: syscall 0x2e0 (92 insns); .addr_space.1 PROGBITS 32 (0x20);
 * .rodata 4; .data 4; .bss NOBITS 12; .maps 32; license "GPL".
 *
 * Map 'arena': type 33 (ARENA), map_flags 0x400 (BPF_F_MMAPABLE),
 * max_entries 2 (pages), map_extra 0x150000000000 (ENUM64 member).
 *
 * Variables (section @offset, name, type, initial value):
 *   .addr_space.1 @0  svc_counter  int             7
 *   .addr_space.1 @8  svc_rec      struct svc_rec  { id=3, flags=0x10,
 *                                                    stamp=1000, tag="rec" }
 *   .rodata @0        svc_scale    __u32           10  (const volatile)
 *   .data @0          svc_step     int             1
 *   .bss @0           svc_bonus    int             0
 *   .bss @4           svc_tag_sum  __u32           0
 *   .bss @8           svc_runs     __u32           0
 *
 * Program: syscall / svc_run. One run, with the values as they are when it
 * starts (c = svc_counter, d = svc_step, b = svc_bonus, s = svc_scale):
 *   svc_counter = c + d + b          retval = the new svc_counter
 *   svc_rec.id += 1; svc_rec.flags |= 1; svc_rec.stamp += s
 *   svc_runs += 1
 *   svc_tag_sum = sum of the 8 bytes of svc_rec.tag (unsigned)
 * Defaults, one run: retval 8, svc_counter 8, svc_rec {4, 0x11, 1010,
 * "rec"}, svc_runs 1, svc_tag_sum 'r'+'e'+'c' = 314.
 * Checked on 6.18 through the service (ServiceEndToEndTests): the arena at
 * 0x150000000000; with svc_counter 41, svc_rec.tag "patched" and svc_scale
 * 250 patched before the load, one run gives retval 42, svc_rec {4, 0x11,
 * 1250, "patched"}, svc_tag_sum 729.
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
	__ulong(map_extra, 0x150000000000ull);
} arena SEC(".maps");

struct svc_rec {
	int id;
	unsigned int flags;
	__u64 stamp;
	char tag[8];
};

int __arena svc_counter = 7;
struct svc_rec __arena svc_rec = {
	.id = 3,
	.flags = 0x10,
	.stamp = 1000,
	.tag = "rec",
};

const volatile __u32 svc_scale = 10;

int svc_step = 1;
int svc_bonus;

__u32 svc_runs;
__u32 svc_tag_sum;

SEC("syscall")
int svc_run(void *ctx)
{
	__u32 sum = 0;
	int i;

	svc_counter += svc_step + svc_bonus;
	svc_rec.id += 1;
	svc_rec.flags |= 1;
	svc_rec.stamp += svc_scale;
#pragma unroll
	for (i = 0; i < 8; i++)
		sum += (unsigned char)svc_rec.tag[i];
	svc_tag_sum = sum;
	svc_runs += 1;
	return svc_counter;
}

char LICENSE[] SEC("license") = "GPL";
