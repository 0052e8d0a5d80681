/* hooks.h - OCI hooks (config.md "POSIX-platform Hooks"): run one hook list
 * with the container state JSON on stdin, its own args/env, and a timeout.  */
#ifndef SBX_HOOKS_H
#define SBX_HOOKS_H

#include "error.h"
#include "ocispec.h"

/* Run hooks[0..n) in order; stops at the first failure (non-zero exit,
   signal, timeout -> killed with SIGKILL) with an error naming the hook
   kind ("createRuntime"), its index (from 1) and its path, e.g.
   `createRuntime hook #1 (/usr/bin/x): timed out after 2s`.  state_json is
   written to each hook's stdin.  The hook's stdout/stderr go to ours; no
   other fd of ours reaches it, and its environment is exactly hook->env.  */
int sbx_hooks_run (const char *kind, oci_hook *const *hooks, size_t n, const char *state_json,
                   sbx_error **err);

/* For poststart and poststop: a failing hook is a warning and the
   remaining hooks still run (runtime.md, lifecycle steps 9 and 12).  */
void sbx_hooks_run_warn (const char *kind, oci_hook *const *hooks, size_t n, const char *state_json);

#endif
