/* container_internal.h - helpers shared by create/start/run (container.c) and exec
 * (exec.c); not part of the public library interface.  */
#ifndef SBX_CONTAINER_INTERNAL_H
#define SBX_CONTAINER_INTERNAL_H

#include <sys/types.h>

#include "core/core.h"
#include "ocispec.h"
#include "state/state.h"

/* Wait on conn until process pid has exec'd (its last word SYNC_EXEC_READY,
   then EOF), forwarding a seccomp notify fd to listenerPath on the way (and
   acknowledging it, so the process execs only once the listener has it);
   SYNC_ERROR becomes *err.  EOF without a word is a death before exec:
   SBX_SYNC_EOF, with *err saying how it died when pid is our child.  */
int sbx_await_exec (int conn, sbx_state *s, const oci_config *c, pid_t pid, sbx_error **err);
/* Our child pid died before its last word: say how (signal, status, and a
   hint when a seccomp profile may have killed it).  Returns -1.  */
int sbx_died_before_exec (pid_t pid, const oci_config *c, sbx_error **err);
/* Receive the pty master of a process being set up (SYNC_PTY) and pass it
   to console_socket, or keep it in *pty_out (-1 when passed on) for the
   foreground, sized like our own terminal.  */
int sbx_receive_pty (int sync, const char *console_socket, int *pty_out, sbx_error **err);

#endif
