/* container.h - the OCI lifecycle (runtime.md): create, start, run, state,
 * kill, delete, exec, ps, list.  Each operation takes the state root and the
 * container ID; the CLI only parses flags and calls one of these.  */
#ifndef SBX_CONTAINER_H
#define SBX_CONTAINER_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

typedef struct
{
  const char *root;
  const char *id;
  const char *bundle;         /* default "." */
  const char *config;         /* default <bundle>/config.json */
  const char *pid_file;
  const char *console_socket;
  int preserve_fds;
  bool no_pivot;
  bool no_new_keyring;
  bool systemd_cgroup;
  bool detach;                /* run only */
  bool keep;                  /* run only: keep the state after exit */
} sbx_create_opts;

int sbx_container_create (const sbx_create_opts *o, sbx_error **err);
/* create + start; in the foreground returns the exit code (128+N for a
   signal) after forwarding signals and deleting the container.  */
int sbx_container_run (const sbx_create_opts *o, sbx_error **err);
int sbx_container_start (const char *root, const char *id, sbx_error **err);
/* The OCI state JSON (malloc'd).  */
int sbx_container_state (const char *root, const char *id, char **json, sbx_error **err);
int sbx_container_kill (const char *root, const char *id, int signo, bool all, sbx_error **err);
int sbx_container_delete (const char *root, const char *id, bool force, sbx_error **err);
int sbx_container_pids (const char *root, const char *id, pid_t **pids, size_t *n,
                        sbx_error **err);

typedef struct
{
  const char *root;
  const char *id;
  oci_process *process;       /* complete process (from --process or flags) */
  const char *console_socket;
  const char *pid_file;
  int preserve_fds;
  bool detach;
} sbx_exec_opts;

/* Build the exec process from the container's own process (runc semantics)
   when no --process file is given.  */
int sbx_container_exec_base (const char *root, const char *id, oci_process **out, sbx_error **err);
/* Returns the exit code in the foreground, 0 detached.  */
int sbx_container_exec (const sbx_exec_opts *o, sbx_error **err);

/* Parse a signal name ("TERM", "SIGTERM", "15").  */
int sbx_parse_signal (const char *s, sbx_error **err);

#endif
