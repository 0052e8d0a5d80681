/* snapcopy.c - copy a directory tree for a snapshot, and the digest of a
 * tree's metadata (see fs.h).
 *
 * The walk never follows a symlink: every object is reached from its
 * parent's fd (openat O_NOFOLLOW, *at calls, xattrs through
 * /proc/self/fd/<parent>/<name> with the l* calls).  Data is cloned
 * (FICLONE) where the filesystem shares extents, else copied extent by
 * extent (SEEK_DATA/SEEK_HOLE + copy_file_range), so holes stay holes.
 * Overlay whiteouts (0/0 character devices) and opaque/redirect xattrs are
 * copied like any node and xattr.  Hard links inside the tree stay links.
 *
 * The digest covers, per entry in sorted path order: path, type, mode,
 * owner, size, device number, symlink target, xattrs, and for a second name
 * of an inode the first one.  It is computed while copying (from the
 * source) and recomputed from the snapshot to check it.  */
#include <config.h>
#include "fs/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct link_seen
{
  dev_t dev;
  ino_t ino;
  char *path;
};

struct walk
{
  sbx_sha256_ctx sha;
  struct link_seen *links;
  size_t nlinks, caplinks;
  unsigned long long entries, bytes;
  bool copy; /* false: digest only */
  int droot; /* the copy's root (hard links are made from it) */
};

static void
walk_free (struct walk *w)
{
  for (size_t i = 0; i < w->nlinks; i++)
    free (w->links[i].path);
  free (w->links);
}

static const char *
link_lookup (struct walk *w, const struct stat *st)
{
  for (size_t i = 0; i < w->nlinks; i++)
    if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino)
      return w->links[i].path;
  return NULL;
}

static void
link_add (struct walk *w, const struct stat *st, const char *path)
{
  if (w->nlinks == w->caplinks)
    {
      w->caplinks = w->caplinks ? 2 * w->caplinks : 64;
      w->links = xrealloc (w->links, w->caplinks * sizeof *w->links);
    }
  w->links[w->nlinks++] = (struct link_seen){ st->st_dev, st->st_ino, xstrdup (path) };
}

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* The sorted entry names of an open directory.  */
static int
read_names (int dfd, char ***out, size_t *n, sbx_error **err)
{
  int fd = dup (dfd);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  char **v = NULL;
  size_t len = 0, cap = 0;

  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return sbx_error_sys (err, "read directory");
    }
  rewinddir (d);
  while ((de = readdir (d)))
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (len + 1 >= cap)
        {
          cap = cap ? 2 * cap : 32;
          v = xrealloc (v, cap * sizeof *v);
        }
      v[len++] = xstrdup (de->d_name);
    }
  closedir (d);
  if (v)
    {
      qsort (v, len, sizeof *v, cmp_names);
      v[len] = NULL;
    }
  *out = v;
  *n = len;
  return 0;
}

/* Sorted "name\0value" xattrs of parent/name, hashed; copied onto dst
   (an fd path of the same kind) when given.  */
static int
xattrs (struct walk *w, int pfd, const char *name, int dpfd, const char *dname, sbx_error **err)
{
  char src[64 + NAME_MAX], dst[64 + NAME_MAX];
  cleanup_free char *list = NULL;
  cleanup_free char **names = NULL;
  ssize_t n;
  size_t cnt = 0;

  snprintf (src, sizeof src, "/proc/self/fd/%d/%s", pfd, name);
  n = llistxattr (src, NULL, 0);
  if (n < 0)
    return errno == ENOTSUP ? 0 : sbx_error_sys (err, "list xattrs");
  if (n == 0)
    return 0;
  list = xmalloc0 (n + 1);
  n = llistxattr (src, list, n);
  if (n < 0)
    return sbx_error_sys (err, "list xattrs");
  names = xmalloc0 ((n + 1) * sizeof *names);
  for (char *p = list; p < list + n; p += strlen (p) + 1)
    if (*p)
      names[cnt++] = p;
  qsort (names, cnt, sizeof *names, cmp_names);
  if (dname)
    snprintf (dst, sizeof dst, "/proc/self/fd/%d/%s", dpfd, dname);
  for (size_t i = 0; i < cnt; i++)
    {
      cleanup_free char *val = NULL;
      ssize_t vn = lgetxattr (src, names[i], NULL, 0);
      if (vn < 0)
        return sbx_error_sys (err, "read xattr `%s`", names[i]);
      val = xmalloc0 (vn + 1);
      vn = lgetxattr (src, names[i], val, vn);
      if (vn < 0)
        return sbx_error_sys (err, "read xattr `%s`", names[i]);
      sbx_sha256_update (&w->sha, names[i], strlen (names[i]) + 1);
      sbx_sha256_update (&w->sha, val, vn);
      if (dname && lsetxattr (dst, names[i], val, vn, 0) < 0)
        return sbx_error_sys (err, "set xattr `%s`", names[i]);
    }
  return 0;
}

