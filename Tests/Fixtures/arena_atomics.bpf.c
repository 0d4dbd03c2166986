// SPDX-License-Identifier: GPL-2.0
/*
 * arena_atomics.bpf.c - BPF atomic instructions on arena memory, 32 and 64
 * bit, with and without fetch, plus a test-and-set lock on an arena word.
 *
 * FACTS (clang 21 -target bpf -O2 -g, default -mcpu=v3)
 *
 * Sections: syscall 1872 bytes; .addr_space.1 PROGBITS WA 120 (0x78)
 * align 8; .bss NOBITS 100; .maps 32; license "GPL".
 *
 * Map 'arena': type 33, map_flags 0x400, max_entries 2, map_extra
 * 0x130000000000 (ENUM64 member).
 *
 * .addr_space.1 (offset name = initial value):
 *   @0 at_add64 = 1000            @8 at_add32 = 0xfffffff0
 *   @16 at_or64 = 0xf0            @24 at_or32 = 0x1
 *   @32 at_and64 = 0xff00ff00ff00ff00   @40 at_and32 = 0xdeadbeef
 *   @48 at_xor64 = 0x5555555555555555   @56 at_xor32 = 0x12345678
 *   @64 at_cas64 = 42             @72 at_cas32 = 10
 *   @80 at_xchg64 = 0x1111        @88 at_xchg32 = 5
 *   @92 at_lock = 0  @96 at_lock_failed = 0  @104 at_locked_counter = 0
 *   @112 at_lock_taken = 0
 * .bss: @0 old_add64, @8 old_add32, @16 old_or64, @24 old_or32,
 *   @32 old_and64, @40 old_and32, @48 old_xor64, @56 old_xor32,
 *   @64 cas64_ok, @72 cas64_fail, @80 cas32_ok, @84 cas32_fail,
 *   @88 old_xchg64, @96 old_xchg32 (u64 / u32 as their names say).
 *
 * Program: syscall / atomics_run, 234 insns, 7 may_goto, 16
 * addr_space_cast. Atomic instructions: lock += / |= / &= / ^= (non-fetch)
 * once each on u64 and u32; atomic_fetch_add 3x u64, 1x u32; cmpxchg_64 5x,
 * cmpxchg32_32 5x; xchg_64 1x, xchg32_32 3x. One R_BPF_64_64 relocation per
 * global: at_add64 #0, old_add64 #7, at_add32 #10, old_add32 #17, at_or64
 * #20, old_or64 #41, at_or32 #44, old_or32 #63, at_and64 #66, old_and64 #87,
 * at_and32 #90, old_and32 #109, at_xor64 #112, old_xor64 #131, at_xor32
 * #134, old_xor32 #153, at_cas64 #156, cas64_ok #162, cas64_fail #168,
 * at_cas32 #171, cas32_ok #177, cas32_fail #183, at_xchg64 #186, old_xchg64
 * #191, at_xchg32 #194, old_xchg32 #199, at_lock #203, at_locked_counter
 * #206, at_lock_taken #209, at_lock_failed #212. No kfuncs.
 *
 * Runtime (6.18 x86-64, libbpf 1.6), after exactly one atomics_run:
 *   retval 0
 *   at_add64 1200   (1000 + 234 - 34)      old_add64 1234
 *   at_add32 0x10   (0xfffffff0 + 0x10 wraps to 0, + 0x10)  old_add32 0
 *   at_or64 0xf00000ff0                    old_or64 0xff0
 *   at_or32 0x80000101                     old_or32 0x101
 *   at_and64 0x0f00f0000f000000            old_and64 0xff00ff00ff000f00
 *   at_and32 0xdead00e0                    old_and32 0xdeadbee0
 *   at_xor64 0xaaaaaaaaaaaaaaa5            old_xor64 0xaaaaaaaaaaaaaaaa
 *   at_xor32 0xed34a979                    old_xor32 0xed34a978
 *   at_cas64 4242   cas64_ok 42   cas64_fail 4242
 *   at_cas32 11     cas32_ok 10   cas32_fail 11
 *   at_xchg64 0x2222  old_xchg64 0x1111;  at_xchg32 6  old_xchg32 5
 *   at_lock 0; at_locked_counter 64; at_lock_taken 64; at_lock_failed 0
 * Concurrency: after R runs from any number of threads, at_lock 0,
 * at_locked_counter == at_lock_taken, at_lock_taken + at_lock_failed == 64R
 * and at_add64 == 1000 + 200R (checked: 4 threads x 2000 runs, 512000 each,
 * 0 failed).
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2);
	__ulong(map_extra, 0x130000000000ull);
} arena SEC(".maps");

/* ---- arena operands, each with a distinctive initial value ---- */
__u64 __arena at_add64 = 1000;
__u32 __arena at_add32 = 0xfffffff0;
__u64 __arena at_or64 = 0xf0;
__u32 __arena at_or32 = 0x1;
__u64 __arena at_and64 = 0xff00ff00ff00ff00ull;
__u32 __arena at_and32 = 0xdeadbeef;
__u64 __arena at_xor64 = 0x5555555555555555ull;
__u32 __arena at_xor32 = 0x12345678;
__u64 __arena at_cas64 = 42;
__u32 __arena at_cas32 = 10;
__u64 __arena at_xchg64 = 0x1111;
__u32 __arena at_xchg32 = 5;

