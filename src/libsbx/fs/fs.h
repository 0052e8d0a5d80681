/* fs/fs.h - the container's filesystem: the root, mounts[], /dev.
 *
 * Public header of src/libsbx/fs/; one section per source file.  */
#ifndef SBX_FS_FS_H
#define SBX_FS_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "ocispec.h"
#include "state/state.h"

/* mounts.h - the container's root filesystem: propagation, every mounts[]
 * entry in order, /dev, pivot_root, masked and read-only paths.
 *
 * Runs in the container's init process, inside its new mount namespace
 * (and user namespace, if any, after the id mappings are written), or
 * without one below a private bind of the rootfs (shared_ns, hostroot.c).  Every
 * mount target is resolved inside the rootfs without following a symlink out
 * of it (openat2 RESOLVE_IN_ROOT), and missing targets are created.
 *
 * Choices: without linux.rootfsPropagation the container's mounts are
 * rprivate (no mount event crosses between host and container).  A `cgroup`
 * mount on a v1/hybrid host is a tmpfs holding every host hierarchy (v1 as
 * cgroup, unified as cgroup2); with a new cgroup namespace each hierarchy is
 * mounted afresh, without one the process' own cgroup directory of each host
 * hierarchy is bound instead, so the container never sees the host's tree
 * above it either way.  An idmapped bind is the runtime's idmapped copy of
 * its source (sbx_bind_sources_open).  A tmpfs
 * without mode= takes its mount point's mode; with tmpcopyup it starts with
 * a copy of what the image has there.  */

typedef struct
{
  const char *rootfs;   /* absolute path of the rootfs on the host */
  const char *bundle;   /* absolute bundle path: relative bind sources resolve here */
  bool no_pivot;        /* --no-pivot: MS_MOVE + chroot instead of pivot_root */
  bool shared_ns;       /* no mount namespace of its own: build the root
                           below a private bind of it, chroot (hostroot.c) */
  uint64_t host_bind_id; /* shared_ns: the mount id the runtime's bind has
                            (hostroot.c), checked before building on it */
  bool userns;          /* in a user namespace (new, joined, or ours when rootless): bind devices, no mknod */
  int cgroupns;         /* a new cgroup namespace was created (for cgroup mounts) */
  const char *self_cgroup; /* /proc/self/cgroup as it was in the container's
                              cgroups, before the setup left them for the
                              runtime's (bound without a cgroup namespace);
                              NULL: read it at mount time */
  bool has_proc_pidns;  /* procfs mounts show proc_pidns, not the mounter's pid
                           namespace (one joined by path, whose init is
                           forked only after the setup) */
  int proc_pidns;
  bool has_root_mount;  /* root_mount_fd (a detached mount, the overlay) is
                           moved onto rootfs instead of binding it */
  int root_mount_fd;
  const int *bind_trees; /* per mounts[] entry: a detached copy of the bind
                            source (sbx_bind_sources_open), or -1 */
  size_t bind_trees_len;
  const int *dev_trees; /* sbx_fs_dev_nodes_open's nodes, or NULL */
  size_t dev_trees_len;
  /* called once before the first cgroup mount of mounts[] (the init's
     late placement, cgroup.h): the init joins its cgroups and cgroup
     namespace there, and may set self_cgroup */
  int (*before_cgroup) (void *arg, sbx_error **err);
  void *before_cgroup_arg;
} sbx_rootfs_opts;

/* In the runtime, before the init enters a user namespace: a detached copy
   (open_tree OPEN_TREE_CLONE) of each bind source in mounts[], so that a
   source the container's root cannot reach (a 0700 host directory) is still
   bound, as opened with the runtime's credentials.  *out has
   c->mounts_len entries, -1 for non-binds and sources that cannot be opened
   here (the init then opens them itself and reports the error).  */
int sbx_bind_sources_open (const oci_config *c, const char *bundle, int **out, sbx_error **err);
/* Close each tree >= 0 of trees (n entries) and set it to -1; also for
   sbx_fs_dev_nodes_open's.  */
