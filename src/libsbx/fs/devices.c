/* devices.c - see devices.h.  */
#include <config.h>
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs_internal.h"

static const struct
{
  const char *name;
  unsigned major, minor;
} default_devices[] = {
  { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 },
  { "tty", 5, 0 },
};

static const struct
{
  const char *name, *target;
} default_links[] = {
  { "fd", "/proc/self/fd" },         { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
  { "stderr", "/proc/self/fd/2" },   { "ptmx", "pts/ptmx" },
};

struct node
{
  const char *path; /* in the container */
  mode_t type;      /* S_IFCHR, S_IFBLK or S_IFIFO */
  dev_t rdev;
  mode_t mode;
  bool set_owner;
  uid_t uid;
  gid_t gid;
};

/* In a user namespace mknod of a device is refused: bind a node at the
   same path onto an empty file, nosuid and noexec (nothing on it runs,
   setuid or not; the tmpfs /dev has no such mount options for a bound
   file).  tree (>= 0) is the runtime's node with its configured owner
   (sbx_fs_dev_nodes_open), else the host's node is bound, after checking it
   is the device asked for: its mode and owner stay the host's (changing
   them would change the host's node).  */
static int
bind_node (int dirfd, const char *name, const struct node *n, int tree, sbx_error **err)
{
  cleanup_close int hfd = -1, tfd = -1;
  struct stat sb;
  int f;

  if (tree < 0)
    {
      hfd = open (n->path, O_PATH | O_CLOEXEC);
      if (hfd < 0 || fstat (hfd, &sb) < 0)
        return sbx_error_sys (err, "user namespace: host node %s", n->path);
      if ((sb.st_mode & S_IFMT) != n->type || sb.st_rdev != n->rdev)
        return sbx_error_set (err, EINVAL, "user namespace: host %s is not device %u:%u", n->path,
                              major (n->rdev), minor (n->rdev));
    }
  f = openat (dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (f < 0)
    return sbx_error_sys (err, "create %s", n->path);
  close (f);
  tfd = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    return sbx_error_sys (err, "open %s", n->path);
  if (tree >= 0)
    {
      /* already nosuid,noexec (the tmpfs was mounted so) */
      if (syscall (SYS_move_mount, tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return sbx_error_sys (err, "bind the node made for %s", n->path);
    }
  else if (sbx_fs_bind_fd (hfd, tfd, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC) < 0)
    return sbx_error_sys (err, "bind host %s nosuid,noexec", n->path);
  return 0;
}

/* Create n inside the root, with its parent directories.  An existing entry
   is replaced when replace is set (our own /dev), else left alone.  */
static int
make_node (int rootfd, const struct node *n, bool userns, int tree, bool replace, sbx_error **err)
{
  cleanup_free char *dir = xstrdup (n->path);
  cleanup_close int dfd = -1;
  char *slash = strrchr (dir, '/');
  const char *name = slash ? slash + 1 : dir;
  struct stat sb;

  if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return sbx_error_set (err, EINVAL, "invalid device path");
  if (slash)
    *slash = '\0';
  else
    dir[0] = '\0';
  dfd = sbx_fs_root_resolve (rootfd, slash ? dir : "", SBX_RESOLVE_MKDIR, err);
  if (dfd < 0)
    return dfd;
  if (fstatat (dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
    {
      if (!replace)
        {
          sbx_debug ("%s exists: left alone", n->path);
          return 0;
        }
      if (S_ISDIR (sb.st_mode))
        return sbx_error_set (err, EEXIST, "%s is a directory", n->path);
      if (unlinkat (dfd, name, 0) < 0)
        return sbx_error_sys (err, "replace %s", n->path);
    }
  if (userns && n->type != S_IFIFO)
    return bind_node (dfd, name, n, tree, err);
  if (mknodat (dfd, name, n->type | (n->mode & 07777), n->rdev) < 0)
    return sbx_error_sys (err, "mknod %s", n->path);
  /* mknod applied the umask; nobody else can see the node yet.  */
  if (fchmodat (dfd, name, n->mode & 07777, 0) < 0)
    return sbx_error_sys (err, "chmod %s", n->path);
  if (n->set_owner && fchownat (dfd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "chown %s", n->path);
  return 0;
}

static int
device_node (const oci_device *d, struct node *n, sbx_error **err)
{
  memset (n, 0, sizeof *n);
  n->path = d->path;
  if (strcmp (d->type, "c") == 0 || strcmp (d->type, "u") == 0)
    n->type = S_IFCHR;
  else if (strcmp (d->type, "b") == 0)
    n->type = S_IFBLK;
  else if (strcmp (d->type, "p") == 0)
    n->type = S_IFIFO;
  else
    return sbx_error_set (err, EINVAL, "unknown device type `%s`", d->type);
  if (n->type != S_IFIFO)
    {
      if (!d->has_major || !d->has_minor)
        return sbx_error_set (err, EINVAL, "major and minor are required for type `%s`", d->type);
      if (d->major < 0 || d->major > 0xfff || d->minor < 0 || d->minor > 0xfffff)
        return sbx_error_set (err, EINVAL, "device number %lld:%lld out of range",
                              (long long) d->major, (long long) d->minor);
      n->rdev = makedev ((unsigned) d->major, (unsigned) d->minor);
    }
  n->mode = d->has_file_mode ? d->file_mode : 0666;
  n->set_owner = d->has_uid || d->has_gid;
  n->uid = d->has_uid ? (uid_t) d->uid : (uid_t) -1;
  n->gid = d->has_gid ? (gid_t) d->gid : (gid_t) -1;
  return 0;
}

#define N_DEFAULT (sizeof default_devices / sizeof default_devices[0])

/* Default device i as a node; path is its buffer.  */
static void
default_node (size_t i, char path[32], struct node *n)
{
  snprintf (path, 32, "/dev/%s", default_devices[i].name);
  *n = (struct node){ .path = path,
                      .type = S_IFCHR,
                      .rdev = makedev (default_devices[i].major, default_devices[i].minor),
                      .mode = 0666 };
}

int
sbx_fs_devices_setup (const oci_config *c, int rootfd, bool userns, sbx_dev_kind kind, const int *trees,
                      sbx_error **err)
{
  const oci_linux *l = c->linux;
  size_t ndev = l ? l->devices_len : 0;
  cleanup_close int devfd = -1;

  /* Configured devices first: they win over a default of the same path.  */
  for (size_t i = 0; i < ndev; i++)
    {
      struct node n;
      if (device_node (l->devices[i], &n, err) < 0
          || make_node (rootfd, &n, userns, trees ? trees[i] : -1, kind != SBX_DEV_HOST, err) < 0)
        return sbx_error_wrap (err, "linux.devices[%zu] (%s)", i, l->devices[i]->path);
    }
  if (kind == SBX_DEV_HOST)
    return 0;
  for (size_t i = 0; i < N_DEFAULT; i++)
    {
      char path[32];
      struct node n;
      default_node (i, path, &n);
      if (make_node (rootfd, &n, userns, trees ? trees[ndev + i] : -1, false, err) < 0)
        return -1;
    }
  devfd = sbx_fs_root_resolve (rootfd, "/dev", SBX_RESOLVE_MKDIR, err);
  if (devfd < 0)
    return devfd;
  for (size_t i = 0; i < sizeof default_links / sizeof default_links[0]; i++)
    if (symlinkat (default_links[i].target, devfd, default_links[i].name) < 0 && errno != EEXIST)
      return sbx_error_sys (err, "symlink /dev/%s", default_links[i].name);
  return 0;
}

size_t
sbx_fs_dev_nodes_len (const oci_config *c)
{
  return (c->linux ? c->linux->devices_len : 0) + N_DEFAULT;
}

/* The host ids that own node n of field (linux.devices[N], NULL for a
   default device) through the maps; a configured uid or gid that is not
   mapped is refused, an unmapped 0 of an owner not configured (a joined
   namespace without root) is 1: the host's node is bound.  */
static int
host_owner (const struct node *n, const char *field, const char *uid_map, const char *gid_map,
            unsigned long long ids[2], sbx_error **err)
{
  const char *maps[2] = { uid_map, gid_map }, *what[2] = { "uid", "gid" },
             *names[2] = { "linux.uidMappings", "linux.gidMappings" };
  bool set[2]
      = { field && n->set_owner && n->uid != (uid_t)-1, field && n->set_owner && n->gid != (gid_t)-1 };
  unsigned long long want[2] = { set[0] ? n->uid : 0, set[1] ? n->gid : 0 };
  for (int k = 0; k < 2; k++)
    if (!sbx_idmap_outside (maps[k], want[k], &ids[k]))
      {
        if (!set[k])
          return 1;
        return sbx_error_set (err, EINVAL, "%s.%s %llu is not mapped in the container's user namespace (%s)",
                              field, what[k], want[k], names[k]);
      }
  return 0;
}

/* Node n owned by ids as name on the tmpfs mnt, and a detached copy of it
   in *tree.  1 (errno set) where the kernel does not let us (see
   sbx_fs_dev_nodes_open).  */
static int
runtime_node (int mnt, const char *name, const struct node *n, const unsigned long long ids[2], int *tree,
              sbx_error **err)
{
  if (mknodat (mnt, name, n->type | (n->mode & 07777), n->rdev) < 0)
    return errno == EPERM ? 1 : sbx_error_sys (err, "%s: mknod", n->path);
  if (fchmodat (mnt, name, n->mode & 07777, 0) < 0
      || fchownat (mnt, name, (uid_t)ids[0], (gid_t)ids[1], 0) < 0)
    return sbx_error_sys (err, "%s: chmod and chown the node", n->path);
  *tree = syscall (SYS_open_tree, mnt, name, OPEN_TREE_CLONE | O_CLOEXEC);
  if (*tree < 0)
    return errno == EINVAL || errno == EPERM ? 1 : sbx_error_sys (err, "%s: copy the node", n->path);
  return 0;
}

int
sbx_fs_dev_nodes_open (const oci_config *c, const char *uid_map, const char *gid_map, int **out,
                       sbx_error **err)
{
  const oci_linux *l = c->linux;
  size_t ndev = l ? l->devices_len : 0, len = sbx_fs_dev_nodes_len (c);
  cleanup_free struct node *nodes = xmalloc0 (len * sizeof *nodes);
  cleanup_free unsigned long long (*ids)[2] = xmalloc0 (len * sizeof *ids);
  cleanup_free bool *skip = xmalloc0 (len * sizeof *skip); /* FIFOs (the init's mknod), unmapped root */
  cleanup_free char *paths = xmalloc0 (N_DEFAULT * 32);
  cleanup_free char *opts = xasprintf ("mode=0700,size=4k,nr_inodes=%zu", len + 8);
  cleanup_close int mnt = -1;
  int *trees, r = 0;

  *out = NULL;
  /* Every owner first: refused alike whichever nodes are made.  */
  for (size_t k = 0; k < len; k++)
    {
      cleanup_free char *field = k < ndev ? xasprintf ("linux.devices[%zu]", k) : NULL;
      if (k >= ndev)
        default_node (k - ndev, paths + 32 * (k - ndev), &nodes[k]);
      else if (device_node (l->devices[k], &nodes[k], err) < 0)
        return sbx_error_wrap (err, "%s (%s)", field, l->devices[k]->path);
      if (nodes[k].type == S_IFIFO)
        skip[k] = true;
      else if ((r = host_owner (&nodes[k], field, uid_map, gid_map, ids[k], err)) < 0)
        return -1;
      else if (r > 0)
        skip[k] = true, r = 0;
    }
  mnt = sbx_fs_new_mount ("tmpfs", -1, MS_NOSUID | MS_NOEXEC, opts, err);
  if (mnt < 0)
    return -1;
  trees = xmalloc0 (len * sizeof *trees);
  for (size_t k = 0; k < len; k++)
    trees[k] = -1;
  for (size_t k = 0; k < len && r == 0; k++)
    {
      char name[32];
      snprintf (name, sizeof name, "%zu", k);
      if (!skip[k])
        r = runtime_node (mnt, name, &nodes[k], ids[k], &trees[k], err);
    }
  if (r > 0)
    {
      /* not root of the initial user namespace (mknod), or a kernel
         before 6.15 (no copy of a mount that is not attached)  */
      sbx_debug ("devices: the host's nodes are bound: %s", strerror (errno));
      r = 0;
    }
  else if (r == 0)
    {
      *out = trees;
      return 0;
    }
  sbx_bind_sources_close (trees, len);
  free (trees);
  return r;
}
