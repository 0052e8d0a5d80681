/* devices.c - see devices.h.  */
#include <config.h>
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
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

/* In a user namespace mknod of a device is refused: bind the host's node at
   the same path onto an empty file, after checking it is the device asked
   for.  Its mode and owner stay the host's (changing them would change the
   host's node).  */
static int
bind_host_node (int dirfd, const char *name, const struct node *n, sbx_error **err)
{
  cleanup_close int hfd = -1, tfd = -1;
  struct stat sb;
  int f;

  hfd = open (n->path, O_PATH | O_CLOEXEC);
  if (hfd < 0 || fstat (hfd, &sb) < 0)
    return sbx_error_sys (err, "user namespace: host node %s", n->path);
  if ((sb.st_mode & S_IFMT) != n->type || sb.st_rdev != n->rdev)
    return sbx_error_set (err, EINVAL, "user namespace: host %s is not device %u:%u", n->path,
                          major (n->rdev), minor (n->rdev));
  f = openat (dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (f < 0)
    return sbx_error_sys (err, "create %s", n->path);
  close (f);
  tfd = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    return sbx_error_sys (err, "open %s", n->path);
  if (sbx_fs_bind_fd (hfd, tfd, false) < 0)
    return sbx_error_sys (err, "bind host %s", n->path);
  /* A node is for reading and writing: nothing on it runs, setuid or not
     (the tmpfs /dev has no such mount options for the bound host file).  */
  {
    struct sbx_mount_attr a = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC };
    cleanup_close int mfd = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (mfd < 0 || (syscall (SYS_mount_setattr, mfd, "", AT_EMPTY_PATH, &a, sizeof a) < 0 && errno != ENOSYS))
      return sbx_error_sys (err, "make the bound host %s nosuid,noexec", n->path);
  }
  return 0;
}

/* Create n inside the root, with its parent directories.  An existing entry
   is replaced when replace is set (our own /dev), else left alone.  */
static int
make_node (int rootfd, const struct node *n, bool userns, bool replace, sbx_error **err)
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
    return bind_host_node (dfd, name, n, err);
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

int
sbx_fs_devices_setup (const oci_config *c, int rootfd, bool userns, sbx_dev_kind kind, sbx_error **err)
{
  const oci_linux *l = c->linux;
  cleanup_close int devfd = -1;

  /* Configured devices first: they win over a default of the same path.  */
  for (size_t i = 0; l && i < l->devices_len; i++)
    {
      struct node n;
      if (device_node (l->devices[i], &n, err) < 0
          || make_node (rootfd, &n, userns, kind != SBX_DEV_HOST, err) < 0)
        return sbx_error_wrap (err, "linux.devices[%zu] (%s)", i, l->devices[i]->path);
    }
  if (kind == SBX_DEV_HOST)
    return 0;
  for (size_t i = 0; i < sizeof default_devices / sizeof default_devices[0]; i++)
    {
      cleanup_free char *path = xasprintf ("/dev/%s", default_devices[i].name);
      struct node n = { .path = path,
                        .type = S_IFCHR,
                        .rdev = makedev (default_devices[i].major, default_devices[i].minor),
                        .mode = 0666 };
      if (make_node (rootfd, &n, userns, false, err) < 0)
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