void sbx_bind_sources_close (int *trees, size_t n);
/* The maps of the container's user namespace as uid_map's text, as the
   runtime sees them: a joined one's own (read through it), a new one's
   from linux.uidMappings/gidMappings, or the caller as root when it has
   none.  1 with both malloc'd, 0 (both NULL) without a user namespace,
   -1 with ERR.  */
int sbx_fs_userns_maps (const oci_config *c, char **uid_map, char **gid_map, sbx_error **err);
/* Whether mounts entry m is an idmapped bind (idmap, ridmap, or its own
   uidMappings/gidMappings).  sbx_bind_sources_open makes its copy
   idmapped (mount_setattr MOUNT_ATTR_IDMAP) or fails naming the entry.  */
bool sbx_fs_mount_idmapped (const oci_mount *m);

/* Can procfs be mounted for a given pid namespace (fsconfig "pidns",
   Linux 6.17)?  */
bool sbx_fs_mount_proc_pidns_supported (void);

/* Phase 1, before pivot_root: make / private-ish as rootfsPropagation says,
   bind the rootfs onto itself, perform mounts[], create /dev content
   (default devices, linux.devices, ptmx, fd links).  The process' cwd is
   left unchanged.
   *procfd is the container's procfs (see procfs.h) when mounts[] has one on
   /proc, else -1.  */
int sbx_fs_rootfs_prepare (const oci_config *c, const sbx_rootfs_opts *o, int *procfd, sbx_error **err);

/* Phase 2: pivot_root (or move+chroot), then maskedPaths, readonlyPaths and
   root.readonly.  Afterwards "/" is the container root and cwd is "/".  */
int sbx_fs_rootfs_finish (const oci_config *c, const sbx_rootfs_opts *o, sbx_error **err);

/* hostroot.c - without a mount namespace of its own (the runtime's, or
 * one joined by path) the rootfs is built below a private bind of the
 * rootfs onto itself (sbx_rootfs_opts.shared_ns): nothing propagates to
 * the namespace's other mounts, and one MNT_DETACH of that bind at delete
 * removes everything.  status.json's hostRoot records it before it is
 * made.  */

/* Does c need anything mounted (mounts, masked or read-only paths,
   root.readonly)?  */
bool sbx_fs_host_root_wanted (const oci_config *c);
/* What cannot be done in a shared namespace: shared or slave propagation
   (rootfsPropagation, a mount's options), any mount by an unprivileged
   caller; refused by name.  */
int sbx_fs_host_root_validate (const oci_config *c, sbx_error **err);
/* Make the private bind of rootfs onto itself in its namespace (nsfd,
   joined from c's linux.namespaces path; -1: the runtime's own), after
   recording it in st->host_root (the namespace, the mount under it, the
   bind's id) and calling save (data) while it is still detached.  Refuses
   a rootfs that others than root could redirect, and "/".  */
int sbx_fs_host_root_record (sbx_status_file *st, const oci_config *c, const char *rootfs, int nsfd,
                             int (*save) (void *data, sbx_error **err), void *data, sbx_error **err);
/* Check that the recorded bind is still the one on the rootfs.  */
int sbx_fs_host_root_note_bind (sbx_status_file *st, sbx_error **err);
/* Unmount (MNT_DETACH) the recorded bind and all below it, in its
   namespace, if it is still there and still ours; nothing if the
   namespace is gone.  */
int sbx_fs_host_root_release (const sbx_status_file *st, sbx_error **err);

/* At create, before anything exists: no mount on or under /proc but a
   procfs (or a bind of a procfs root) on /proc itself and binds over the
   few files LXCFS emulates; anything else could redirect the runtime's
   procfs writes (CVE-2019-16884).  bundle resolves relative sources.  */
int sbx_fs_mounts_validate (const oci_config *c, const char *bundle, sbx_error **err);
/* dest made absolute and lexically clean ("//proc/./x/.." -> "/proc"); ".."
   stops at "/".  malloc'd.  */
char *sbx_fs_mount_dest_clean (const char *dest);

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
  bool idmap;                /* idmap or ridmap */
  bool idmap_recursive;      /* ridmap */
  char *data;                /* comma separated filesystem options */
} sbx_mount_opts;

