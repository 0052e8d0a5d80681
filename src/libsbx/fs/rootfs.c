/* fs/rootfs.c - the container's root: propagation, the mounts[] loop,
 * pivot_root, masked and read-only paths.  */
#include <config.h>
#include "fs/fs.h"
#include "security/security.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs_internal.h"


/* ---- rootfs ---- */

/* Normalised comparison of a destination with "/dev".  */
static bool
is_dev (const char *dest)
{
  while (*dest == '/')
    dest++;
  if (strncmp (dest, "dev", 3) != 0)
    return false;
  dest += 3;
  while (*dest == '/')
    dest++;
  return *dest == '\0';
}

unsigned long
sbx_mount_propagation (const oci_mount *m)
{
  sbx_mount_opts mo;
  unsigned long prop;
  if (m->options_len == 0 || sbx_fs_mount_opts_parse (m->options, m->options_len, &mo, NULL) < 0)
    return 0;
  prop = mo.propagation;
  sbx_fs_mount_opts_clear (&mo);
  return prop;
}

/* Does a mount ask for shared or slave propagation (rshared, rslave...:
   Kubernetes' Bidirectional and HostToContainer)?  Then the sources keep
   their link to the host's peer groups through the setup, as runc's
   default rslave keeps it, and the final rootfsPropagation is set on /
   alone.  */
static bool
mounts_want_propagation (const oci_config *c)
{
  for (size_t i = 0; i < c->mounts_len; i++)
    if (sbx_mount_propagation (c->mounts[i]) & (MS_SHARED | MS_SLAVE))
      return true;
  return false;
}

/* In a namespace shared with others (o->shared_ns), everything below the
   rootfs bind is made private again after each step: a bind of a host
   mount that is shared joins its peer group, and what is mounted on it
   next would propagate back to the host.  */
static int
keep_private (const sbx_rootfs_opts *o, int rootfd, sbx_error **err)
{
  char p[FDPATH_MAX];
  if (o->shared_ns && mount (NULL, fdpath (p, rootfd), NOFS, MS_REC | MS_PRIVATE, NULL) < 0)
    return sbx_error_sys (err, "make the rootfs bind private");
  return 0;
}

/* Bind done: mounts[] and /dev below the rootfs.  */
static int
build_root (const oci_config *c, const sbx_rootfs_opts *o, int *procfd, sbx_error **err)
{
  cleanup_close int rootfd = -1;
  struct sbx_mount_ctx x = { .o = o, .c = c, .procfd = -1 };
  sbx_dev_kind dev = SBX_DEV_ROOTFS;
  int r = -1;

  rootfd = open (o->rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfd < 0)
    return sbx_error_sys (err, "open rootfs %s", o->rootfs);
  x.rootfd = rootfd;
  {
    char p[FDPATH_MAX], buf[PATH_MAX];
    ssize_t n = readlink (fdpath (p, rootfd), buf, sizeof buf - 1);
    if (n < 0)
      return sbx_error_sys (err, "read where rootfs %s is", o->rootfs);
    buf[n] = '\0';
    x.rootpath = xstrdup (buf);
  }

  for (size_t i = 0; i < c->mounts_len; i++)
    {
      const oci_mount *m = c->mounts[i];
      if (o->before_cgroup && m->type && (strcmp (m->type, "cgroup") == 0 || strcmp (m->type, "cgroup2") == 0)
          && o->before_cgroup (o->before_cgroup_arg, err) < 0)
        goto out;
      if (sbx_mount_entry (&x, m, err) < 0)
        {
          sbx_error_wrap (err, "mounts[%zu] (%s)", i, m->destination);
          goto out;
        }
      if (keep_private (o, rootfd, err) < 0)
        goto out;
      if (is_dev (m->destination))
        {
          bool b = (m->type && strcmp (m->type, "bind") == 0);
          for (size_t k = 0; k < m->options_len && !b; k++)
            b = strcmp (m->options[k], "bind") == 0 || strcmp (m->options[k], "rbind") == 0;
          dev = b ? SBX_DEV_HOST : SBX_DEV_FRESH;
        }
    }
  if (sbx_fs_devices_setup (c, rootfd, o->userns, dev, o->dev_trees, err) < 0)
    {
      sbx_error_wrap (err, "/dev");
      goto out;
    }
  if (keep_private (o, rootfd, err) < 0)
    goto out;
  *procfd = steal_fd (&x.procfd);
  r = 0;
out:
  if (x.procfd >= 0)
    close (x.procfd);
  free (x.rootpath);
  return r;
}

/* Without a mount namespace of its own: the runtime has bound the rootfs
   onto itself and made that bind private (recursively) before anything
   is mounted below it (hostroot.c), so nothing propagates to the peers of the namespace's shared
   mounts; nothing outside the rootfs is touched (no propagation change of
   /, no pivot_root).  Removed whole at delete (hostroot.c).  */
