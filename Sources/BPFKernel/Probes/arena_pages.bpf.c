// SPDX-License-Identifier: GPL-2.0
/*
 * arena_pages.bpf.c - which pages of a BPF arena exist, without making any.
 *
 * User space cannot ask: a read through the arena's user mapping of a page no BPF program
 * allocated goes through the arena's fault handler, which allocates a zeroed page (or raises
 * SIGSEGV with BPF_F_SEGV_ON_FAULT). The kernel side can: a page exists when its kernel
 * address (kern_vm_start + the low 32 bits of its user address, kern_vm_start being the
 * kernel vm area's start plus half of its 64 KiB guard) is mapped, which
 * bpf_probe_read_kernel() answers with 0 or -EFAULT, allocating nothing.
 *
 * This iterator over all maps runs once per BPF_ITER_CREATE read: for the map whose id is
 * `want_id` (an arena), it writes with bpf_seq_write an 8-byte header holding user_vm_start,
 * then for each of `npages` pages listed in `pages` (page numbers from the arena's start) one
 * byte (1: exists). With `copy` set, it also copies each existing page (at most MAX_COPY of
 * them) with bpf_probe_read_kernel from the kernel mapping and writes its 4096 bytes after its
 * byte: user space then never touches the user mapping, so a page freed by a program between
 * the probe and the read cannot be faulted back in (the copy just fails, and says absent).
 * The iterator's seq buffer holds 8 pages, and one object's output must fit in it: 7 pages
 * and their bytes do. Kernel struct offsets come from CO-RE relocations resolved against the
 * running kernel's BTF.
 *
 * Built into BPFKernel: scripts/embed-probes.sh compiles it with the toolchain's clang and
 * writes Sources/BPFKernel/Probes/ArenaPagesObject.swift.
 */
typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __ctx __attribute__((preserve_access_index))

struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
} __ctx;
enum bpf_map_type { BPF_MAP_TYPE_ARENA = 33 };
struct bpf_map {
	enum bpf_map_type map_type;	/* an enum, as in the kernel: CO-RE matches it to no int */
	__u32 id;
} __ctx;
struct vm_struct {
	void *addr;
} __ctx;
struct bpf_arena {
	struct bpf_map map;
	__u64 user_vm_start;
	struct vm_struct *kern_vm;
} __ctx;
struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
} __ctx;

static long (*const bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*const bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;

#define MAX_PAGES 512
#define MAX_COPY 7
#define PAGE_BYTES 4096
#define GUARD_HALF (1ULL << 15)

__u32 want_id;
__u32 npages;
__u32 copy;
__u32 pages[MAX_PAGES];
__u8 page_buf[PAGE_BYTES];

SEC("iter/bpf_map")
int arena_pages(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;
	struct bpf_arena *arena;
	struct vm_struct *vm = 0;
	__u64 user = 0, kstart;
	void *addr = 0;
	__u32 i, n;

	if (!map || map->id != want_id || map->map_type != BPF_MAP_TYPE_ARENA)
		return 0;
	arena = (struct bpf_arena *)map;
	if (bpf_probe_read_kernel(&vm, sizeof(vm), &arena->kern_vm) || !vm)
		return 0;
	if (bpf_probe_read_kernel(&addr, sizeof(addr), &vm->addr) || !addr)
		return 0;
	if (bpf_probe_read_kernel(&user, sizeof(user), &arena->user_vm_start))
		return 0;
	kstart = (__u64)addr + GUARD_HALF;
	bpf_seq_write(seq, &user, sizeof(user));
	n = npages;
	if (copy) {
		for (i = 0; i < MAX_COPY && i < n; i++) {
			__u64 uaddr = user + ((__u64)pages[i] << 12);
			__u8 present;

			present = bpf_probe_read_kernel(page_buf, PAGE_BYTES, (void *)(kstart + (__u32)uaddr)) == 0;
			bpf_seq_write(seq, &present, 1);
			if (present)
				bpf_seq_write(seq, page_buf, PAGE_BYTES);
		}
		return 0;
	}
	for (i = 0; i < MAX_PAGES && i < n; i++) {
		__u64 uaddr = user + ((__u64)pages[i] << 12);
		__u8 byte, present;

		present = bpf_probe_read_kernel(&byte, 1, (void *)(kstart + (__u32)uaddr)) == 0;
		bpf_seq_write(seq, &present, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