int sbx_fs_mount_opts_parse (char *const *options, size_t n, sbx_mount_opts *out, sbx_error **err);
void sbx_fs_mount_opts_clear (sbx_mount_opts *o);
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
int sbx_fs_root_resolve (int rootfd, const char *path, int create, sbx_error **err);
/* Bind the object behind srcfd onto the one behind tgtfd (open_tree +
   move_mount, or mount(2) through /proc/self/fd); attr_set
   (MOUNT_ATTR_*) is set on the copy before it is attached, where the
   kernel has mount_setattr.  -1 with errno set.  */
int sbx_fs_bind_fd (int srcfd, int tgtfd, bool recursive, uint64_t attr_set);

/* devices.h - the container's /dev content: default devices and symlinks
 * (config-linux.md "Default Devices") and linux.devices.  Called by
 * sbx_fs_rootfs_prepare after mounts[], before pivot_root.  */

typedef enum
{
  SBX_DEV_FRESH,  /* /dev is a new filesystem from mounts[] (tmpfs): populate it */
  SBX_DEV_ROOTFS, /* no /dev mount: populate the rootfs' own /dev, keep what exists */
  SBX_DEV_HOST,   /* /dev is a bind (of the host's): no default devices */
} sbx_dev_kind;

/* rootfd: the rootfs (every path resolved inside it).  userns: device nodes
   cannot be created, bind one onto an empty file instead, nosuid,noexec:
   trees[k] (sbx_fs_dev_nodes_open's, k as there) when trees is not NULL
   and has one, else the host's node (its owner shown as the host's).  */
int sbx_fs_devices_setup (const oci_config *c, int rootfd, bool userns, sbx_dev_kind kind, const int *trees,
                          sbx_error **err);

/* In the runtime, as root of the initial user namespace, before the init
   enters the container's user namespace (mknod is refused there, and a
   devtmpfs cannot be idmapped from it): the container's device nodes with
   their configured owner.  They are made on a private tmpfs that is only
   ever a detached mount (fsmount, nosuid,noexec, never attached on the
   host), each owned by the host ids that uid_map/gid_map (uid_map's text,
   sbx_fs_userns_maps) map to its uid/gid (linux.devices[N].uid/gid, 0 for
   the default devices and without them); *out holds one detached copy
   (open_tree) of each: sbx_fs_dev_nodes_len(c) entries, linux.devices[i]
   at i and the default devices after them, -1 for a FIFO (made by the
   init).  An owner the maps do not map is refused, naming the field.
   *out is NULL (the host's nodes are bound, returns 0) where the kernel
   does not allow it: no CAP_MKNOD in the initial user namespace, or no
   copy of a detached mount (before Linux 6.15).  */
int sbx_fs_dev_nodes_open (const oci_config *c, const char *uid_map, const char *gid_map, int **out,
                           sbx_error **err);
size_t sbx_fs_dev_nodes_len (const oci_config *c);

/* overlay.h - the opt-in writable overlay: annotation
 * org.sbxrun.rootfs.overlay=true or create/run --overlay.  The bundle's
 * rootfs is the lower layer (never written); upper/ and work/ are in the
 * container's state directory.  The runtime builds the filesystem with the
 * new mount API (fsopen/fsconfig/fsmount) as a detached mount, and the init
 * moves it onto the rootfs in its own mount namespace: the host never has
 * it mounted, so nothing is left when the container's namespace goes.  */

#define SBX_OVERLAY_ANNOTATION "org.sbxrun.rootfs.overlay"
#define SBX_OVERLAY_UPPER "upper"
#define SBX_OVERLAY_WORK "work"

/* Whether the config asks for the overlay (flag: --overlay).  Any other
   key under org.sbxrun.rootfs. or a value other than true/false is refused
   naming it.  */
int sbx_fs_overlay_wanted (const oci_config *c, bool flag, bool *out, sbx_error **err);
/* Create upper/ and work/ in the state directory (kept if they exist: a
   fork fills upper/ first); upper/ takes the owner and mode of lower's
   root, which the merged root shows.  */
