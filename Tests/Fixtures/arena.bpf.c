// SPDX-License-Identifier: GPL-2.0
/*
 * arena.bpf.c - a BPF arena object using the modern ".addr_space.1" layout,
 * arena kfuncs, a kfunc that no kernel has, kconfig and typeless ksym
 * externs.
 *
 * FACTS (clang 21 -target bpf -O2 -g; read back with llvm-objdump/readelf)
 *
 * Sections: .addr_space.1 PROGBITS WA 68 (0x44) align 8; .maps PROGBITS WA
 * 32; .bss NOBITS WA 28 (0x1c); license "GPL". No .kconfig/.ksyms ELF
 * sections: the externs are SHN_UNDEF symbols and live only in the BTF
 * DATASECs '.kconfig' and '.ksyms'.
 *
 * Map 'arena' (.maps @0, 32 bytes): type 33 (BPF_MAP_TYPE_ARENA),
 * map_flags 0x400 (BPF_F_MMAPABLE), max_entries 100 (pages), no key/value,
 * map_extra 1<<44 = 0x100000000000 (member 'map_extra' of type BTF ENUM64,
 * single enumerator __bpfdepot_ulong_0 = 17592186044416).
 *
 * Arena variables (.addr_space.1 @offset, size, initial value):
 *   @0   arena_counter   4  7
 *   @8   arena_rec      24  struct arena_rec { id=3, flags=0x10,
 *                           stamp=0x1122334455, tag="rec" }
 *   @32  arena_msg      32  "hello arena", NUL padded
 *   @64  arena_zero      4  0 (zero-initialised, but still in the PROGBITS
 *                           image, placed after the initialised ones)
 * .bss: @0 arena_page 8 (int __arena *), @8 nr_cpus_seen 4, @12 kver_seen 4,
 *       @16 fops_addr 8, @24 missing_kfunc_called 4.
 *
 * Externs (all SHN_UNDEF):
 *   bpf_arena_alloc_pages   STB_WEAK    kfunc (.ksyms FUNC, linkage extern)
 *   bpf_arena_free_pages    STB_WEAK    kfunc
 *   bpfdepot_no_such_kfunc  STB_WEAK    kfunc present in no kernel
 *   bpf_prog_fops           STB_WEAK    typeless ksym (.ksyms VAR of type
 *                                       const void, DATASEC size 1)
 *   CONFIG_NR_CPUS          STB_GLOBAL  .kconfig VAR unsigned int
 *   LINUX_KERNEL_VERSION    STB_WEAK    .kconfig VAR int
 *
 * Program: syscall / arena_run, 89 insns.
 * Relocations (.relsyscall, 20 entries; instruction numbers):
 *   #1 #10 #59        R_BPF_64_64 arena (map pointer)
 *   #7 #16            R_BPF_64_32 bpf_arena_alloc_pages, #63 R_BPF_64_32
 *                     bpf_arena_free_pages: calls encoded src_reg=1
 *                     imm=-1 (the loader turns them into kfunc calls)
 *   #23 arena_counter, #28 arena_msg, #41 arena_zero, #45 arena_rec:
 *                     R_BPF_64_64 into .addr_space.1; the loaded address
 *                     goes through addr_space_cast(as1->as0) before use
 *                     (mov with off=1, imm=1)
 *   #49 CONFIG_NR_CPUS, #73 LINUX_KERNEL_VERSION   R_BPF_64_64 (kconfig)
 *   #66 bpf_prog_fops                              R_BPF_64_64 (ksym)
 *   #80 bpfdepot_no_such_kfunc  R_BPF_64_64 (existence test, ld_imm64 then
 *                     "if r1 == 0 goto exit"); #83 R_BPF_64_32 (its call)
 *   #55 arena_page, #64 fops_addr, #70 nr_cpus_seen, #76 kver_seen,
 *   #84 missing_kfunc_called                       R_BPF_64_64 (.bss)
 *
 * Runtime (6.18 x86_64 kernel, loaded by libbpf 1.6, one test run):
 *   retval 0; arena_counter 8; arena_zero 0x5ac2 (0x5a5a + 'h');
 *   arena_rec.stamp 0x1122334455 + CONFIG_NR_CPUS; nr_cpus_seen =
 *   CONFIG_NR_CPUS; kver_seen = LINUX_KERNEL_VERSION (e.g. 0x06122c);
 *   missing_kfunc_called 0; the allocated page holds {0x5a5a, 7};
 *   arena_page = user_vm_start (1<<44) + 0x1000 when the globals occupy
 *   page 0 (where globals go inside the arena is the loader's choice);
 *   fops_addr 0 on a kernel without CONFIG_KALLSYMS_ALL.
 */
#include "bpfdepot_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 100);
	__ulong(map_extra, 1ull << 44);
} arena SEC(".maps");

struct arena_rec {
	int id;
	unsigned int flags;
	__u64 stamp;
	char tag[8];
};

/* ---- data living inside the arena (section .addr_space.1) -------------- */

int __arena arena_counter = 7;
int __arena arena_zero;
struct arena_rec __arena arena_rec = {
	.id = 3,
	.flags = 0x10,
	.stamp = 0x1122334455ULL,
	.tag = "rec",
};
char __arena arena_msg[32] = "hello arena";

/* ---- ordinary globals -------------------------------------------------- */

/* a pointer into the arena, itself stored in .bss */
int __arena *arena_page;
__u32 nr_cpus_seen;
int kver_seen;
__u64 fops_addr;
int missing_kfunc_called;

/* ---- externs ----------------------------------------------------------- */

/* a kfunc that no kernel provides: must stay unresolved (weak) */
extern void bpfdepot_no_such_kfunc(void) __ksym __weak;

/* typeless ksym: resolved via /proc/kallsyms (0 without CONFIG_KALLSYMS_ALL) */
extern const void bpf_prog_fops __ksym __weak;

extern unsigned int CONFIG_NR_CPUS __kconfig;
extern int LINUX_KERNEL_VERSION __kconfig __weak;

SEC("syscall")
int arena_run(void *ctx)
{
	int __arena *page;
	char __arena *scratch;

	page = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	if (!page)
		return 1;
	scratch = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	if (!scratch)
		return 2;

	page[0] = 0x5a5a;
	page[1] = arena_counter;
	scratch[0] = arena_msg[0];
	arena_counter += 1;
	arena_zero = page[0] + scratch[0];
	arena_rec.stamp += CONFIG_NR_CPUS;
	arena_page = page;
	bpf_arena_free_pages(&arena, scratch, 1);

	nr_cpus_seen = CONFIG_NR_CPUS;
	kver_seen = LINUX_KERNEL_VERSION;
	fops_addr = (__u64)&bpf_prog_fops;
	if (bpf_ksym_exists(bpfdepot_no_such_kfunc)) {
		bpfdepot_no_such_kfunc();
		missing_kfunc_called = 1;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
