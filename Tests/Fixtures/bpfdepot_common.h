/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpfdepot_common.h - shared definitions for the bpfdepot BPF C test fixtures.
 *
 * The build host ships libbpf-dev 1.1.2 whose <bpf/bpf_helpers.h> predates
 * BPF arenas, __ulong() and bpf_ksym_exists(). Everything missing is filled in
 * here, each definition guarded so that a newer libbpf header wins.
 */
#ifndef BPFDEPOT_COMMON_H
#define BPFDEPOT_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/*
 * __ulong(name, val): a map-definition field carrying a 64-bit value.
 * Encoded in BTF as a member whose type is an anonymous enum with a single
 * enumerator equal to val (clang emits BTF_KIND_ENUM64 when val does not fit
 * into 32 bits). libbpf >= 1.3 reads map_extra this way.
 *
 * The enumerator name is built with a two-level paste so __COUNTER__ really
 * expands (__bpfdepot_ulong_0, _1, ...): pasting it directly, as libbpf's
 * single-level ___bpf_concat does, yields the literal name
 * "__unique_value__COUNTER__" and a second __ulong() in the same file then
 * fails with a redefinition error.
 */
#define ___bpfdepot_paste(a, b) a ## b
#define ___bpfdepot_concat(a, b) ___bpfdepot_paste(a, b)
#ifndef __ulong
#define __ulong(name, val) \
	enum { ___bpfdepot_concat(__bpfdepot_ulong_, __COUNTER__) = val } name
#endif

/* uapi values newer than the host's <linux/bpf.h>. */
#ifndef BPF_MAP_TYPE_ARENA
#define BPF_MAP_TYPE_ARENA 33
#endif
#ifndef BPF_F_SEGV_ON_FAULT
#define BPF_F_SEGV_ON_FAULT (1U << 17)
#endif
#ifndef BPF_F_NO_USER_CONV
#define BPF_F_NO_USER_CONV (1U << 18)
#endif

#ifndef __kconfig
#define __kconfig __attribute__((section(".kconfig")))
#endif
#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef __weak
#define __weak __attribute__((weak))
#endif
#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

/*
 * True when a weak __ksym/__kconfig extern was resolved by the loader.
 * The value is only known at load time, so it must not fold to a constant.
 */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/* ---- BPF arena ---------------------------------------------------------- */

#ifndef __arena
#define __arena __attribute__((address_space(1)))
#endif

#ifndef __arena_global
#define __arena_global SEC(".addr_space.1")
#endif

/*
 * Pointer conversions between the user (address_space 1) and kernel
 * (address_space 0) views of the arena. clang >= 18 defines
 * __BPF_FEATURE_ADDR_SPACE_CAST and emits the BPF addr_space_cast
 * instruction by itself whenever a pointer changes address space (there is
 * no __builtin for it), so these are no-ops kept for source compatibility.
 */
#ifndef __BPF_FEATURE_ADDR_SPACE_CAST
#error "bpfdepot arena fixtures need clang with __BPF_FEATURE_ADDR_SPACE_CAST"
#endif
#ifndef cast_kern
#define cast_kern(ptr) /* emitted by the compiler */
#endif
#ifndef cast_user
#define cast_user(ptr) /* emitted by the compiler */
#endif

/* Arena kfuncs (kernel >= 6.9). Weak so the object still loads without them. */
void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt,
				    int node_id, __u64 flags) __ksym __weak;
void bpf_arena_free_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym __weak;

#ifndef NUMA_NO_NODE
#define NUMA_NO_NODE (-1)
#endif

/*
 * __arg_arena: marks a global (non-static) subprogram argument as an arena
 * pointer. Global functions are verified on their own, so the verifier only
 * learns that the argument lives in the arena from this BTF decl tag
 * (kernel >= 6.9). Without it the verifier wants verifier-known memory
 * there and rejects the arena pointer ("R1 type=scalar expected=fp").
 */
#ifndef __arg_arena
#define __arg_arena __attribute__((btf_decl_tag("arg:arena")))
#endif

/* ---- may_goto loops ----------------------------------------------------- */

/*
 * can_loop: true while the verifier-inserted may_goto budget lasts, so a
 * loop condition "&& can_loop" needs no provable bound. The BPF may_goto
 * instruction (kernel >= 6.9; clang 21 defines __BPF_FEATURE_MAY_GOTO)
 * jumps to its target once the per-invocation budget is used up. Written as
 * an always-inline function around asm goto; the host's libbpf-dev has no
 * bpf_experimental.h.
 */
#if defined(__BPF_FEATURE_MAY_GOTO) && !defined(can_loop)
static __always_inline int bpfdepot_may_goto_left(void)
{
	asm volatile goto("may_goto %l[budget_spent]" :::: budget_spent);
	return 1;
budget_spent:
	return 0;
}
#define can_loop bpfdepot_may_goto_left()
#endif

#endif /* BPFDEPOT_COMMON_H */
