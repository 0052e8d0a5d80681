/* process/spawn.c - clone3 for the runtime's children: into the container's
 * cgroup (CLONE_INTO_CGROUP, with a fallback for kernels before 5.7), and a
 * sibling (CLONE_PARENT) for exec's joiner and the pod member's setup.  */
#include <config.h>
#include "process/process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "security/security.h"

pid_t
sbx_process_fork_sibling (void)
{
  struct clone_args ca = { .flags = CLONE_PARENT }; /* its exit signal is ours */
  pid_t pid = syscall (SYS_clone3, &ca, sizeof ca);
  if (pid < 0 && (errno == ENOSYS || errno == EPERM))
    pid = syscall (SYS_clone, CLONE_PARENT, NULL, NULL, NULL, NULL);
  return pid;
}

pid_t
sbx_process_spawn_in_cgroup (struct clone_args *ca, sbx_cgroup *cg, const char *what, sbx_error **err)
{
  int cgfd = cg ? sbx_cgroup_clone_fd (cg) : -1;
  pid_t pid;

  if (cgfd >= 0)
    {
      ca->flags |= CLONE_INTO_CGROUP;
      ca->cgroup = (uint64_t)cgfd;
    }
  pid = syscall (SYS_clone3, ca, sizeof *ca);
  /* Kernels before 5.7 know neither the flag nor the larger struct.  */
  if (pid < 0 && (ca->flags & CLONE_INTO_CGROUP) && (errno == EINVAL || errno == E2BIG))
    {
      ca->flags &= ~(uint64_t)CLONE_INTO_CGROUP;
      pid = syscall (SYS_clone3, ca, offsetof (struct clone_args, set_tid));
    }
  if (pid < 0)
    return sbx_error_sys (err, "clone3 %s", what);
  /* Prepared, the child moves itself into the rest (see cgroup.h).  */
  if (pid == 0 || cg == NULL || sbx_cgroup_stage_ready (cg)
      || ((ca->flags & CLONE_INTO_CGROUP) && sbx_cgroup_dirfd (cg) >= 0))
    return pid;
  if (sbx_cgroup_enter (cg, pid, err) == 0)
    return pid;
  kill (pid, SIGKILL);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if ((ca->flags & CLONE_PIDFD) && ca->pidfd)
    {
      int *pidfd = (int *)(uintptr_t)ca->pidfd;
      close (*pidfd);
      *pidfd = -1;
    }
  return -1;
}
