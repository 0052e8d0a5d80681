/* procfs.h - writes into procfs that cannot be redirected.
 *
 * Files such as attr/exec (the LSM label), oom_score_adj, uid_map or a
 * sysctl are only safe to write when the write lands on procfs itself: a
 * bind mount over /proc (or over one of its files) would otherwise take the
 * value into an ordinary file, or onto another procfs file, and the
 * container would run unconfined (CVE-2019-16884, CVE-2025-52881).  So a
 * procfs is opened once as a directory fd, checked to be the root of a
 * procfs, replaced by a private detached copy of that mount (which carries
 * none of the mounts stacked on it) where the kernel allows, and every file
 * is then opened beneath that fd without crossing a mount or following a
 * symlink at the end, and checked again to be on that same procfs.  */
#ifndef SBX_PROCFS_H
#define SBX_PROCFS_H

#include <stddef.h>

#include "error.h"

/* Open the procfs mounted at path (relative to dirfd; the last component
   is not followed): an fd usable as procfd below.  Fails unless path is
   the root of a procfs.  */
int sbx_proc_open (int dirfd, const char *path, sbx_error **err);
/* The same, choosing: a private copy is for a process no container
   process can see yet (it carries none of the masks either); a process
   that may be seen uses the mount as it is, masks included.  */
typedef enum
{
  SBX_PROC_PRIVATE_COPY,
  SBX_PROC_MOUNTED,
} sbx_proc_open_mode;
int sbx_proc_open_as (int dirfd, const char *path, sbx_proc_open_mode mode, sbx_error **err);
/* Open rel (e.g. "self/oom_score_adj") beneath procfd for writing.  */
int sbx_proc_open_write (int procfd, const char *rel, sbx_error **err);
/* Open rel beneath procfd and write buf (one write: procfs files take a
   value in one piece).  */
int sbx_proc_write (int procfd, const char *rel, const char *buf, size_t len, sbx_error **err);

#endif
