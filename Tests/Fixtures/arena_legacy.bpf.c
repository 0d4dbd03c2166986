// SPDX-License-Identifier: GPL-2.0
/*
 * arena_legacy.bpf.c - arena globals placed with the legacy explicit
 * section name ".arena.1" (no address_space attribute on the variables).
 *
 * FACTS (clang 21 -target bpf -O2 -g; read back with llvm-objdump/readelf)
 *
 * Sections: .arena.1 PROGBITS WA 8 bytes align 4; .bss NOBITS WA 8;
 * license "GPL"; .maps PROGBITS WA 32.
 *   .arena.1 @0  arena_x  4  3   (STB_GLOBAL)
 *   .arena.1 @4  arena_y  4  0   (zero-initialised, still PROGBITS)
 *   .bss     @0  legacy_seen 8
 * clang never makes .arena.1 (or .addr_space.1) NOBITS: a file whose only
 * .arena.1 variable is zero also gets a PROGBITS .arena.1 full of zeros.
 * BTF: DATASEC '.arena.1' with VARs arena_x, arena_y (plain int).
 *
 * Map 'legacy_arena' (.maps @0, 32 bytes): type 33 (ARENA), map_flags 0x400
 * (BPF_F_MMAPABLE), max_entries 4, map_extra 1<<45 = 0x200000000000 (ENUM64
 * member), no key/value.
 *
 * Program: syscall / legacy_run, 19 insns.
 * Relocations (.relsyscall, 3 entries): #0 arena_y, #3 arena_x (R_BPF_64_64,
 * each followed by addr_space_cast as1->as0), #15 legacy_seen (R_BPF_64_64).
 *
 * libbpf (checked with 1.6) only knows ".addr_space.1": it skips ".arena.1"
 * as an unrecognized data section and open fails with "bad map relo against
 * 'arena_y' in section '.arena.1'" (-LIBBPF_ERRNO__RELOC). Treated like
 * .addr_space.1 (verified with the section renamed) one test run returns 4
 * and leaves arena_x=4, arena_y=30, legacy_seen=30.
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__ulong(map_extra, 1ull << 45);
} legacy_arena SEC(".maps");

/* arena data placed by explicit section name, no address_space attribute */
int arena_x SEC(".arena.1") = 3;
int arena_y SEC(".arena.1");

/* ordinary .bss result slot */
__u64 legacy_seen;

/*
 * The variables are plain (address space 0) C objects, so the compiler does
 * not know they live in the arena. Going through an integer forces a real
 * address-space-1 pointer: clang then emits addr_space_cast(as1 -> as0)
 * before each dereference, which the verifier needs to treat the value as
 * an arena pointer. (A direct pointer cast is folded away by the optimiser.)
 */
#define ARENA_VAR_PTR(var) ((typeof(var) __arena *)(unsigned long)&(var))

SEC("syscall")
int legacy_run(void *ctx)
{
	int __arena *x = ARENA_VAR_PTR(arena_x);
	int __arena *y = ARENA_VAR_PTR(arena_y);

	*y = *x * 10;
	*x += 1;
	legacy_seen = *y;
	return *x;
}

char LICENSE[] SEC("license") = "GPL";