int sbx_fs_overlay_dirs (int state_dirfd, const char *lower, sbx_error **err);
/* The overlay as a detached mount (an fd for move_mount).  */
int sbx_fs_overlay_mount_fd (const char *lower, const char *upper, const char *work, sbx_error **err);

/* snapshot.h - filesystem snapshots of a container, in its state dir:
 *
 *   snapshots/<name>/manifest.json  sbx_snapshot_manifest: kind, source,
 *                                   lower (overlay), config digest, entries,
 *                                   bytes, tree digest
 *   snapshots/<name>/tree/          the overlay's upper dir (kind
 *                                   "overlay") or the whole rootfs ("full")
 *   snapshots/<name>/process/       create --with-process: CRIU's image of
 *                                   the processes, frozen with the tree
 *                                   (manifest "process": its own sums)
 *
 * Built in snapshots/.tmp-* and renamed into place when complete; every use
 * checks the tree against the manifest and refuses, naming the snapshot,
 * what does not match.  Names are checked like container IDs.  */

#define SBX_SNAPSHOT_OVERLAY "overlay"
#define SBX_SNAPSHOT_FULL "full"

/* The digest of a tree's metadata and its files' content digests
   (snapcopy.c says what they cover).  */
typedef struct
{
  char digest[65];
  unsigned long long entries, bytes;
  char **files_keys, **files_values; /* path -> content digest */
  size_t files_len;
} sbx_tree_sum;
void sbx_tree_sum_clear (sbx_tree_sum *sum);
/* Copy the tree at srcfd into the empty directory dstfd (reflink, else
   chunk by chunk keeping holes; hard links, whiteouts kept, xattrs by the
   policy in docs/design.md: security.capability only with
   SBX_TREE_FILE_CAPS).  Without check, sum gets the content digests; with
   it, each file's is compared with check's as it is copied (a mismatch is
   an error naming the file).  */
#define SBX_TREE_FILE_CAPS 1u
int sbx_fs_tree_copy (int srcfd, int dstfd, const sbx_snapshot_manifest *check, unsigned flags,
                      sbx_tree_sum *sum, sbx_error **err);
/* The same walk without a copy; content read and checked only with check. */
int sbx_fs_tree_sum_of (int dirfd, const sbx_snapshot_manifest *check, sbx_tree_sum *sum, sbx_error **err);
/* The same walk recording the content digests, as a copy does.  */
int sbx_fs_tree_sum_record (int dirfd, sbx_tree_sum *sum, sbx_error **err);

int sbx_fs_snapshot_name_validate (const char *name, sbx_error **err);
/* Parse and check a manifest (name is for the messages).  */
int sbx_fs_snapshot_manifest_parse (const char *text, size_t len, const char *name,
                                    sbx_snapshot_manifest **out, sbx_error **err);
char *sbx_fs_snapshot_manifest_json (const sbx_snapshot_manifest *m, size_t *len);
/* Check snapshot directory snapfd (manifest.json + tree/): the metadata,
   and with content each file's content digest too.  */
int sbx_fs_snapshot_verify_dir (int snapfd, const char *name, bool content, sbx_snapshot_manifest **out,
                                sbx_error **err);
/* snapshots/ of a state dir (made with create).  */
int sbx_fs_snapshot_open_store (int state_dirfd, bool create, sbx_error **err);
/* Rename the finished temporary tmp to name (never over an existing one). */
int sbx_fs_snapshot_commit (int snapsfd, const char *tmp, const char *name, sbx_error **err);
/* mkdir prefix + 6 random characters under dirfd (0700).  */
int sbx_fs_mkdtemp_at (int dirfd, const char *prefix, char **out, sbx_error **err);

/* What a snapshot with a process image adds (create --with-process: the
   checkpoint layer's CRIU dump, which fs does not know).  */
