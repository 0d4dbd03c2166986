#include "cbpfsys.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

long cbpf_sys_bpf(int cmd, void *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

long cbpf_fs_type(const char *path)
{
	struct statfs fs;
	if (statfs(path, &fs) != 0)
		return -1;
	return (long)fs.f_type;
}

long cbpf_sys_perf_event_open(void *attr, int pid, int cpu, int group_fd, unsigned long flags)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group_fd, flags);
}

int cbpf_perf_event_enable(int fd)
{
	return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

int cbpf_perf_event_disable(int fd)
{
	return ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
}
