/* fs/fs_internal.h - what the files of src/libsbx/fs share: the new mount
 * API's numbers and flags, the mounts[] walk's context, and small helpers.  */
#ifndef SBX_FS_INTERNAL_H
#define SBX_FS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "core/core.h"
#include "fs/fs.h"

/* New syscalls share one number on every architecture but alpha.  */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#define MOVE_MOUNT_T_EMPTY_PATH 0x40
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4
#define MOUNT_ATTR_NOEXEC 0x8
#define MOUNT_ATTR__ATIME 0x70
#define MOUNT_ATTR_RELATIME 0x0
#define MOUNT_ATTR_NOATIME 0x10
#define MOUNT_ATTR_STRICTATIME 0x20
#define MOUNT_ATTR_NODIRATIME 0x80
#endif
#ifndef MOUNT_ATTR_NOSYMFOLLOW
#define MOUNT_ATTR_NOSYMFOLLOW 0x200000
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x100000
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef ST_RELATIME
#define ST_RELATIME 4096
#endif

struct sbx_mount_attr
{
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* A new filesystem of type as a detached mount (fsopen, fsconfig of each
   of data's comma separated options, fsmount with flags' MS_RDONLY,
   MS_NOSUID... as MOUNT_ATTR_*); for proc, of pidns (>= 0).  Its fd.  */
int sbx_fs_new_mount (const char *type, int pidns, unsigned long flags, const char *data, sbx_error **err);

/* mount(2) ignores the type of a bind, remount, move or propagation change;
   "" instead of NULL keeps valgrind's check of the argument quiet.  */
#define NOFS ""

#define ATIME_MODE (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)
#define PROPAGATION (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)
/* Flags that only make sense on a superblock: a bind remount ignores them.  */
#define SB_ONLY (MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK | MS_LAZYTIME | MS_SILENT)

#define FDPATH_MAX 40
static inline const char *
fdpath (char *buf, int fd)
{
  snprintf (buf, FDPATH_MAX, "/proc/self/fd/%d", fd);
  return buf;
}

static inline bool
under_proc (const char *clean)
{
  return strcmp (clean, "/proc") == 0 || sbx_has_prefix (clean, "/proc/");
}

/* The state of one sbx_fs_rootfs_prepare: the rootfs and the container's procfs.  */
struct sbx_mount_ctx
{
  const sbx_rootfs_opts *o;
  const oci_config *c;
  int rootfd;
  char *rootpath; /* where rootfd is, as readlink shows it */
  int procfd;     /* the container's procfs (sbx_proc_open), or -1 */
};

/* (fs/mount_opts.c) linux.rootfsPropagation as MS_* flags; rprivate when
   absent.  */
int sbx_rootfs_propagation (const oci_config *c, unsigned long *out, sbx_error **err);
/* The propagation a mount's options ask for (MS_SHARED, MS_SLAVE... |
   MS_REC), 0 for none; bad options are the mounts loop's to report.  */
unsigned long sbx_mount_propagation (const oci_mount *m);
/* (fs/mounts.c) One mounts[] entry.  */
int sbx_mount_entry (struct sbx_mount_ctx *x, const oci_mount *m, sbx_error **err);
/* (fs/mounts.c) A tmpfs on /dev with "ro": mounted read-write, made
   read-only once everything below it exists.  */
bool sbx_mount_is_ro_dev (const oci_mount *m);
/* (fs/mounts.c) MS_REMOUNT|MS_BIND of the mount behind fd: keep its current
   flags except those explicitly cleared, add set.  target is where mount(2)
   is pointed.  */
int sbx_bind_remount (int fd, const char *target, unsigned long set, unsigned long clear);

/* copyup.c: copy the tree below directory fd `from` into `to` (tmpcopyup):
   files, directories, links (as links), nodes, with owners and modes;
   nothing followed.  */
int sbx_copy_tree (int from, int to, int depth, sbx_error **err);

/* Does a snapshot keep xattr name (snapcopy.c, docs/design.md): user.*
   but user.overlay.*, the overlay's opaque/whiteout/redirect names, POSIX
   ACLs, and security.capability when file_caps.  */
bool sbx_fs_xattr_kept (const char *name, bool file_caps);

/* The sorted entry names of an open directory (no "." or ".."),
   NULL-terminated in *out (NULL when empty), *n of them (snapcopy.c).  */
int sbx_fs_dir_names (int dfd, char ***out, size_t *n, sbx_error **err);

#endif
