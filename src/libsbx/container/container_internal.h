/* container_internal.h - helpers shared by the files of src/libsbx/container
 * (create, start, run, exec, update, events); not part of the public library
 * interface.  */
#ifndef SBX_CONTAINER_INTERNAL_H
#define SBX_CONTAINER_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "cgroup/cgroup.h"
#include "core/core.h"
#include "ocispec.h"
#include "state/state.h"

/* A unix socket address for `name` inside a directory fd: through
   /proc/self/fd, so long state paths never overflow sun_path.  */
socklen_t sbx_dir_sockaddr (int dirfd, const char *name, struct sockaddr_un *sa);
/* Start the created container of s (locked by the caller); may_retry:
   a start the init never took leaves it created (not for run).  */
int sbx_container_start_locked (sbx_state *s, bool may_retry, sbx_error **err);
/* delete of s (open and locked): hooks, cgroup, egress rules, the state
   directory; not stopped is refused unless force.  */
int sbx_container_delete_locked (sbx_state *s, bool force, sbx_error **err);
/* A reset's create (reset.c): the trees held in directory `carry` move
   into the new state dir s; a private rootfs among them becomes *rootfs
   (and the state's) again.  _back: a failed create hands them back.  */
int sbx_container_carry_in (const char *carry, sbx_state *s, char **rootfs, sbx_error **err);
void sbx_container_carry_back (const char *carry, sbx_state *s);
/* Wait on conn until process pid has exec'd (its last word SYNC_EXEC_READY,
   then EOF), forwarding a seccomp notify fd to listenerPath on the way (and
   acknowledging it, so the process execs only once the listener has it);
   SYNC_ERROR becomes *err.  EOF without a word is a death before exec:
   SBX_SYNC_HUNG_UP, with *err saying how it died when pid is our child.  */
int sbx_await_exec (int conn, sbx_state *s, const oci_config *c, pid_t pid, sbx_error **err);
/* Our child pid died before its last word: say how (signal, status, and a
   hint when a seccomp profile may have killed it).  Returns -1.  */
int sbx_died_before_exec (pid_t pid, const oci_config *c, sbx_error **err);
/* When the init died of SIGKILL and the container's memory cgroup counts
   an OOM kill (no container code ran yet), replace *err with that, naming
   linux.resources.memory.limit; when ("during setup", "before exec").  */
void sbx_explain_oom (sbx_cgroup *cg, const oci_config *c, pid_t pid, int pidfd, const char *when,
                      sbx_error **err);
/* For r, what a sync expect returned with its error in *e: a hang-up is a
   death before exec (sbx_died_before_exec of pid into *err), any other
   error moves from *e to *err.  Returns r, or -1.  */
int sbx_expect_outcome (int r, sbx_error **e, pid_t pid, const oci_config *c, sbx_error **err);
/* Receive the pty master of a process being set up (SYNC_PTY) and pass it
   to console_socket, or keep it in *pty_out (-1 when passed on) for the
   foreground, sized like our own terminal.  */
int sbx_receive_pty (int sync, const char *console_socket, int *pty_out, sbx_error **err);
/* sbx_container_delete for run, which saved the container's config.json
   from SAVED (not parsed again).  */
int sbx_container_delete_known (const char *root, const char *id, bool force, const oci_config *saved,
                                sbx_error **err);
/* Pods (pod.c).  A member's cgroup shares the pod's (its parent) with
   its sandbox: the last of them to go removes it.  */
void sbx_container_share_pod_cgroup (const char *root, const char *id, const oci_config *c, sbx_cgroup *cg);
/* delete, after the container's processes: its egress rules, and its
   pod's table when the pod's last container goes (taken; NULL is
   fine).  */
struct sbx_net_teardown;
void sbx_container_net_teardown (sbx_state *s, struct sbx_net_teardown *nt);
static inline void
cgroup_freep (sbx_cgroup **cg)
{
  sbx_cgroup_free (*cg);
}
#define cleanup_cgroup __attribute__ ((cleanup (cgroup_freep)))

static inline void
state_freep (sbx_state **s)
{
  sbx_state_free (*s);
}
#define cleanup_state __attribute__ ((cleanup (state_freep)))

/* The manager of the container's cgroup (saved in its state); an error
   naming the container and WHAT ("pause") when it has none.  */
int sbx_container_load_cgroup (sbx_state *s, const char *what, sbx_cgroup **cg, sbx_error **err);

/* The signals `run` and `exec` pass on to the container process
   (supervise.c; run blocks them before start).  */
void sbx_forwarded_signals (sigset_t *set);
/* SIGKILL every process of the container (its cgroup when cg, thawed
   first when paused, and its init), then wait (bounded) for the init to
   be gone, reaping it when it is our child.  */
void sbx_container_kill_and_wait (sbx_state *s, sbx_cgroup *cg, bool paused);

#endif
