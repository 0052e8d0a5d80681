/* sealed.h - run from a sealed copy of our own binary.
 *
 * A container process that can reach one of our processes' executable
 * (its own entrypoint a link to /proc/self/exe, /proc/<pid>/exe of our init
 * or exec process, a ptracer in a shared pid namespace) could otherwise
 * reopen the host's sbxrun for writing once we exit, and the next sbxrun on
 * the host would run its code as root (CVE-2019-5736).  So the commands
 * that make processes a container can see re-execute themselves, first
 * thing, from an anonymous copy sealed against writes: the file behind
 * every such /proc/<pid>/exe is then that copy, which nobody can change and
 * which disappears with the last process that runs it.  */
#ifndef SBX_SEALED_H
#define SBX_SEALED_H

#include <stdbool.h>

#include "error.h"

/* True when this process runs from a sealed copy (or an unlinked private
   copy made by the fallback).  */
bool sbx_running_sealed (void);
/* Re-execute from a sealed copy of /proc/self/exe with the same argv and
   environment, unless already running from one.  Returns 0 when running
   sealed; on failure returns -1 with *err set (never runs unprotected
   silently).  Call before opening anything: every fd of ours is
   close-on-exec, the caller's fds pass through unchanged.  */
int sbx_reexec_sealed (char **argv, sbx_error **err);

#endif
