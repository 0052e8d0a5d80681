/* fs/hostroot.c - a rootfs built in a mount namespace that is not the
 * container's own: the runtime's (no mount namespace in linux.namespaces)
 * or one joined by path.  See fs.h.
 *
 * Everything the container mounts hangs below one private bind of the
 * rootfs onto itself.  The runtime makes that bind as a detached copy of
 * the rootfs (open_tree), records its mount id in status.json (with its
 * place, the mount under it and the namespace) and only then attaches it:
 * a create killed at any point leaves either nothing or a recorded bind,
 * and removing it with MNT_DETACH takes the whole tree.  The rootfs must
 * not be reachable for renames by anyone but root (every directory above
 * it root's and not group/other writable, or sticky over a root-owned
 * entry), and is never "/".  The place is never resolved through the
 * rootfs: the bind is opened O_NOFOLLOW at the recorded path, checked by
 * mount id, and unmounted through that fd.  */
#include <config.h>
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs_internal.h"

bool
sbx_fs_host_root_wanted (const oci_config *c)
{
  const oci_linux *l = c->linux;
  return c->mounts_len || (l && (l->masked_paths_len || l->readonly_paths_len))
         || (c->root && c->root->readonly);
}

/* private/rprivate, or nothing asked.  */
static bool
propagation_private (unsigned long prop)
{
  return (prop & ~(unsigned long)MS_REC) == 0 || (prop & ~(unsigned long)MS_REC) == MS_PRIVATE;
}

int
sbx_fs_host_root_validate (const oci_config *c, sbx_error **err)
{
  unsigned long prop = 0;
  if (geteuid () != 0)
    return sbx_error_set (err, EPERM,
                          "mounts (also linux.maskedPaths, linux.readonlyPaths, root.readonly) need a new "
                          "mount namespace in linux.namespaces when the caller is unprivileged (uid %u): "
                          "it may not mount in the one it is in",
                          (unsigned)geteuid ());
  if (c->linux && c->linux->rootfs_propagation && *c->linux->rootfs_propagation)
    {
      if (sbx_rootfs_propagation (c, &prop, err) < 0)
        return -1;
      if (!propagation_private (prop))
        return sbx_error_set (err, EINVAL,
                              "linux.rootfsPropagation `%s` needs a new mount namespace in linux.namespaces "
                              "(without one the rootfs is a private bind in a namespace shared with others: "
                              "shared or slave would link it to their mounts)",
                              c->linux->rootfs_propagation);
    }
  for (size_t i = 0; i < c->mounts_len; i++)
    if (!propagation_private (sbx_mount_propagation (c->mounts[i])))
      return sbx_error_set (err, EINVAL,
                            "mounts[%zu] (%s): shared or slave propagation needs a new mount namespace in "
                            "linux.namespaces (without one it would link the container's mounts to the "
                            "host's)",
                            i, c->mounts[i]->destination);
  return 0;
}

/* The runtime's procfs, opened before a setns (a joined namespace's
   /proc may be another pid namespace's, where the helper is not).  */
static int procfd = -1;

/* The parent mount id of mount id in our mountinfo, 0 if absent.  */
static uint64_t
mount_parent (uint64_t id)
{
  int fd = openat (procfd >= 0 ? procfd : AT_FDCWD, procfd >= 0 ? "self/mountinfo" : "/proc/self/mountinfo",
                   O_RDONLY | O_CLOEXEC);
  cleanup_file FILE *f = fd >= 0 ? fdopen (fd, "re") : NULL;
  cleanup_free char *line = NULL;
  size_t cap = 0;
  unsigned long long mid, pid;
  if (fd >= 0 && f == NULL)
    close (fd);
  while (f && getline (&line, &cap, f) > 0)
    if (sscanf (line, "%llu %llu", &mid, &pid) == 2 && mid == id)
      return pid;
  return 0;
}

typedef int (*ns_fn) (const sbx_status_host_root *h, uint64_t *out, sbx_error **err);

/* Run fn in the mount namespace nsfd, in a forked child (setns of a mount
   namespace changes the root and cwd: never the runtime's own).  */