static int
host_root_prepare (const oci_config *c, const sbx_rootfs_opts *o, int *procfd, sbx_error **err)
{
  uint64_t id = 0; /* 0: the kernel gives no mount id, so not the bind */
  /* the bind the runtime made and recorded (hostroot.c), nothing else */
  if (sbx_mount_id (AT_FDCWD, o->rootfs, AT_SYMLINK_NOFOLLOW, &id) < 0 && errno != ENOTSUP)
    return sbx_error_sys (err, "rootfs %s", o->rootfs);
  if (o->host_bind_id == 0 || id != o->host_bind_id)
    return sbx_error_set (err, EXDEV, "rootfs %s: the mount there is not the bind the runtime made", o->rootfs);
  return build_root (c, o, procfd, err);
}

int
sbx_fs_rootfs_prepare (const oci_config *c, const sbx_rootfs_opts *o, int *procfd, sbx_error **err)
{
  unsigned long prop;
  struct statfs sf;

  *procfd = -1;
  if (o->rootfs == NULL || o->rootfs[0] != '/')
    return sbx_error_set (err, EINVAL, "rootfs `%s` is not an absolute path", o->rootfs ? o->rootfs : "");
  if (sbx_rootfs_propagation (c, &prop, err) < 0)
    return -1;
  /* Mount targets are named through /proc/self/fd: it must be a procfs.  */
  if (statfs ("/proc", &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
    return sbx_error_set (err, ENOENT, "/proc is not mounted");
  if (o->shared_ns)
    return host_root_prepare (c, o, procfd, err);
  /* Cut the propagation to the host first, always recursively so nothing
     mounted below leaks out.  shared/slave keep a slave link to the host;
     the requested type itself is set on the new / after pivot_root (which
     rejects a shared new root, and an unbindable one could not be bound
     onto itself below).  */
  if (mount (NULL, "/", NOFS,
             MS_REC
                 | ((prop & (MS_SHARED | MS_SLAVE)) || mounts_want_propagation (c) ? MS_SLAVE : MS_PRIVATE),
             NULL)
      < 0)
    return sbx_error_sys (err, "set propagation of /");
  /* pivot_root needs the new root to be a mount point.  The overlay is
     one already; it is attached only now that nothing propagates out.  */
  if (o->has_root_mount)
    {
      if (syscall (SYS_move_mount, o->root_mount_fd, "", AT_FDCWD, o->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return sbx_error_sys (err, "attach the overlay onto rootfs %s", o->rootfs);
    }
  else if (mount (o->rootfs, o->rootfs, NOFS, MS_BIND | MS_REC, NULL) < 0)
    return sbx_error_sys (err, "bind rootfs %s", o->rootfs);
  return build_root (c, o, procfd, err);
}

/* Where mount(2) must be pointed for the object behind fd after pivot_root:
   its magic link when the container has a procfs, else the path itself
   (no container process exists yet, and without /proc a path inside the new
   root cannot lead out of it).  */
static const char *
target_of (char *buf, int fd, const char *path, bool have_proc)
{
  return have_proc ? fdpath (buf, fd) : path;
}

/* path inside the rootfs, or -ENOENT with no error when it is missing:
   a masked or read-only path that does not exist is nothing to do.  */
static int
resolve_present (int rootfd, const char *path, sbx_error **err)
{
  int fd = sbx_fs_root_resolve (rootfd, path, SBX_RESOLVE_EXISTING, err);
  if (fd == -ENOENT && err)
    sbx_error_freep (err);
  return fd;
}

static int
mask_path (int rootfd, const char *path, bool have_proc, int *nullfd, sbx_error **err)
{
  cleanup_close int fd = -1;
  char p[FDPATH_MAX];
  struct stat sb;

  fd = resolve_present (rootfd, path, err);
  if (fd < 0)
    return fd == -ENOENT ? 0 : fd;
  if (fstat (fd, &sb) < 0)
    return sbx_error_sys (err, "stat");
  if (S_ISDIR (sb.st_mode))
    {
      if (mount ("tmpfs", target_of (p, fd, path, have_proc), "tmpfs",
                 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return sbx_error_sys (err, "mount read-only tmpfs");
      return 0;
    }
  if (*nullfd < 0)
    {
      struct stat ns;
      int nf = sbx_fs_root_resolve (rootfd, "/dev/null", SBX_RESOLVE_EXISTING, err);
      if (nf < 0)
        return sbx_error_wrap (err, "the container's /dev/null");
      if (fstat (nf, &ns) < 0 || !S_ISCHR (ns.st_mode) || ns.st_rdev != makedev (1, 3))
        {
          close (nf);
          return sbx_error_set (err, EINVAL,
                                "the container's /dev/null is not the null device (char 1:3)");
        }
      *nullfd = nf;
    }
  if (sbx_fs_bind_fd (*nullfd, fd, false, 0) < 0)
    return sbx_error_sys (err, "bind /dev/null");
  return 0;
}

static int
readonly_path (int rootfd, const char *path, bool have_proc, sbx_error **err)
{
  cleanup_close int fd = -1, nfd = -1;
  char p[FDPATH_MAX];

  fd = resolve_present (rootfd, path, err);
  if (fd < 0)
    return fd == -ENOENT ? 0 : fd;
  if (sbx_fs_bind_fd (fd, fd, true, 0) < 0)
    return sbx_error_sys (err, "bind onto itself");
  nfd = sbx_fs_root_resolve (rootfd, path, SBX_RESOLVE_EXISTING, err);
  if (nfd < 0)
    return nfd;
  if (sbx_bind_remount (nfd, target_of (p, nfd, path, have_proc), MS_RDONLY, 0) < 0)
    return sbx_error_sys (err, "remount read-only");
  return 0;
}

int
sbx_fs_rootfs_finish (const oci_config *c, const sbx_rootfs_opts *o, sbx_error **err)
{
  unsigned long prop;
  cleanup_close int rootfd = -1, nullfd = -1;
  struct statfs sf;
  bool have_proc;
  const oci_linux *l = c->linux;

  if (sbx_rootfs_propagation (c, &prop, err) < 0)
    return -1;
  if (chdir (o->rootfs) < 0)
    return sbx_error_sys (err, "chdir %s", o->rootfs);
  if (o->shared_ns)
    {
      /* pivot_root would move the root of every process of the namespace */
      if (chroot (".") < 0)
        return sbx_error_sys (err, "chroot %s", o->rootfs);
    }
  else if (o->no_pivot)
    {
      if (mount (o->rootfs, "/", NOFS, MS_MOVE, NULL) < 0)
        return sbx_error_sys (err, "move rootfs onto /");
      if (chroot (".") < 0)
        return sbx_error_sys (err, "chroot");
    }
  else
    {
      /* The old root ends up stacked on the new one; detach it.  */
      if (syscall (SYS_pivot_root, ".", ".") < 0)
        return sbx_error_sys (err, "pivot_root %s", o->rootfs);
      if (umount2 (".", MNT_DETACH) < 0)
        return sbx_error_sys (err, "detach the old root");
    }
  if (chdir ("/") < 0)
    return sbx_error_sys (err, "chdir /");
  if (!o->shared_ns
      && mount (NULL, "/", NOFS, mounts_want_propagation (c) ? prop & ~(unsigned long)MS_REC : prop, NULL)
             < 0)
    return sbx_error_sys (err, "linux.rootfsPropagation");

  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return sbx_error_sys (err, "open /");
  have_proc = statfs ("/proc/self/fd", &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
  /* A mount's own propagation (rshared, rslave, rprivate...) comes after
     rootfsPropagation, as the mount asked.  */
  for (size_t i = 0; i < c->mounts_len; i++)
    {
      const char *dest = c->mounts[i]->destination;
      unsigned long mp = sbx_mount_propagation (c->mounts[i]);
      char p[FDPATH_MAX];
      if (mp == 0)
        continue;
      cleanup_close int mfd = sbx_fs_root_resolve (rootfd, dest, SBX_RESOLVE_EXISTING, err);
      if (mfd < 0)
        return sbx_error_wrap (err, "mounts[%zu] (%s): propagation", i, dest);
      if (mount (NULL, target_of (p, mfd, dest, have_proc), NOFS, mp, NULL) < 0)
        return sbx_error_sys (err, "mounts[%zu] (%s): propagation", i, dest);
    }
  for (size_t i = 0; i < c->mounts_len; i++)
    if (sbx_mount_is_ro_dev (c->mounts[i]))
      {
        char p[FDPATH_MAX];
        cleanup_close int dfd = sbx_fs_root_resolve (rootfd, "/dev", SBX_RESOLVE_EXISTING, err);
        if (dfd < 0)
          return sbx_error_wrap (err, "mounts[%zu] (/dev): read-only remount", i);
        if (sbx_bind_remount (dfd, target_of (p, dfd, "/dev", have_proc), MS_RDONLY, 0) < 0)
          return sbx_error_sys (err, "mounts[%zu]: remount /dev read-only", i);
      }
  for (size_t i = 0; l && i < l->masked_paths_len; i++)
    if (mask_path (rootfd, l->masked_paths[i], have_proc, &nullfd, err) < 0)
      return sbx_error_wrap (err, "maskedPaths[%zu] (%s)", i, l->masked_paths[i]);
  for (size_t i = 0; l && i < l->readonly_paths_len; i++)
    if (readonly_path (rootfd, l->readonly_paths[i], have_proc, err) < 0)
      return sbx_error_wrap (err, "readonlyPaths[%zu] (%s)", i, l->readonly_paths[i]);
  if (c->root && c->root->readonly && sbx_bind_remount (rootfd, "/", MS_RDONLY, 0) < 0)
    return sbx_error_sys (err, "root.readonly: remount / read-only");
  return 0;
}
