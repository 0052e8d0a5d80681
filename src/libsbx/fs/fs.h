/* fs/fs.h - the container's filesystem: the root, mounts[], /dev.
 *
 * Public header of src/libsbx/fs/; one section per source file.  */
#ifndef SBX_FS_FS_H
#define SBX_FS_FS_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/core.h"
#include "ocispec.h"

/* mounts.h - the container's root filesystem: propagation, every mounts[]
 * entry in order, /dev, pivot_root, masked and read-only paths.
 *
 * Runs in the container's init process, inside its new mount namespace
 * (and user namespace, if any, after the id mappings are written).  Every
 * mount target is resolved inside the rootfs without following a symlink out
 * of it (openat2 RESOLVE_IN_ROOT), and missing targets are created.
 *
 * Choices: without linux.rootfsPropagation the container's mounts are
 * rprivate (no mount event crosses between host and container).  A `cgroup`
 * mount on a v1/hybrid host is a tmpfs holding every host hierarchy (v1 as
 * cgroup, unified as cgroup2); with a new cgroup namespace each hierarchy is
 * mounted afresh, without one the process' own cgroup directory of each host
 * hierarchy is bound instead, so the container never sees the host's tree
 * above it either way.  idmapped mounts are refused (EOPNOTSUPP).  A tmpfs
 * without mode= takes its mount point's mode; with tmpcopyup it starts with
 * a copy of what the image has there.  */

typedef struct
{
  const char *rootfs;   /* absolute path of the rootfs on the host */
  const char *bundle;   /* absolute bundle path: relative bind sources resolve here */
  bool no_pivot;        /* --no-pivot: MS_MOVE + chroot instead of pivot_root */
  bool userns;          /* running in a new user namespace: bind devices, no mknod */
  int cgroupns;         /* a new cgroup namespace was created (for cgroup mounts) */
  bool has_proc_pidns;  /* procfs mounts show proc_pidns, not the mounter's pid
                           namespace (one joined by path, whose init is
                           forked only after the setup) */
  int proc_pidns;
} sbx_rootfs_opts;

/* Can procfs be mounted for a given pid namespace (fsconfig "pidns",
   Linux 6.17)?  */
bool sbx_mount_proc_pidns_supported (void);

/* Phase 1, before pivot_root: make / private-ish as rootfsPropagation says,
   bind the rootfs onto itself, perform mounts[], create /dev content
   (default devices, linux.devices, ptmx, fd links).  The process' cwd is
   left unchanged.
   *procfd is the container's procfs (see procfs.h) when mounts[] has one on
   /proc, else -1.  */
int sbx_rootfs_prepare (const oci_config *c, const sbx_rootfs_opts *o, int *procfd, sbx_error **err);

/* Phase 2: pivot_root (or move+chroot), then maskedPaths, readonlyPaths and
   root.readonly.  Afterwards "/" is the container root and cwd is "/".  */
int sbx_rootfs_finish (const oci_config *c, const sbx_rootfs_opts *o, sbx_error **err);

/* At create, before anything exists: no mount on or under /proc but a
   procfs (or a bind of a procfs root) on /proc itself and binds over the
   few files LXCFS emulates; anything else could redirect the runtime's
   procfs writes (CVE-2019-16884).  bundle resolves relative sources.  */
int sbx_mounts_validate (const oci_config *c, const char *bundle, sbx_error **err);
/* dest made absolute and lexically clean ("//proc/./x/.." -> "/proc"); ".."
   stops at "/".  malloc'd.  */
char *sbx_mount_dest_clean (const char *dest);

/* Mount option parsing, exposed for unit tests.  */
typedef struct
{
  unsigned long flags;       /* MS_* set */
  unsigned long clear;       /* MS_* explicitly cleared (rw, suid, dev, ...) */
  unsigned long propagation; /* MS_SHARED/MS_PRIVATE/... | MS_REC */
  unsigned long attr_set;    /* MOUNT_ATTR_* for mount_setattr (rro, idmap...) */
  unsigned long attr_clr;    /* MOUNT_ATTR_* cleared recursively (rrw, rsuid, r*atime) */
  bool recursive_ro;         /* rro */
  bool bind;
  bool tmpcopyup;            /* tmpfs: start with the mount point's contents */
  char *data;                /* comma separated filesystem options */
} sbx_mount_opts;

int sbx_mount_opts_parse (char *const *options, size_t n, sbx_mount_opts *out, sbx_error **err);
void sbx_mount_opts_clear (sbx_mount_opts *o);
/* NULL-terminated list of the option names understood (for features).  */
extern const char *const sbx_mount_option_names[];

/* Helpers shared with devices.c.  */
enum
{
  SBX_RESOLVE_EXISTING = 0, /* fail with ENOENT when missing */
  SBX_RESOLVE_MKDIR,        /* create missing components as directories */
  SBX_RESOLVE_MKFILE,       /* same, but the last one as an empty file */
};
/* Resolve path inside the tree rooted at rootfd, never leaving it (absolute
   symlinks and ".." stop at rootfd).  Returns an O_PATH fd (>= 0).  */
int sbx_root_resolve (int rootfd, const char *path, int create, sbx_error **err);
/* Bind the object behind srcfd onto the one behind tgtfd (open_tree +
   move_mount, or mount(2) through /proc/self/fd).  -1 with errno set.  */
int sbx_bind_fd (int srcfd, int tgtfd, bool recursive);

/* devices.h - the container's /dev content: default devices and symlinks
 * (config-linux.md "Default Devices") and linux.devices.  Called by
 * sbx_rootfs_prepare after mounts[], before pivot_root.  */

typedef enum
{
  SBX_DEV_FRESH,  /* /dev is a new filesystem from mounts[] (tmpfs): populate it */
  SBX_DEV_ROOTFS, /* no /dev mount: populate the rootfs' own /dev, keep what exists */
  SBX_DEV_HOST,   /* /dev is a bind (of the host's): no default devices */
} sbx_dev_kind;

/* rootfd: the rootfs (every path resolved inside it).  userns: device nodes
   cannot be created, bind the host's node onto an empty file instead.  */
int sbx_devices_setup (const oci_config *c, int rootfd, bool userns, sbx_dev_kind kind,
                       sbx_error **err);

#endif