static int
in_mntns (int nsfd, ns_fn fn, const sbx_status_host_root *h, uint64_t *out, sbx_error **err)
{
  struct
  {
    uint64_t value;
    int r, errno_;
    char msg[512];
  } res;
  int p[2];
  pid_t pid;
  ssize_t n;

  if (pipe2 (p, O_CLOEXEC) < 0)
    return sbx_error_sys (err, "pipe");
  pid = fork ();
  if (pid < 0)
    {
      close (p[0]), close (p[1]);
      return sbx_error_sys (err, "fork");
    }
  if (pid == 0)
    {
      sbx_error *e = NULL;
      memset (&res, 0, sizeof res);
      close (p[0]);
      procfd = open ("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (setns (nsfd, CLONE_NEWNS) < 0)
        res.r = sbx_error_sys (&e, "enter the mount namespace");
      else
        res.r = fn (h, &res.value, &e);
      if (e)
        {
          res.errno_ = e->errno_;
          snprintf (res.msg, sizeof res.msg, "%s", e->msg);
        }
      (void)!sbx_write_all (p[1], &res, sizeof res);
      _exit (0);
    }
  close (p[1]);
  n = sbx_read_all (p[0], &res, sizeof res);
  close (p[0]);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (n != (ssize_t)sizeof res)
    return sbx_error_set (err, EIO, "the helper in the container's mount namespace died");
  if (res.r < 0)
    return sbx_error_set (err, res.errno_, "%s", res.msg);
  *out = res.value;
  return res.r;
}

/* The namespace of h, opened and checked; -ENOENT when it is gone (and
   its mounts with it).  */
static int
open_ns (const sbx_status_host_root *h, sbx_error **err)
{
  struct stat st;
  const char *p = h->ns_path ? h->ns_path : "/proc/self/ns/mnt";
  int fd = open (p, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      if (h->ns_path && (errno == ENOENT || errno == ESRCH))
        return -ENOENT;
      return sbx_error_sys (err, "open mount namespace `%s`", p);
    }
  if (fstat (fd, &st) < 0 || st.st_dev != h->ns_dev || st.st_ino != h->ns_ino)
    {
      close (fd);
      if (h->ns_path)
        return -ENOENT; /* another namespace at that path now: ours is gone */
      return sbx_error_set (err, EINVAL,
                            "the rootfs bind `%s` is in another mount namespace than this runtime's: run "
                            "delete from the mount namespace the container was created in",
                            h->path);
    }
  return fd;
}

/* rootfs opened O_PATH, walking from "/" without following a symlink,
   each directory above it root's and writable by root alone (or sticky,
   over an entry root owns): nobody else can rename a parent to redirect
   the bind (a sticky one's owner may rename entries too: root's).  Never
   "/" itself.  */
static int
open_rootfs_checked (const char *path, sbx_error **err)
{
  cleanup_free char *copy = xstrdup (path);
  cleanup_close int fd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat root, up, st;
  char *save = NULL;

  if (fd < 0 || fstat (fd, &root) < 0)
    return sbx_error_sys (err, "open /");
  up = root;
  for (char *c = strtok_r (copy, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      int next = openat (fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        return sbx_error_sys (err, "rootfs `%s`: `%s` (a symbolic link or not a directory?)", path, c);
      close (fd);
      fd = next;
      if (fstat (fd, &st) < 0)
        return sbx_error_sys (err, "stat `%s`", c);
      /* in a sticky directory its owner may still rename any entry */
      if (!(up.st_uid == 0 && (!(up.st_mode & (S_IWGRP | S_IWOTH)) || ((up.st_mode & S_ISVTX) && st.st_uid == 0))))
        return sbx_error_set (err, EPERM,
                              "rootfs `%s`: without a mount namespace of its own the rootfs is bound in a "
                              "namespace shared with others, and the directory above `%s` may be changed by "
                              "others than root (owner %u, mode %04o): move the bundle or add a mount "
                              "namespace",
                              path, c, (unsigned)up.st_uid, (unsigned)(up.st_mode & 07777));
      up = st;
    }
  if (up.st_dev == root.st_dev && up.st_ino == root.st_ino)
    return sbx_error_set (err, EINVAL,
                          "rootfs `%s` is the root of the mount namespace it would be built in: it needs a "
                          "new mount namespace in linux.namespaces",
                          path);
  return steal_fd (&fd);
}

struct bind_ids
{
  int r, errno_;
  uint64_t under, bind;
  char msg[512];
};

static void
ids_error (struct bind_ids *b, sbx_error *e)
{
  b->r = -1;
  b->errno_ = e ? e->errno_ : EIO;
  snprintf (b->msg, sizeof b->msg, "%s", e ? e->msg : "failed");
  sbx_error_free (e);
}

/* In the namespace (a forked child): a private detached copy of the
   rootfs, its id sent on fd; attached on the rootfs only after the
   runtime answers (it has saved the id), then made private again (a new
   mount under a shared parent joins its peer group).  */
static void
bind_child (int fd, int nsfd, const char *path)
{
  struct bind_ids b = { 0 };
  sbx_error *e = NULL;
  cleanup_close int rootfd = -1, tree = -1;
  struct sbx_mount_attr a = { .propagation = MS_PRIVATE };
  char ok;
  uint64_t at;

  if (setns (nsfd, CLONE_NEWNS) < 0)
    {
      sbx_error_sys (&e, "enter the mount namespace");
      goto out;
    }
  if ((rootfd = open_rootfs_checked (path, &e)) < 0)
    goto out;
  if (sbx_mount_id (rootfd, "", AT_EMPTY_PATH, &b.under) < 0)
    {
      sbx_error_sys (&e, "mount id of rootfs `%s`", path);
      goto out;
    }
  tree = syscall (SYS_open_tree, rootfd, "", OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0 || syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0
      || sbx_mount_id (tree, "", AT_EMPTY_PATH, &b.bind) < 0)
    {
      sbx_error_sys (&e, "a private copy of rootfs `%s` (open_tree, mount_setattr: Linux 5.12)", path);
      goto out;
    }
  if (sbx_write_all (fd, &b, sizeof b) < 0 || sbx_read_all (fd, &ok, 1) != 1)
    _exit (1); /* the runtime is gone: the copy goes with us */
  if (syscall (SYS_move_mount, tree, "", rootfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    {
      sbx_error_sys (&e, "bind rootfs `%s`", path);
      goto out;
    }
  /* by fd: this namespace's /proc may be another pid namespace's */
  if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
    {
      sbx_error_sys (&e, "make the rootfs bind `%s` private", path);
      goto out;
    }
  if (sbx_mount_id (AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, &at) < 0 || at != b.bind)
    sbx_error_set (&e, EXDEV, "rootfs `%s`: another mount is on the bind just made", path);
out:
  if (e)
    ids_error (&b, e);
  (void)!sbx_write_all (fd, &b, sizeof b);
  _exit (0);
}

int
sbx_fs_host_root_record (sbx_status_file *st, const oci_config *c, const char *rootfs, int nsfd,
                         int (*save) (void *data, sbx_error **err), void *data, sbx_error **err)
{
  sbx_status_host_root *h = xmalloc0 (sizeof *h);
  struct stat sb;
  struct bind_ids b;
  cleanup_close int own = -1;
  int sp[2] = { -1, -1 };
  pid_t pid = -1;
  int r = -1;

  h->path = xstrdup (rootfs);
  for (size_t i = 0; nsfd >= 0 && c->linux && i < c->linux->namespaces_len; i++)
    if (c->linux->namespaces[i]->type && strcmp (c->linux->namespaces[i]->type, "mount") == 0
        && c->linux->namespaces[i]->path)
      h->ns_path = xstrdup (c->linux->namespaces[i]->path);
  if (nsfd < 0)
    nsfd = own = open ("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (nsfd < 0 || fstat (nsfd, &sb) < 0)
    {
      sbx_error_sys (err, "the mount namespace of the rootfs");
      goto out;
    }
  h->ns_dev = sb.st_dev, h->has_ns_dev = true;
  h->ns_ino = sb.st_ino, h->has_ns_ino = true;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 || (pid = fork ()) < 0)
    {
      sbx_error_sys (err, "fork");
      goto out;
    }
  if (pid == 0)
    {
      close (sp[0]);
      bind_child (sp[1], nsfd, rootfs);
    }
  close (sp[1]);
  sp[1] = -1;
  if (sbx_read_all (sp[0], &b, sizeof b) != (ssize_t)sizeof b)
    {
      sbx_error_set (err, EIO, "the helper in the container's mount namespace died");
      goto out;
    }
  if (b.r < 0)
    {
      sbx_error_set (err, b.errno_, "%s", b.msg);
      goto out;
    }
  h->under_mount_id = b.under, h->has_under_mount_id = true;
  h->mount_id = b.bind, h->has_mount_id = true;
  if (st->host_root)
    ocispec_free (&sbx_status_host_root_type, st->host_root);
  st->host_root = steal_ptr (h);
  /* recorded before the bind exists: a create killed from here on leaves
     a bind delete knows */
  if (save (data, err) < 0)
    goto out;
  if (sbx_write_all (sp[0], "y", 1) < 0 || sbx_read_all (sp[0], &b, sizeof b) != (ssize_t)sizeof b)
    {
      sbx_error_set (err, EIO, "the helper in the container's mount namespace died");
      goto out;
    }
  if (b.r < 0)
    {
      sbx_error_set (err, b.errno_, "%s", b.msg);
      goto out;
    }
  r = 0;
out:
  if (sp[0] >= 0)
    close (sp[0]);
  if (sp[1] >= 0)
    close (sp[1]);
  if (pid > 0)
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
      ;
  if (h)
    ocispec_free (&sbx_status_host_root_type, h);
  return r;
}

/* The bind on h->path that h describes, opened; -ENOENT: none there.  */
static int
open_bind (const sbx_status_host_root *h, sbx_error **err)
{
  uint64_t id;
  int fd = open (h->path, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? -ENOENT
                                                                 : sbx_error_sys (err, "open `%s`", h->path);
  if (sbx_mount_id (fd, "", AT_EMPTY_PATH, &id) < 0)
    {
      close (fd);
      return sbx_error_sys (err, "mount id of `%s`", h->path);
    }
  if (!h->has_mount_id || id == h->under_mount_id)
    {
      close (fd); /* our bind was never attached (it is recorded first) */
      return -ENOENT;
    }
  if (id != h->mount_id || mount_parent (id) != h->under_mount_id)
    {
      close (fd);
      return sbx_error_set (err, EXDEV, "the mount on `%s` is not the container's rootfs bind: left alone",
                            h->path);
    }
  return fd;
}

static int
get_bind (const sbx_status_host_root *h, uint64_t *out, sbx_error **err)
{
  cleanup_close int fd = open_bind (h, err);
  if (fd == -ENOENT)
    return sbx_error_set (err, ENOENT, "no bind on rootfs `%s`", h->path);
  if (fd < 0)
    return -1;
  return sbx_mount_id (fd, "", AT_EMPTY_PATH, out) < 0 ? sbx_error_sys (err, "mount id") : 0;
}

/* fn in the recorded namespace of h: 1 without running it when that
   namespace is gone.  */
static int
in_recorded_ns (const sbx_status_host_root *h, ns_fn fn, uint64_t *out, sbx_error **err)
{
  cleanup_close int nsfd = open_ns (h, err);
  if (nsfd == -ENOENT)
    return 1;
  if (nsfd < 0 || in_mntns (nsfd, fn, h, out, err) < 0)
    return -1;
  return 0;
}

int
sbx_fs_host_root_note_bind (sbx_status_file *st, sbx_error **err)
{
  sbx_status_host_root *h = st->host_root;
  uint64_t id;
  int r = h ? in_recorded_ns (h, get_bind, &id, err) : 0;
  if (r < 0)
    return sbx_error_wrap (err, "the rootfs bind");
  if (r > 0)
    return sbx_error_set (err, ENOENT, "the container's mount namespace `%s` is gone", h->ns_path);
  if (h)
    h->mount_id = id, h->has_mount_id = true;
  return 0;
}

static int
detach_bind (const sbx_status_host_root *h, uint64_t *out, sbx_error **err)
{
  char p[FDPATH_MAX];
  cleanup_close int fd = open_bind (h, err);
  *out = 0;
  if (fd == -ENOENT)
    return 0;
  if (fd < 0)
    return -1;
  if (procfd >= 0)
    snprintf (p, sizeof p, "self/fd/%d", fd);
  if ((procfd >= 0 ? fchdir (procfd) : 0) < 0 || umount2 (procfd >= 0 ? p : fdpath (p, fd), MNT_DETACH) < 0)
    return sbx_error_sys (err, "unmount the rootfs bind `%s`", h->path);
  *out = 1;
  return 0;
}

int
sbx_fs_host_root_release (const sbx_status_file *st, sbx_error **err)
{
  uint64_t done;
  if (st->host_root && in_recorded_ns (st->host_root, detach_bind, &done, err) < 0)
    return sbx_error_wrap (err, "remove the container's mounts under `%s`", st->host_root->path);
  return 0;
}
