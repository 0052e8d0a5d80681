/* sync.h - the one parent/child protocol of container creation.
 *
 * Messages travel over a SOCK_SEQPACKET socketpair, one step per message, in
 * this order (P = runtime, C = container init):
 *
 *   P->C  SYNC_GO             ids mapped, cgroup joined: start setting up
 *   C->P  SYNC_RUNTIME_HOOKS  namespaces and mounts done, before pivot_root:
 *                             run prestart + createRuntime hooks now
 *   P->C  SYNC_HOOKS_DONE
 *   C->P  SYNC_CHILD_PID      (pid namespace joined by path) the setup
 *                             process forked the init into it and exits
 *   P->C  SYNC_GO             the init is in its cgroup: go on
 *   C->P  SYNC_PTY            (terminal only) the pty master rides along
 *   C->P  SYNC_CREATED        all set up; blocked waiting for `start`
 *   C->P  SYNC_ERROR          at any point: text + errno of the failure
 *
 * The same framing carries exec's steps (SYNC_CHILD_PID from the joiner,
 * then SYNC_GO, SYNC_PTY, SYNC_ERROR and SYNC_EXEC_READY with the exec
 * process).  Errors are sbx_errors rebuilt on the other side, so the
 * user sees exactly what failed inside the container.  */
#ifndef SBX_SYNC_H
#define SBX_SYNC_H

#include <errno.h>

#include "error.h"

typedef enum
{
  SYNC_GO = 1,
  SYNC_RUNTIME_HOOKS,
  SYNC_HOOKS_DONE,
  SYNC_PTY,
  SYNC_CREATED,
  SYNC_EXEC_READY,
  SYNC_ERROR,
  SYNC_CHILD_PID, /* text: host pid of the process that carries on (exec, joined pid ns) */
} sbx_sync_step;

/* errno of the error reported when the peer hung up.  */
#define SBX_SYNC_EOF_ERRNO EPIPE
/* What the send and expect functions return then (any other failure: -1,
   not the usual -errno), so that EOF is never confused with a reported
   error.  */
#define SBX_SYNC_EOF (-2)

const char *sbx_sync_step_name (sbx_sync_step s);
/* Send a step; fd (>= 0) is attached with SCM_RIGHTS; text (may be NULL)
   rides along (the state JSON for hooks).  */
int sbx_sync_send (int sock, sbx_sync_step step, int fd, sbx_error **err);
int sbx_sync_send_text (int sock, sbx_sync_step step, int fd, const char *text, sbx_error **err);
/* The same with write(2), which any seccomp profile allows (sendmsg is
   not a given); no fd, no text, and SIGPIPE if the peer is gone.  */
int sbx_sync_send_plain (int sock, sbx_sync_step step, sbx_error **err);
/* Send an error to the peer (best effort).  */
void sbx_sync_send_error (int sock, const sbx_error *e);
/* Wait for `want`.  A SYNC_ERROR becomes *err; EOF is "container init
   exited during setup" and returns SBX_SYNC_EOF.  If fd_out is given it
   receives an attached fd.  */
int sbx_sync_expect (int sock, sbx_sync_step want, int *fd_out, sbx_error **err);
/* Same, returning the text payload (malloc'd, "" if none) in *text.  */
int sbx_sync_expect_text (int sock, sbx_sync_step want, int *fd_out, char **text, sbx_error **err);

#endif
