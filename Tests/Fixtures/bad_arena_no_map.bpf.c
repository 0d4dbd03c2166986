// SPDX-License-Identifier: GPL-2.0
/*
 * bad_arena_no_map.bpf.c - error fixture: __arena globals without an arena
 * map.
 *
 * FACTS: .addr_space.1 PROGBITS WA 8 bytes: orphan_counter @0 = 5,
 * orphan_zero @4 = 0. No .maps section. Program syscall / no_arena_map,
 * 12 insns; .relsyscall 2 entries (orphan_counter #0, orphan_zero #6).
 * Expected: rejected at open. libbpf 1.6 fails while collecting relocations:
 * "prog 'no_arena_map': bad arena data relocation at insn 0, no arena maps
 * defined" (-LIBBPF_ERRNO__RELOC).
 */
#include "bpfdepot_common.h"

/* arena data, but no BPF_MAP_TYPE_ARENA map in .maps to back it */
int __arena orphan_counter = 5;
int __arena orphan_zero;

SEC("syscall")
int no_arena_map(void *ctx)
{
	orphan_counter += 1;
	orphan_zero = orphan_counter;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
