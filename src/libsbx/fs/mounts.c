/* mounts.c - see mounts.h.
 *
 * Every mount target is reached through an O_PATH fd obtained by resolving
 * the destination inside the rootfs (openat2 RESOLVE_IN_ROOT, or a manual
 * O_NOFOLLOW walk), and mount(2) is pointed at /proc/self/fd/N (binds use
 * open_tree + move_mount on the fds), so a symlink planted in the image can
 * never redirect a mount onto the host.  After each mount the destination
 * is resolved again: the old fd still names the covered directory, not the
 * new mount, and remounting it would change the wrong mount.  */
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

#include "cgroup/cgroup.h"
#include "core/core.h"
#include "fs/fs_internal.h"


/* ---- mount primitives ---- */

int
sbx_fs_bind_fd (int srcfd, int tgtfd, bool recursive, uint64_t attr_set)
{
  char s[FDPATH_MAX], t[FDPATH_MAX];
  int tree, r, saved;

  tree = syscall (SYS_open_tree, srcfd, "",
                  OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
  if (tree >= 0)
    {
      struct sbx_mount_attr a = { .attr_set = attr_set };
      /* set while nobody can see the copy; no mount_setattr (before 5.12):
         without them, as the mount(2) path below */
      r = attr_set ? (int)syscall (SYS_mount_setattr, tree, "",
                                   AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a)
                   : 0;
      if (r == 0 || errno == ENOSYS)
        r = syscall (SYS_move_mount, tree, "", tgtfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
      saved = errno;
      close (tree);
      errno = saved;
      return r < 0 ? -1 : 0;
    }
  if (errno != ENOSYS)
    return -1;
  return mount (fdpath (s, srcfd), fdpath (t, tgtfd), NOFS, MS_BIND | (recursive ? MS_REC : 0),
                NULL);
}

/* The flags of the mount behind fd that a bind remount must repeat: in a
   user namespace the kernel locks ro/nosuid/nodev/noexec/atime of mounts
   inherited from the parent, and a remount that drops one fails with
   EPERM.  The atime mode is always returned explicitly.  */
static int
mount_flags_of (int fd, unsigned long *out)
{
  struct statvfs sv;
  unsigned long f = 0;

  if (fstatvfs (fd, &sv) < 0)
    return -1;
  if (sv.f_flag & ST_RDONLY)
    f |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID)
    f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV)
    f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC)
    f |= MS_NOEXEC;
  if (sv.f_flag & ST_NODIRATIME)
    f |= MS_NODIRATIME;
  if (sv.f_flag & ST_NOATIME)
    f |= MS_NOATIME;
  else if (sv.f_flag & ST_RELATIME)
    f |= MS_RELATIME;
  else
    f |= MS_STRICTATIME;
  *out = f;
  return 0;
}

/* MS_REMOUNT|MS_BIND of the mount behind fd: keep its current flags except
   those explicitly cleared, add set.  target is where mount(2) is pointed.  */
int
sbx_bind_remount (int fd, const char *target, unsigned long set, unsigned long clear)
{
  unsigned long cur, f;

  if (mount_flags_of (fd, &cur) < 0)
    return -1;
  f = cur & ~clear;
  if (set & ATIME_MODE)
    f &= ~ATIME_MODE;
  if (!(f & ATIME_MODE) && !(set & ATIME_MODE))
    f |= MS_RELATIME; /* an atime mode was cleared: the kernel default */
  f |= set & ~(MS_BIND | MS_REC | MS_REMOUNT | PROPAGATION | SB_ONLY);
  return mount (NULL, target, NOFS, MS_REMOUNT | MS_BIND | f, NULL);
}

/* ---- mounts[] ---- */

/* Where the target fd resolved to must be what the destination says, for
   proc and sysfs (exact: no symlink on the way, CVE-2019-19921), and for
   every mount when it lands in /proc: a symlink in the image must not take
   a mount there, where it could redirect procfs writes (CVE-2019-16884).
   The fd is what gets mounted on, so nothing can swap the path after this
   check.  */
