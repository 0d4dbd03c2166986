#include "cbpfsys.h"

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