int
sbx_fs_copy_file_data (int in, int out, off_t size, sbx_error **err)
{
  off_t pos = 0;

  if (size > 0 && ioctl (out, FICLONE, in) == 0)
    return 0;
  while (pos < size)
    {
      off_t data = lseek (in, pos, SEEK_DATA), hole;
      if (data < 0)
        {
          if (errno == ENXIO) /* only a hole is left */
            break;
          return sbx_error_sys (err, "seek data");
        }
      hole = lseek (in, data, SEEK_HOLE);
      if (hole < 0)
        return sbx_error_sys (err, "seek hole");
      while (data < hole)
        {
          loff_t ioff = data, ooff = data;
          ssize_t n = copy_file_range (in, &ioff, out, &ooff, hole - data, 0);
          if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
            {
              char buf[1 << 16];
              size_t want = hole - data < (off_t)sizeof buf ? (size_t)(hole - data) : sizeof buf;
              n = pread (in, buf, want, data);
              if (n > 0 && pwrite (out, buf, n, data) != n)
                return sbx_error_sys (err, "write");
            }
          if (n < 0)
            return sbx_error_sys (err, "copy data");
          if (n == 0)
            break;
          data += n;
        }
      pos = hole;
    }
  if (ftruncate (out, size) < 0)
    return sbx_error_sys (err, "set size");
  return 0;
}

static void
hash_entry (struct walk *w, const char *path, const struct stat *st, const char *target)
{
  char buf[160];
  int n = snprintf (buf, sizeof buf, "%o %u %u %lld %u:%u", (unsigned)st->st_mode, (unsigned)st->st_uid,
                    (unsigned)st->st_gid, S_ISREG (st->st_mode) ? (long long)st->st_size : 0LL,
                    S_ISCHR (st->st_mode) || S_ISBLK (st->st_mode) ? major (st->st_rdev) : 0,
                    S_ISCHR (st->st_mode) || S_ISBLK (st->st_mode) ? minor (st->st_rdev) : 0);
  sbx_sha256_update (&w->sha, path, strlen (path) + 1);
  sbx_sha256_update (&w->sha, buf, n + 1);
  if (target)
    sbx_sha256_update (&w->sha, target, strlen (target) + 1);
}