static int
check_target (struct sbx_mount_ctx *x, const char *dest, int tfd, bool exact, sbx_error **err)
{
  cleanup_free char *want = sbx_fs_mount_dest_clean (dest);
  char p[FDPATH_MAX], buf[PATH_MAX];
  size_t rl = strlen (x->rootpath);
  const char *rel;
  struct statfs sf;
  ssize_t n;

  n = readlink (fdpath (p, tfd), buf, sizeof buf - 1);
  if (n < 0)
    return sbx_error_sys (err, "destination `%s`: read where it leads", dest);
  buf[n] = '\0';
  if (rl == 1)
    rel = buf;
  else if (strncmp (buf, x->rootpath, rl) == 0 && (buf[rl] == '/' || buf[rl] == '\0'))
    rel = buf[rl] ? buf + rl : "/";
  else
    return sbx_error_set (err, EXDEV, "destination `%s` resolves outside the rootfs (%s)", dest, buf);
  if (strcmp (rel, want) == 0)
    return 0;
  if (exact)
    return sbx_error_set (err, ELOOP,
                          "destination `%s` goes through a symlink in the rootfs (to %s): refused, "
                          "proc and sysfs are only mounted on a real directory",
                          dest, rel);
  if (under_proc (rel) || (fstatfs (tfd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC))
    return sbx_error_set (err, EPERM,
                          "destination `%s` leads into /proc through a symlink in the rootfs (%s): refused",
                          dest, rel);
  return 0;
}

/* Propagation and recursive attributes, applied to the new mount at dest.  */
static int
finish_mount (struct sbx_mount_ctx *x, const char *dest, const sbx_mount_opts *mo, sbx_error **err)
{
  cleanup_close int fd = -1;
  char p[FDPATH_MAX];

  if (mo->propagation == 0 && mo->attr_set == 0 && mo->attr_clr == 0)
    return 0;
  fd = sbx_fs_root_resolve (x->rootfd, dest, SBX_RESOLVE_EXISTING, err);
  if (fd < 0)
    return fd;
  if (mo->attr_set || mo->attr_clr)
    {
      struct sbx_mount_attr a = { .attr_set = mo->attr_set, .attr_clr = mo->attr_clr };
      if (syscall (SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
        return sbx_error_sys (err, errno == ENOSYS ? "recursive mount attributes need Linux 5.12"
                                                   : "mount_setattr");
    }
  if (mo->propagation && mount (NULL, fdpath (p, fd), NOFS, mo->propagation, NULL) < 0)
    return sbx_error_sys (err, "set propagation");
  return 0;
}

/* Bind host path src (recursively if rec) onto dest inside the rootfs, then
   apply flags/clear with a bind remount when there is anything to apply.  */
static int
do_bind (struct sbx_mount_ctx *x, const char *src, int tree, bool rec, const char *dest, unsigned long flags,
         unsigned long clear, bool exact, sbx_error **err)
{
  cleanup_close int sfd = -1, tfd = -1, nfd = -1;
  char p[FDPATH_MAX];
  struct stat sb;

  /* tree: the source as the runtime opened it, outside the user namespace
     (sbx_bind_sources_open), attached as it is.  */
  sfd = tree >= 0 ? fcntl (tree, F_DUPFD_CLOEXEC, 0) : open (src, O_PATH | O_CLOEXEC);
  if (sfd < 0 || fstat (sfd, &sb) < 0)
    return sbx_error_sys (err, "bind %s", src);
  tfd = sbx_fs_root_resolve (x->rootfd, dest, S_ISDIR (sb.st_mode) ? SBX_RESOLVE_MKDIR : SBX_RESOLVE_MKFILE,
                             err);
  if (tfd < 0)
    return tfd;
  if (check_target (x, dest, tfd, exact, err) < 0)
    return -1;
  if (tree >= 0)
    {
      if (syscall (SYS_move_mount, sfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return sbx_error_sys (err, "bind %s", src);
    }
  else if (sbx_fs_bind_fd (sfd, tfd, rec, 0) < 0)
    return sbx_error_sys (err, "bind %s", src);
  if (flags & SB_ONLY)
    sbx_warn ("%s: sync/dirsync/mand/lazytime/silent do not apply to a bind mount", dest);
  if ((flags & ~(MS_BIND | MS_REC | MS_REMOUNT | SB_ONLY)) == 0 && (clear & ~SB_ONLY) == 0)
    return 0;
  nfd = sbx_fs_root_resolve (x->rootfd, dest, SBX_RESOLVE_EXISTING, err);
  if (nfd < 0)
    return nfd;
  if (sbx_bind_remount (nfd, fdpath (p, nfd), flags, clear) < 0)
    return sbx_error_sys (err, "remount %s", dest);
  return 0;
}

/* The new mount API, for procfs of another pid namespace.  */
#define SBX_FSOPEN_CLOEXEC 1
#define SBX_FSMOUNT_CLOEXEC 1
#define SBX_FSCONFIG_SET_FLAG 0
#define SBX_FSCONFIG_SET_STRING 1
#define SBX_FSCONFIG_SET_FD 5
#define SBX_FSCONFIG_CMD_CREATE 6
#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif

bool
sbx_fs_mount_proc_pidns_supported (void)
{
  cleanup_close int fs = syscall (SYS_fsopen, "proc", SBX_FSOPEN_CLOEXEC);
  cleanup_close int ns = open ("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  return fs >= 0 && ns >= 0 && syscall (SYS_fsconfig, fs, SBX_FSCONFIG_SET_FD, "pidns", NULL, ns) == 0;
}

int
sbx_fs_new_mount (const char *type, int pidns, unsigned long flags, const char *data, sbx_error **err)
{
  static const struct
  {
    unsigned long ms, attr;
  } attrs[] = { { MS_RDONLY, MOUNT_ATTR_RDONLY },     { MS_NOSUID, MOUNT_ATTR_NOSUID },
                { MS_NODEV, MOUNT_ATTR_NODEV },       { MS_NOEXEC, MOUNT_ATTR_NOEXEC },
                { MS_NOATIME, MOUNT_ATTR_NOATIME },   { MS_STRICTATIME, MOUNT_ATTR_STRICTATIME },
                { MS_NODIRATIME, MOUNT_ATTR_NODIRATIME } };
  cleanup_close int fs = syscall (SYS_fsopen, type, SBX_FSOPEN_CLOEXEC);
  cleanup_free char *opts = data ? xstrdup (data) : NULL;
  unsigned long attr = 0;
  char *save = NULL;
  int mfd;

  if (fs < 0)
    return sbx_error_sys (err, "mount %s: fsopen", type);
  if (pidns >= 0 && syscall (SYS_fsconfig, fs, SBX_FSCONFIG_SET_FD, "pidns", NULL, pidns) < 0)
    return sbx_error_sys (err, "mount %s for the joined pid namespace", type);
  for (char *o = opts ? strtok_r (opts, ",", &save) : NULL; o; o = strtok_r (NULL, ",", &save))
    {
      char *eq = strchr (o, '=');
      if (eq)
        *eq = '\0';
      if (syscall (SYS_fsconfig, fs, eq ? SBX_FSCONFIG_SET_STRING : SBX_FSCONFIG_SET_FLAG, o, eq ? eq + 1 : NULL,
                   0)
          < 0)
        return sbx_error_sys (err, "mount %s: option `%s`", type, o);
    }
  if (syscall (SYS_fsconfig, fs, SBX_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return sbx_error_sys (err, "mount %s", type);
  for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
    if (flags & attrs[i].ms)
      attr |= attrs[i].attr;
  mfd = syscall (SYS_fsmount, fs, SBX_FSMOUNT_CLOEXEC, attr);
  if (mfd < 0)
    return sbx_error_sys (err, "mount %s: fsmount", type);
  return mfd;
}

/* A new filesystem of type onto tfd with the new mount API (fsopen,
   fsmount, move_mount); for proc, of pidns (>= 0).  */
static int
mount_new_api (const char *type, int pidns, int tfd, unsigned long flags, const char *data, sbx_error **err)
{
  cleanup_close int mfd = sbx_fs_new_mount (type, pidns, flags, data, err);
  if (mfd < 0)
    return -1;
  if (syscall (SYS_move_mount, mfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return sbx_error_sys (err, "mount %s: move_mount", type);
  return 0;
}

/* procfs for pidns onto tfd: the mounter is still in the host's pid
   namespace (it must not be seen before it has the container's root), and
   a plain mount would show the host's processes.  */
static int
mount_proc_for (int pidns, int tfd, unsigned long flags, const char *data, sbx_error **err)
{
  return mount_new_api ("proc", pidns, tfd, flags, data, err);
}

/* A plain mount(2) of a filesystem type onto dest.  */
static int
do_fs_mount (struct sbx_mount_ctx *x, const char *source, const char *type, const char *dest,
             unsigned long flags, const char *data, sbx_error **err)
{
  cleanup_close int tfd = -1;
  char p[FDPATH_MAX];

  tfd = sbx_fs_root_resolve (x->rootfd, dest, SBX_RESOLVE_MKDIR, err);
  if (tfd < 0)
    return tfd;
  if (check_target (x, dest, tfd, strcmp (type, "proc") == 0 || strcmp (type, "sysfs") == 0, err) < 0)
    return -1;
  if (x->o->has_proc_pidns && strcmp (type, "proc") == 0)
    return mount_proc_for (x->o->proc_pidns, tfd, flags, data, err);
  if (mount (source ? source : type, fdpath (p, tfd), type, flags & ~PROPAGATION, data) < 0)
    {
      /* mount(2) refuses a filesystem onto the root of a mount of the same
         superblock: cgroup2 onto the host's, which came with a /sys bound
         recursively (rootless configs; it is locked there in a user
         namespace).  move_mount has no such rule: the container's cgroup
         namespace view goes over it.  */
      if (errno == EBUSY && strcmp (type, "cgroup2") == 0)
        return mount_new_api (type, -1, tfd, flags & ~PROPAGATION, data, err);
      return sbx_error_sys (err, "mount %s%s%s%s", type, data ? " (" : "", data ? data : "", data ? ")" : "");
    }
  return 0;
}

/* A tmpfs: without mode= it takes the mode of its mount point (as other
   runtimes do); with tmpcopyup it starts with a copy of what the image has
   there (mounted writable for the copy, made read-only after).  */
static int
do_tmpfs (struct sbx_mount_ctx *x, const oci_mount *m, const sbx_mount_opts *mo, const char *data,
          sbx_error **err)
{
  cleanup_close int tfd = -1, old = -1, nfd = -1, new_root = -1;
  cleanup_free char *d = NULL;
  struct stat st;
  char p[FDPATH_MAX];
  bool has_mode = false;

  tfd = sbx_fs_root_resolve (x->rootfd, m->destination, SBX_RESOLVE_MKDIR, err);
  if (tfd < 0)
    return tfd;
  if (check_target (x, m->destination, tfd, false, err) < 0)
    return -1;
  if (fstat (tfd, &st) < 0)
    return sbx_error_sys (err, "stat the mount point");
  for (const char *s = data; s && *s;)
    {
      if (strncmp (s, "mode=", 5) == 0)
        has_mode = true;
      s = strchr (s, ',');
      s = s ? s + 1 : NULL;
    }
  d = has_mode ? xstrdup (data)
      : data   ? xasprintf ("%s,mode=%o", data, (unsigned)(st.st_mode & 07777))
               : xasprintf ("mode=%o", (unsigned)(st.st_mode & 07777));
  if (mo->tmpcopyup && (old = openat (tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return sbx_error_sys (err, "tmpcopyup: open the mount point");
  if (mount (m->source ? m->source : "tmpfs", fdpath (p, tfd), "tmpfs",
             (mo->flags & ~PROPAGATION) & ~(mo->tmpcopyup ? MS_RDONLY : 0), d)
      < 0)
    return sbx_error_sys (err, "mount tmpfs (%s)", d);
  if (!mo->tmpcopyup)
    return 0;
  nfd = sbx_fs_root_resolve (x->rootfd, m->destination, SBX_RESOLVE_EXISTING, err);
  if (nfd < 0)
    return nfd;
  new_root = openat (nfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (new_root < 0)
    return sbx_error_sys (err, "tmpcopyup: open the new tmpfs");
  if (sbx_copy_tree (old, new_root, 0, err) < 0
      || (fchown (new_root, st.st_uid, st.st_gid) < 0 && sbx_error_sys (err, "tmpcopyup: chown") < 0))
    return -1;
  if (mo->flags & MS_RDONLY)
    {
      struct sbx_mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
      if (syscall (SYS_mount_setattr, nfd, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
        return sbx_error_sys (err, "tmpcopyup: make the tmpfs read-only");
    }
  return 0;
}

/* ---- cgroup mounts ---- */

/* One hierarchy at dest: a fresh cgroup mount inside a cgroup namespace,
   else a bind of the host's directory with the same flags.  */
static int
cg_mount_one (struct sbx_mount_ctx *x, const sbx_cgroup_host_hierarchy *h, const char *dest, unsigned long flags,
              const char *data, sbx_error **err)
{
  if (x->o->cgroupns)
    return do_fs_mount (x, h->v2 ? "cgroup2" : "cgroup", h->v2 ? "cgroup2" : "cgroup", dest, flags,
                        h->v2 ? data : h->opts, err);
  return do_bind (x, h->own, -1, false, dest, flags | MS_BIND, 0, false, err);
}

/* type "cgroup": on a v1 or hybrid host a tmpfs carrying every hierarchy
   under the same names as on the host; on a pure v2 host (and for type
   "cgroup2") the unified hierarchy itself.  */
static int
do_cgroup (struct sbx_mount_ctx *x, const oci_mount *m, const sbx_mount_opts *mo, sbx_error **err)
{
  sbx_cgroup_host_layout l;
  unsigned long flags = mo->flags & ~(MS_BIND | MS_REC | PROPAGATION);
  bool want_v2 = strcmp (m->type, "cgroup2") == 0;
  cleanup_close int tfd = -1;
  int r = -1;

  if (sbx_cgroup_host_layout_read (&l, x->o->self_cgroup, err) < 0)
    return -1;
  if (want_v2 || l.nv1 == 0)
    {
      for (size_t i = 0; i < l.n; i++)
        if (l.h[i].v2)
          {
            r = cg_mount_one (x, &l.h[i], m->destination, flags, mo->data, err);
            goto out;
          }
      if (x->o->cgroupns)
        r = do_fs_mount (x, "cgroup2", "cgroup2", m->destination, flags, mo->data, err);
      else
        r = sbx_error_set (err, ENOENT, "no cgroup2 hierarchy on the host");
      goto out;
    }

  /* The tmpfs stays writable until the hierarchies' directories exist.  */
  if (do_fs_mount (x, "tmpfs", "tmpfs", m->destination, (flags & ~MS_RDONLY), "mode=755", err) < 0)
    goto out;
  tfd = sbx_fs_root_resolve (x->rootfd, m->destination, SBX_RESOLVE_EXISTING, err);
  if (tfd < 0)
    goto out;
  for (size_t i = 0; i < l.n; i++)
    {
      cleanup_free char *sub = NULL;
      if (!l.h[i].in_base)
        continue;
      sub = xasprintf ("%s/%s", m->destination, l.h[i].name);
      if (cg_mount_one (x, &l.h[i], sub, flags, mo->data, err) < 0)
        {
          sbx_error_wrap (err, "%s", l.h[i].name);
          goto out;
        }
    }
  /* Recreate the host's aliases (cpu -> cpu,cpuacct ...).  */
  {
    DIR *d = opendir (l.base);
    struct dirent *de;
    while (d && (de = readdir (d)))
      {
        char target[PATH_MAX];
        ssize_t n;
        if (de->d_type != DT_LNK)
          continue;
        n = readlinkat (dirfd (d), de->d_name, target, sizeof target - 1);
        if (n < 0)
          continue;
        target[n] = '\0';
        if (symlinkat (target, tfd, de->d_name) < 0 && errno != EEXIST)
          sbx_debug ("cgroup alias %s: %s", de->d_name, strerror (errno));
      }
    if (d)
      closedir (d);
  }
  if (flags & MS_RDONLY)
    {
      char p[FDPATH_MAX];
      if (sbx_bind_remount (tfd, fdpath (p, tfd), flags, 0) < 0)
        {
          r = sbx_error_sys (err, "remount %s read-only", m->destination);
          goto out;
        }
    }
  r = 0;
out:
  sbx_cgroup_host_layout_free (&l);
  return r;
}

/* Filesystems a user namespace may not mount without owning the matching
   namespace (sysfs needs the netns, mqueue the ipcns): fall back to a bind
   of the host's instance.  */
static const char *
userns_fallback (const char *type)
{
  if (strcmp (type, "sysfs") == 0)
    return "/sys";
  if (strcmp (type, "mqueue") == 0)
    return "/dev/mqueue";
  return NULL;
}

bool
sbx_mount_is_ro_dev (const oci_mount *m)
{
  sbx_mount_opts mo;
  cleanup_free char *clean = NULL;
  bool r;
  if (!m->type || strcmp (m->type, "tmpfs") != 0 || !m->destination)
    return false;
  clean = sbx_fs_mount_dest_clean (m->destination);
  if (strcmp (clean, "/dev") != 0 || sbx_fs_mount_opts_parse (m->options, m->options_len, &mo, NULL) < 0)
    return false;
  r = (mo.flags & MS_RDONLY) && !mo.bind && !mo.tmpcopyup;
  sbx_fs_mount_opts_clear (&mo);
  return r;
}

int
sbx_mount_entry (struct sbx_mount_ctx *x, const oci_mount *m, sbx_error **err)
{
  sbx_mount_opts mo;
  const char *type = m->type;
  bool bind;
  int r;

  if (sbx_fs_mount_opts_parse (m->options, m->options_len, &mo, err) < 0)
    return -1;
  bind = mo.bind || (type && strcmp (type, "bind") == 0);
  /* A read-only /dev gets its mount points (/dev/pts...) and device nodes
     first: it is remounted read-only at the end (sbx_fs_rootfs_finish).  */
  if (sbx_mount_is_ro_dev (m))
    mo.flags &= ~MS_RDONLY;

  if (bind)
    {
      cleanup_free char *src = NULL;
      if (m->source == NULL)
        r = sbx_error_set (err, EINVAL, "bind mount without a source");
      else
        {
          /* A bind has no filesystem to take data options; other runtimes
             ignore them (configs carry e.g. mode= for tmpfs-or-bind).  */
          if (mo.data)
            sbx_debug ("mount %s: ignoring options for a bind mount: %s",
                       m->destination, mo.data);
          if (m->source[0] == '/' || x->o->bundle == NULL)
            src = xstrdup (m->source);
          else
            src = xasprintf ("%s/%s", x->o->bundle, m->source);
          int tree = -1;
          for (size_t i = 0; i < x->o->bind_trees_len; i++)
            if (x->c->mounts[i] == m)
              tree = x->o->bind_trees[i];
          /* An idmapped bind exists only as the runtime's idmapped copy.  */
          if (tree < 0 && (mo.idmap || m->uid_mappings_len || m->gid_mappings_len))
            r = sbx_error_set (err, EINVAL, "idmapped bind of `%s`: no idmapped copy from the runtime", src);
          else
            r = do_bind (x, src, tree, mo.flags & MS_REC, m->destination, mo.flags, mo.clear, false, err);
        }
    }
  else if (type == NULL || *type == '\0')
    r = sbx_error_set (err, EINVAL, "no filesystem type");
  else if (strcmp (type, "cgroup") == 0 || strcmp (type, "cgroup2") == 0)
    r = do_cgroup (x, m, &mo, err);
  else
    {
      /* linux.mountLabel labels the filesystems the container gets
         (SELinux only; sbx_lsm_mount_data is NULL otherwise).  */
      cleanup_free char *label = strcmp (type, "proc") && strcmp (type, "sysfs")
                                     ? sbx_lsm_mount_data (x->c->linux)
                                     : NULL;
      cleanup_free char *data = label && mo.data ? xasprintf ("%s,%s", mo.data, label) : NULL;
      if (strcmp (type, "tmpfs") == 0)
        r = do_tmpfs (x, m, &mo, data ? data : label ? label : mo.data, err);
      else
        r = do_fs_mount (x, m->source, type, m->destination, mo.flags,
                         data    ? data
                         : label ? label
                                 : mo.data,
                         err);
      if (r < 0 && x->o->userns && userns_fallback (type) && err && *err && (*err)->errno_ == EPERM)
        {
          sbx_debug ("%s: mounting %s denied in the user namespace, binding the host's", m->destination,
                     type);
          r = do_bind (x, userns_fallback (type), -1, true, m->destination, mo.flags | MS_BIND | MS_REC,
                       mo.clear, true, err);
          /* The host's submounts (/sys/fs/cgroup...) come along: ro should
             cover them too (best effort: this was not asked for as rro).  */
          if (r >= 0 && (mo.flags & MS_RDONLY))
            {
              sbx_mount_opts rro = { .attr_set = MOUNT_ATTR_RDONLY };
              sbx_error *e2 = NULL;
              if (finish_mount (x, m->destination, &rro, &e2) < 0)
                sbx_warn ("%s: submounts stay writable: %s", m->destination, e2->msg);
              sbx_error_free (e2);
            }
        }
    }
  if (r >= 0)
    r = finish_mount (x, m->destination, &mo, err);
  if (r >= 0)
    {
      /* The procfs the runtime writes to from now on, opened before
         anything else can be mounted on or under it.  */
      cleanup_free char *clean = sbx_fs_mount_dest_clean (m->destination);
      if (strcmp (clean, "/proc") == 0)
        {
          int pfd = sbx_proc_open (x->rootfd, "proc", err);
          if (pfd < 0)
            r = -1;
          else
            {
              if (x->procfd >= 0)
                close (x->procfd);
              x->procfd = pfd;
            }
        }
    }
  sbx_fs_mount_opts_clear (&mo);
  return r;
}

/* The text of an id map (uid_map's "inside outside count" lines) from
   field's entries, each checked.  malloc'd, or NULL with ERR.  */
static char *
map_text (oci_id_mapping *const *m, size_t n, const char *field, sbx_error **err)
{
  size_t cap = 40 * (n + 1), len = 0;
  char *buf = xmalloc0 (cap);
  for (size_t i = 0; i < n; i++)
    {
      uint64_t end_c = (uint64_t)m[i]->container_id + m[i]->size,
               end_h = (uint64_t)m[i]->host_id + m[i]->size;
      if (m[i]->size == 0 || end_c > UINT32_MAX || end_h > UINT32_MAX)
        {
          free (buf);
          sbx_error_set (err, EINVAL, "%s[%zu]: containerID %u, hostID %u, size %u: %s", field, i,
                         m[i]->container_id, m[i]->host_id, m[i]->size,
                         m[i]->size == 0 ? "the size must be greater than 0" : "the range passes 2^32-1");
          return NULL;
        }
      len += snprintf (buf + len, cap - len, "%u %u %u\n", m[i]->container_id, m[i]->host_id, m[i]->size);
    }
  return buf;
}

bool
sbx_fs_mount_idmapped (const oci_mount *m)
{
  sbx_mount_opts mo;
  bool r;
  if (m->uid_mappings_len || m->gid_mappings_len)
    return true;
  if (sbx_fs_mount_opts_parse (m->options, m->options_len, &mo, NULL) < 0)
    return false;
  r = mo.idmap;
  sbx_fs_mount_opts_clear (&mo);
  return r;
}

/* The container's user namespace entry in linux.namespaces, or NULL.  */
static const oci_namespace *
userns_entry (const oci_config *c)
{
  const oci_linux *l = c->linux;
  const oci_namespace *user = NULL;
  for (size_t k = 0; l && k < l->namespaces_len; k++)
    if (l->namespaces[k] && l->namespaces[k]->type && strcmp (l->namespaces[k]->type, "user") == 0)
      user = l->namespaces[k];
  return user;
}

/* The maps of a new user namespace of l: linux.uidMappings/gidMappings,
   or the caller as root when it has none.  */
static int
new_userns_maps (const oci_linux *l, char **tu, char **tg, sbx_error **err)
{
  if (l && l->uid_mappings_len && l->gid_mappings_len)
    {
      *tu = map_text (l->uid_mappings, l->uid_mappings_len, "linux.uidMappings", err);
      *tg = *tu ? map_text (l->gid_mappings, l->gid_mappings_len, "linux.gidMappings", err) : NULL;
    }
  else
    {
      *tu = xasprintf ("0 %u 1\n", (unsigned)geteuid ());
      *tg = xasprintf ("0 %u 1\n", (unsigned)getegid ());
    }
  if (*tg == NULL)
    {
      free (*tu);
      *tu = NULL;
      return -1;
    }
  return 0;
}

int
sbx_fs_userns_maps (const oci_config *c, char **uid_map, char **gid_map, sbx_error **err)
{
  const oci_namespace *user = userns_entry (c);
  *uid_map = *gid_map = NULL;
  if (user == NULL)
    return 0;
  if (user->path && *user->path)
    {
      cleanup_close int fd = open (user->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return sbx_error_sys (err, "open the user namespace `%s`", user->path);
      if (sbx_userns_maps (fd, uid_map, gid_map, err) < 0)
        return sbx_error_wrap (err, "user namespace `%s`", user->path);
      return 1;
    }
  return new_userns_maps (c->linux, uid_map, gid_map, err) < 0 ? -1 : 1;
}

/* The user namespace whose mapping an idmapped mount of c takes: the
   mount's own uidMappings/gidMappings, else the container's (a joined one
   as it is, a new one from linux.uidMappings/gidMappings, or the caller as
   root when it has none).  Returns its fd.  */
static int
idmap_userns (const oci_config *c, const oci_mount *m, size_t i, sbx_error **err)
{
  const oci_namespace *user = userns_entry (c);
  cleanup_free char *fu = NULL, *fg = NULL, *tu = NULL, *tg = NULL;

  if (m->uid_mappings_len || m->gid_mappings_len)
    {
      fu = xasprintf ("mounts[%zu].uidMappings", i);
      fg = xasprintf ("mounts[%zu].gidMappings", i);
      if (!m->uid_mappings_len || !m->gid_mappings_len)
        return sbx_error_set (err, EINVAL, "%s is required with %s", m->uid_mappings_len ? fg : fu,
                              m->uid_mappings_len ? fu : fg);
      tu = map_text (m->uid_mappings, m->uid_mappings_len, fu, err);
      tg = tu ? map_text (m->gid_mappings, m->gid_mappings_len, fg, err) : NULL;
      return tg ? sbx_userns_fd (tu, tg, err) : -1;
    }
  if (user == NULL)
    return sbx_error_set (err, EINVAL,
                          "mounts[%zu] (%s): idmap without mounts[%zu].uidMappings/gidMappings takes the "
                          "container's user namespace, and it has none",
                          i, m->destination, i);
  if (user->path && *user->path)
    {
      int fd = open (user->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return sbx_error_sys (err, "mounts[%zu] (%s): idmap: open the user namespace `%s`", i, m->destination,
                              user->path);
      return fd;
    }
  if (new_userns_maps (c->linux, &tu, &tg, err) < 0)
    return -1;
  return sbx_userns_fd (tu, tg, err);
}

/* Make tree (a detached copy of mounts[i]'s source) idmapped: ridmap also
   every mount below it.  */
static int
idmap_tree (const oci_config *c, const oci_mount *m, size_t i, bool recursive, int tree, sbx_error **err)
{
  cleanup_close int ns = idmap_userns (c, m, i, err);
  struct sbx_mount_attr a = { .attr_set = MOUNT_ATTR_IDMAP };
  if (ns < 0)
    return -1;
  a.userns_fd = (uint64_t)ns;
  if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
    {
      int e = errno;
      return sbx_error_set (err, e, "mounts[%zu] (%s): %s `%s`: %s", i, m->destination,
                            recursive ? "ridmap" : "idmap", m->source,
                            e == ENOSYS   ? "idmapped mounts need Linux 5.12"
                            : e == EINVAL ? "its filesystem does not support idmapped mounts"
                                          : "mount_setattr");
    }
  return 0;
}

int
sbx_bind_sources_open (const oci_config *c, const char *bundle, int **out, sbx_error **err)
{
  int *trees = xmalloc0 ((c->mounts_len ? c->mounts_len : 1) * sizeof *trees);

  for (size_t i = 0; i < c->mounts_len; i++)
    {
      const oci_mount *m = c->mounts[i];
      cleanup_error sbx_error *e = NULL;
      sbx_mount_opts mo;
      trees[i] = -1;
      /* a bad entry is reported by the init, with its context */
      if (m->source == NULL || sbx_fs_mount_opts_parse (m->options, m->options_len, &mo, &e) < 0)
        continue;
      bool bind = mo.bind || (m->type && strcmp (m->type, "bind") == 0);
      bool idmap = mo.idmap || m->uid_mappings_len || m->gid_mappings_len, ridmap = mo.idmap_recursive;
      unsigned long rec = mo.flags & MS_REC;
      sbx_fs_mount_opts_clear (&mo);
      if (idmap && !bind)
        {
          sbx_error_set (err, EINVAL,
                         "mounts[%zu] (%s): idmap, ridmap and uidMappings/gidMappings apply to bind "
                         "mounts only (type `%s`)",
                         i, m->destination, m->type ? m->type : "");
          goto fail;
        }
      if (!bind)
        continue;
      cleanup_free char *src = m->source[0] == '/' || bundle == NULL ? xstrdup (m->source)
                                                                   : xasprintf ("%s/%s", bundle, m->source);
      if (idmap)
        {
          /* An idmapped tree lets the container act as the owners on disk:
             its source must be the path the config names, not where a
             symlink (one the image may have put under the rootfs) leads.  */
          struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
          bool rel = m->source[0] != '/' && bundle != NULL; /* the bundle's own path is the engine's */
          cleanup_close int bfd = rel ? open (bundle, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
          cleanup_close int sfd = rel && bfd < 0 ? -1
                                                 : syscall (SYS_openat2, rel ? bfd : AT_FDCWD,
                                                            rel ? m->source : src, &how, sizeof how);
          if (sfd < 0)
            {
              sbx_error_sys (err, "mounts[%zu] (%s): idmapped bind of `%s`%s", i, m->destination, src,
                             errno == ELOOP ? " (a symlink in the path: give the resolved path)" : "");
              goto fail;
            }
          trees[i] = syscall (SYS_open_tree, sfd, "",
                              OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0));
          if (trees[i] < 0)
            {
              sbx_error_sys (err, "mounts[%zu] (%s): idmapped bind of `%s`", i, m->destination, src);
              goto fail;
            }
        }
      else
        trees[i]
            = syscall (SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | O_CLOEXEC | (rec ? AT_RECURSIVE : 0));
      if (trees[i] < 0)
        sbx_debug ("bind %s: not opened before the user namespace: %s", src, strerror (errno));
      if (idmap && idmap_tree (c, m, i, ridmap, trees[i], err) < 0)
        goto fail;
    }
  *out = trees;
  return 0;
fail:
  sbx_bind_sources_close (trees, c->mounts_len);
  free (trees);
  *out = NULL;
  return -1;
}

void
sbx_bind_sources_close (int *trees, size_t n)
{
  for (size_t i = 0; trees && i < n; i++)
    if (trees[i] >= 0)
      {
        close (trees[i]);
        trees[i] = -1;
      }
}