/* ---- the lock and what it protects ---- */
__u32 __arena at_lock;			/* 0 free, 1 held */
__u64 __arena at_locked_counter;	/* plain (non-atomic) ++ under the lock */
__u64 __arena at_lock_taken;		/* atomic count of acquisitions */
__u64 __arena at_lock_failed;		/* atomic count of give-ups */

/* ---- values returned by the fetching forms (.bss) ---- */
__u64 old_add64;
__u32 old_add32;
__u64 old_or64;
__u32 old_or32;
__u64 old_and64;
__u32 old_and32;
__u64 old_xor64;
__u32 old_xor32;
__u64 cas64_ok, cas64_fail;
__u32 cas32_ok, cas32_fail;
__u64 old_xchg64;
__u32 old_xchg32;

#define LOCK_ROUNDS	64

/*
 * Fetching or/and/xor on arena memory: the x86-64 JIT has no arena form of
 * BPF_OR|BPF_FETCH (and AND, XOR), so the verifier rejects them ("BPF_ATOMIC
 * stores into R1 arena is not allowed"). Build them from compare-and-swap.
 */
#define DEFINE_CAS_OP(name, type, op)					\
static __always_inline type name(type __arena *p, type v)		\
{									\
	type old = *p, seen;						\
									\
	while (can_loop) {						\
		seen = __sync_val_compare_and_swap(p, old, old op v);	\
		if (seen == old)					\
			break;						\
		old = seen;						\
	}								\
	return old;							\
}
DEFINE_CAS_OP(cas_fetch_or64, __u64, |)
DEFINE_CAS_OP(cas_fetch_or32, __u32, |)
DEFINE_CAS_OP(cas_fetch_and64, __u64, &)
DEFINE_CAS_OP(cas_fetch_and32, __u32, &)
DEFINE_CAS_OP(cas_fetch_xor64, __u64, ^)
DEFINE_CAS_OP(cas_fetch_xor32, __u32, ^)

/* Test-and-set with an atomic exchange; gives up when may_goto runs out. */
static __always_inline int arena_lock(__u32 __arena *lock)
{
	while (__sync_lock_test_and_set(lock, 1)) {
		if (!can_loop)
			return 0;
	}
	return 1;
}

static __always_inline void arena_unlock(__u32 __arena *lock)
{
	/* an exchange, not a plain store, so the release is a full barrier */
	__sync_lock_test_and_set(lock, 0);
}

SEC("syscall")
int atomics_run(void *ctx)
{
	__u32 i;

	/*
	 * A relaxed __atomic_fetch_<op> whose result is unused compiles to the
	 * non-fetching instruction (lock *(u64 *)(r1 + 0) += r2); the __sync
	 * builtins always fetch.
	 */
	__atomic_fetch_add(&at_add64, 234, __ATOMIC_RELAXED);
	old_add64 = __sync_fetch_and_add(&at_add64, -34);
	__atomic_fetch_add(&at_add32, 0x10, __ATOMIC_RELAXED);
	old_add32 = __sync_fetch_and_add(&at_add32, 0x10);

	__atomic_fetch_or(&at_or64, 0x0f00, __ATOMIC_RELAXED);
	old_or64 = cas_fetch_or64(&at_or64, 0xf00000000ull);
	__atomic_fetch_or(&at_or32, 0x100, __ATOMIC_RELAXED);
	old_or32 = cas_fetch_or32(&at_or32, 0x80000000);

	__atomic_fetch_and(&at_and64, 0xffffffffffff0fffull, __ATOMIC_RELAXED);
	old_and64 = cas_fetch_and64(&at_and64, 0x0ffff0000ffff000ull);
	__atomic_fetch_and(&at_and32, 0xfffffff0, __ATOMIC_RELAXED);
	old_and32 = cas_fetch_and32(&at_and32, 0xffff00ff);

	__atomic_fetch_xor(&at_xor64, 0xffffffffffffffffull, __ATOMIC_RELAXED);
	old_xor64 = cas_fetch_xor64(&at_xor64, 0x0f);
	__atomic_fetch_xor(&at_xor32, 0xff00ff00, __ATOMIC_RELAXED);
	old_xor32 = cas_fetch_xor32(&at_xor32, 0x1);

	/* compare-and-swap: one that matches, one that does not */
	cas64_ok = __sync_val_compare_and_swap(&at_cas64, 42, 4242);
	cas64_fail = __sync_val_compare_and_swap(&at_cas64, 42, 7);
	cas32_ok = __sync_val_compare_and_swap(&at_cas32, 10, 11);
	cas32_fail = __sync_val_compare_and_swap(&at_cas32, 10, 12);

	/* exchange */
	old_xchg64 = __sync_lock_test_and_set(&at_xchg64, 0x2222);
	old_xchg32 = __sync_lock_test_and_set(&at_xchg32, 6);

	/* a lock around a non-atomic increment */
	for (i = 0; i < LOCK_ROUNDS; i++) {
		if (!arena_lock(&at_lock)) {
			__sync_fetch_and_add(&at_lock_failed, 1);
			continue;
		}
		at_locked_counter = at_locked_counter + 1;
		__sync_fetch_and_add(&at_lock_taken, 1);
		arena_unlock(&at_lock);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
