/* process.h - the last steps of a container process (init or exec) before
 * execve: cwd, rlimits, oom score, umask, user and groups, capabilities,
 * no_new_privs, seccomp, fd hygiene, PATH lookup inside the container.  */
#ifndef SBX_PROCESS_H
#define SBX_PROCESS_H

#include <stdbool.h>

#include "cgroup.h"
#include "error.h"
#include "ocispec.h"
#include "seccomp.h"

typedef struct
{
  const oci_process *p;
  const sbx_seccomp *seccomp; /* may be NULL */
  int preserve_fds;           /* fds 3..3+n-1 survive into the container */
  int notify_sock;            /* where a seccomp notify fd is sent, or -1 */
  sbx_cgroup *cg;             /* the init's: re-entered before the user switch */
  int procfd;                 /* the container's procfs (procfs.h), or -1: open /proc */
} sbx_exec_ctx;

struct clone_args;
/* clone3 with `ca`, straight into cg's directory when the kernel can
   (CLONE_INTO_CGROUP, v2), else moving the child there afterwards; cg may
   be NULL.  Returns 0 in the child; in the parent its pid, or -1 with the
   child killed and reaped and its pidfd (CLONE_PIDFD) closed.  */
pid_t sbx_spawn_in_cgroup (struct clone_args *ca, sbx_cgroup *cg, const char *what,
                           sbx_error **err);

/* Close every fd >= 3 except the n in keep and the ones the caller
   passed in [3, 3 + preserve_fds): for a process about to become visible
   to the container, which must hold nothing of the host (state dirs,
   cgroup dirs, the log file...).  */
int sbx_close_fds_except (const int *keep, size_t n, int preserve_fds, sbx_error **err);

/* Validate process fields that can be checked before anything runs
   (args, cwd absolute, rlimit names, capabilities).  */
int sbx_process_validate (const oci_process *p, sbx_error **err);
/* Apply everything and execve.  Returns only on failure.  */
int sbx_process_exec (const sbx_exec_ctx *ctx, sbx_error **err);
/* The same in two halves, for a process that waits in between (the
   created init): first everything that needs the runtime's privileges,
   ending with the container's credentials (user, capabilities,
   no_new_privs, and a seccomp filter that needs CAP_SYS_ADMIN to load);
   then the LSM label, the PATH lookup, the last word on ctx->notify_sock,
   a no_new_privs filter and execve.  */
typedef struct
{
  int procfd;     /* for the LSM label: ctx's, or own_procfd */
  int own_procfd; /* opened by the first half, or -1 */
  int notify_fd;  /* a seccomp listener fd loaded early, or -1 */
} sbx_exec_prep;
int sbx_process_drop_privileges (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err);
int sbx_process_finish_exec (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err);
void sbx_exec_prep_release (sbx_exec_prep *prep);

#endif
