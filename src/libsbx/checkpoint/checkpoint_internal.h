/* checkpoint_internal.h - running CRIU (criu.c) for checkpoint.c.  */
#ifndef SBX_CHECKPOINT_INTERNAL_H
#define SBX_CHECKPOINT_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "checkpoint/checkpoint.h"
#include "core/core.h"
#include "ocispec.h"
#include "state/state.h"

/* A growing NULL-terminated argument vector.  */
typedef struct
{
  char **v;
  size_t n;
} sbx_argv;

void sbx_argv_add (sbx_argv *a, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void sbx_argv_clear (sbx_argv *a);

/* Run `criu ARGS...` (a->v[0] is replaced by the binary) with stdin
   /dev/null and fds[i] as fd 3+i in CRIU; nothing else of ours is
   inherited.  CRIU logs to log_path; on failure *err carries CRIU's
   "Error" lines from it (the last few) and the log's path.  */
int sbx_criu_run (const char *criu, sbx_argv *a, const int *fds, size_t nfds, const char *log_path,
                  sbx_error **err);

/* 0 if `criu check --feature FEATURE` passes; else an error for WHAT (the
   flag that needs it) with CRIU's reason.  */
int sbx_criu_feature (const char *criu, const char *feature, const char *what, sbx_error **err);

/* A mount of /proc/PID/mountinfo.  */
typedef struct
{
  unsigned maj, min;
  char *root;  /* path inside its filesystem */
  char *point; /* mount point, relative to the process's root */
  char *fstype;
} sbx_mnt;

int sbx_mountinfo_read (const char *path, sbx_mnt **out, size_t *n, sbx_error **err);
void sbx_mountinfo_free (sbx_mnt *m, size_t n);

/* (checkpoint.c) CRIU's dump of open and locked running (or paused)
   container s with config c, as `checkpoint` makes it.  */
int sbx_checkpoint_locked (const sbx_checkpoint_opts *o, sbx_state *s, const oci_config *c, sbx_error **err);
/* (checkpoint.c) 0 when CRIU is usable, else an error for WHAT with CRIU's
   reason and a hint.  */
int sbx_criu_ready (const char *criu, const char *root, const char *what, sbx_error **err);
/* EPERM: `what` (checkpoint, restore) is not supported for an unprivileged
   caller, and why.  */
int sbx_criu_refuse_rootless (const char *what, sbx_error **err);

#endif