static int
set_meta (int dpfd, const char *name, const struct stat *st, sbx_error **err)
{
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  if (fchownat (dpfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "set owner");
  if (!S_ISLNK (st->st_mode) && fchmodat (dpfd, name, st->st_mode & 07777, 0) < 0)
    return sbx_error_sys (err, "set mode");
  if (utimensat (dpfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "set times");
  return 0;
}

static int walk_dir (struct walk *w, int sfd, int dfd, const char *rel, sbx_error **err);

/* One entry name of directory sfd (copied into dfd when copying).  */
static int
walk_entry (struct walk *w, int sfd, int dfd, const char *rel, const char *name, sbx_error **err)
{
  cleanup_free char *path = xasprintf ("%s/%s", rel, name);
  char target[PATH_MAX];
  const char *first;
  struct stat st;
  ssize_t tn;

  if (fstatat (sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "`%s`", path);
  w->entries++;
  if (!S_ISDIR (st.st_mode) && st.st_nlink > 1 && (first = link_lookup (w, &st)))
    {
      sbx_sha256_update (&w->sha, path, strlen (path) + 1);
      sbx_sha256_update (&w->sha, "=", 1);
      sbx_sha256_update (&w->sha, first, strlen (first) + 1);
      if (w->copy && linkat (w->droot, first + 1 /* "/a/b" -> "a/b" */, dfd, name, 0) < 0)
        return sbx_error_sys (err, "link `%s`", path);
      return 0;
    }
  if (!S_ISDIR (st.st_mode) && st.st_nlink > 1)
    link_add (w, &st, path);
  switch (st.st_mode & S_IFMT)
    {
    case S_IFDIR:
      {
        cleanup_close int sub = openat (sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        cleanup_close int dsub = -1;
        if (sub < 0)
          return sbx_error_sys (err, "open `%s`", path);
        hash_entry (w, path, &st, NULL);
        if (w->copy)
          {
            if (mkdirat (dfd, name, 0700) < 0)
              return sbx_error_sys (err, "mkdir `%s`", path);
            dsub = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (dsub < 0)
              return sbx_error_sys (err, "open copy of `%s`", path);
          }
        if (xattrs (w, sfd, name, dfd, w->copy ? name : NULL, err) < 0)
          return sbx_error_wrap (err, "`%s`", path);
        if (walk_dir (w, sub, dsub, path, err) < 0)
          return -1;
        break;
      }
    case S_IFLNK:
      tn = readlinkat (sfd, name, target, sizeof target - 1);
      if (tn < 0)
        return sbx_error_sys (err, "readlink `%s`", path);
      target[tn] = '\0';
      hash_entry (w, path, &st, target);
      if (w->copy && symlinkat (target, dfd, name) < 0)
        return sbx_error_sys (err, "symlink `%s`", path);
      break;
    case S_IFREG:
      {
        cleanup_close int in = openat (sfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        cleanup_close int out = -1;
        if (in < 0)
          return sbx_error_sys (err, "open `%s`", path);
        hash_entry (w, path, &st, NULL);
        w->bytes += st.st_size;
        if (w->copy)
          {
            out = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (out < 0 || sbx_fs_copy_file_data (in, out, st.st_size, err) < 0)
              return out < 0 ? sbx_error_sys (err, "create `%s`", path) : sbx_error_wrap (err, "`%s`", path);
          }
        break;
      }
    default: /* devices (overlay whiteouts are 0/0), fifos, sockets */
      hash_entry (w, path, &st, NULL);
      if (w->copy && mknodat (dfd, name, st.st_mode & (S_IFMT | 0777), st.st_rdev) < 0)
        return sbx_error_sys (err, "mknod `%s`", path);
      break;
    }
  if (!S_ISDIR (st.st_mode) && xattrs (w, sfd, name, dfd, w->copy ? name : NULL, err) < 0)
    return sbx_error_wrap (err, "`%s`", path);
  if (w->copy && set_meta (dfd, name, &st, err) < 0)
    return sbx_error_wrap (err, "`%s`", path);
  return 0;
}

static int
walk_dir (struct walk *w, int sfd, int dfd, const char *rel, sbx_error **err)
{
  cleanup_strv char **names = NULL;
  size_t n = 0;
  if (read_names (sfd, &names, &n, err) < 0)
    return sbx_error_wrap (err, "`%s`", *rel ? rel : "/");
  for (size_t i = 0; i < n; i++)
    if (walk_entry (w, sfd, dfd, rel, names[i], err) < 0)
      return -1;
  return 0;
}

static void
walk_result (struct walk *w, sbx_tree_sum *sum)
{
  unsigned char d[32];
  sbx_sha256_final (&w->sha, d);
  sbx_sha256_hex (d, sum->digest);
  sum->entries = w->entries;
  sum->bytes = w->bytes;
}

int
sbx_fs_tree_copy (int srcfd, int dstfd, sbx_tree_sum *sum, sbx_error **err)
{
  struct walk w = { .copy = true, .droot = dstfd };
  struct stat st;
  int r;

  sbx_sha256_init (&w.sha);
  if (fstat (srcfd, &st) < 0)
    return sbx_error_sys (err, "stat the tree");
  hash_entry (&w, "", &st, NULL);
  r = xattrs (&w, srcfd, ".", dstfd, ".", err);
  if (r == 0)
    r = walk_dir (&w, srcfd, dstfd, "", err);
  if (r == 0 && (fchown (dstfd, st.st_uid, st.st_gid) < 0 || fchmod (dstfd, st.st_mode & 07777) < 0))
    r = sbx_error_sys (err, "set owner and mode of the copy");
  if (r == 0)
    walk_result (&w, sum);
  walk_free (&w);
  return r;
}

int
sbx_fs_tree_sum_of (int dirfd, sbx_tree_sum *sum, sbx_error **err)
{
  struct walk w = { .copy = false, .droot = -1 };
  struct stat st;
  int r;

  sbx_sha256_init (&w.sha);
  if (fstat (dirfd, &st) < 0)
    return sbx_error_sys (err, "stat the tree");
  hash_entry (&w, "", &st, NULL);
  r = xattrs (&w, dirfd, ".", -1, NULL, err);
  if (r == 0)
    r = walk_dir (&w, dirfd, -1, "", err);
  if (r == 0)
    walk_result (&w, sum);
  walk_free (&w);
  return r;
}
