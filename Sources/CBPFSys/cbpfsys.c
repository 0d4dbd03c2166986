#include "cbpfsys.h"

#include <sys/syscall.h>
#include <unistd.h>

long cbpf_sys_bpf(int cmd, void *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}
