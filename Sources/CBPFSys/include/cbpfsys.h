#ifndef CBPFSYS_H
#define CBPFSYS_H

/*
 * The one C entry point of the BPFKernel module. syscall(2) is variadic, so Swift cannot call it.
 *
 * Contract: returns syscall(2)'s raw result. On failure that is -1 and the reason is in errno,
 * which the Swift caller reads on the same thread immediately after this returns (nothing runs
 * in between that could overwrite it). No <linux/bpf.h> here on purpose: Debian 12 ships the
 * Linux 6.1 header, so the attr layouts live in Swift with the 6.18 offsets.
 */
long cbpf_sys_bpf(int cmd, void *attr, unsigned int size);

/* statfs(2)'s f_type for `path` (to tell bpffs apart), or -1 with errno set. <sys/vfs.h> is not
 * in Swift's Glibc module. */
long cbpf_fs_type(const char *path);

/* perf_event_open(2), which has no glibc wrapper: syscall(2)'s raw result, errno on failure.
 * `attr` is a `struct perf_event_attr` built in Swift (its `size` field set). */
long cbpf_sys_perf_event_open(void *attr, int pid, int cpu, int group_fd, unsigned long flags);

/* ioctl(fd, PERF_EVENT_IOC_ENABLE / PERF_EVENT_IOC_DISABLE, 0): ioctl(2) is variadic and the
 * requests are macros. */
int cbpf_perf_event_enable(int fd);
int cbpf_perf_event_disable(int fd);

#endif