typedef struct
{
  /* State open and locked, the container running or paused, nothing made
     yet: refuse here what would fail (CRIU unusable).  */
  int (*check) (void *data, sbx_state *s, sbx_error **err);
  /* The container frozen, before its tree is copied: fill dir (absolute
     path of the new snapshot's empty process/).  */
  int (*frozen) (void *data, sbx_state *s, const char *dir, sbx_error **err);
  void *data;
} sbx_snapshot_hook;

/* A running container is frozen for the copy.  NULL name: snap-<UTC time>;
   *name_out gets the name used.  With hook (running or paused containers
   only) the snapshot also has its process image.  */
int sbx_fs_snapshot_create (const char *root, const char *id, const char *name, const sbx_snapshot_hook *hook,
                            char **name_out, sbx_error **err);
/* Whether snapshot name of open state s has a process image (its manifest
   says; false when there is none to read: the reset reports that).  */
int sbx_fs_snapshot_has_process (sbx_state *s, const char *name, bool *out, sbx_error **err);
/* A table: NAME KIND PROCESS CREATED BYTES (malloc'd).  */
int sbx_fs_snapshot_list (const char *root, const char *id, char **text, sbx_error **err);
int sbx_fs_snapshot_delete (const char *root, const char *id, const char *name, sbx_error **err);
/* restore --from-snapshot: reset the filesystem of stopped container s
   (open and locked: state.h) to the snapshot, its upper dir or its whole
   rootfs, swapped in whole.  A snapshot that does not check out changes
   nothing.  (container.h's sbx_container_reset then makes it created.)
   With process_to, a process image is first copied, checked, into that
   directory of the state dir (for CRIU's restore); without, it is left.  */
int sbx_fs_snapshot_reset (sbx_state *s, const char *name, const char *process_to, sbx_error **err);
/* create --from-snapshot SRCID:NAME: fill the new container's state dir
   (dst_dirfd, path dst_dir): an overlay snapshot (whose lower must be
   rootfs) becomes its upper dir and sets *overlay; a full one becomes
   dst_dir/rootfs, returned in *rootfs_out.  One with a process image is
   refused (its processes belong to the source's ID and namespaces).  */
int sbx_fs_snapshot_fork (const char *root, const char *spec, int dst_dirfd, const char *dst_dir,
                          const char *rootfs, bool *overlay, char **rootfs_out, sbx_error **err);
/* The pax tar stream of a snapshot (manifest first, then the tree), and
   back into a new snapshot NAME of container ID (checked against the
   manifest it carries before it becomes visible).  */
int sbx_fs_snapshot_export (const char *root, const char *id, const char *name, int out_fd, sbx_error **err);
int sbx_fs_snapshot_import (const char *root, const char *id, const char *name, int in_fd, sbx_error **err);

/* tar.h - the pax tar format of snapshot export/import (tar.c), exposed for
 * unit tests.  */

typedef struct
{
  char name[101], linkname[101];
  char type;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  unsigned long long size;
  long long mtime;
  unsigned devmajor, devminor;
} sbx_tar_entry;

/* Append one "LEN key=value\n" record.  */
void sbx_fs_pax_add (char **buf, size_t *len, const char *key, const char *val, size_t vlen);
typedef int (*sbx_pax_cb) (void *data, const char *key, size_t klen, const char *val, size_t vlen,
                           sbx_error **err);
/* Call cb for each record; a malformed one is an error (EBADMSG).  */
int sbx_fs_pax_parse (const char *buf, size_t len, sbx_pax_cb cb, void *data, sbx_error **err);
/* A ustar header block (checksum filled in).  */
int sbx_fs_tar_header (unsigned char h[512], const char *name, char type, mode_t mode, uid_t uid, gid_t gid,
                       unsigned long long size, long long mtime, unsigned maj, unsigned min);
/* Parse a header block, checking its checksum and numbers.  */
int sbx_fs_tar_parse_header (const unsigned char h[512], sbx_tar_entry *e, sbx_error **err);
/* Write snapshot directory snapfd as a stream; read one into rootfd.  */
int sbx_fs_snapshot_export_fd (int snapfd, int out_fd, sbx_error **err);
int sbx_fs_tar_extract (int in, int rootfd, sbx_error **err);

#endif
