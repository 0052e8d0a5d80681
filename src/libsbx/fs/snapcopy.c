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
 * source) and recomputed from the snapshot to check it.
 *
 * Each regular file (its first name) also has a content digest, made in
 * the same read that copies it: SHA-256 over the size (8 bytes, big
 * endian) then, per 64 KiB chunk of the logical content, "Z" for a chunk of
 * zeros (a hole is one, and is not read) or "D" and the chunk's bytes.  It
 * depends only on the content, not on where the filesystem keeps holes,
 * and chunks of zeros are left as holes in the copy.  A copy from a
 * snapshot compares each file's digest with the manifest's as it goes.  */
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
  bool content;                       /* content digests too */
  const sbx_snapshot_manifest *check; /* compared with its files */
  size_t next;                        /* check: its next files entry */
  char **fkeys, **fvals;              /* no check: recorded */
  size_t nf, capf;
  unsigned char *buf;
};

static void
walk_free (struct walk *w)
{
  for (size_t i = 0; i < w->nlinks; i++)
    free (w->links[i].path);
  free (w->links);
  for (size_t i = 0; i < w->nf; i++)
    {
      free (w->fkeys[i]);
      free (w->fvals[i]);
    }
  free (w->fkeys);
  free (w->fvals);
  free (w->buf);
}

void
sbx_tree_sum_clear (sbx_tree_sum *sum)
{
  for (size_t i = 0; i < sum->files_len; i++)
    {
      free (sum->files_keys[i]);
      free (sum->files_values[i]);
    }
  free (sum->files_keys);
  free (sum->files_values);
  sum->files_keys = sum->files_values = NULL;
  sum->files_len = 0;
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

#define CHUNK (64 << 10)

static bool
all_zero (const unsigned char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

static int
pread_full (int fd, unsigned char *buf, size_t n, off_t off, sbx_error **err)
{
  while (n > 0)
    {
      ssize_t r = pread (fd, buf, n, off);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return sbx_error_sys (err, "read");
      if (r == 0)
        return sbx_error_set (err, EBADMSG, "shorter than its size (truncated, or changed while read)");
      buf += r;
      n -= r;
      off += r;
    }
  return 0;
}

/* The content digest of size bytes of in (see the top), and the copy to
   out when out >= 0: cloned (FICLONE) where the filesystem shares extents,
   else written chunk by chunk, chunks of zeros left as holes.  */
static int
file_content (struct walk *w, int in, int out, off_t size, char hex[65], sbx_error **err)
{
  sbx_sha256_ctx sha;
  unsigned char be[8], d[32];
  off_t pos = 0, data = 0, hole = 0;

  if (out >= 0 && size > 0 && ioctl (out, FICLONE, in) == 0)
    out = -1;
  if (w->buf == NULL)
    w->buf = xmalloc0 (CHUNK);
  sbx_sha256_init (&sha);
  for (int i = 0; i < 8; i++)
    be[i] = (unsigned long long)size >> (56 - 8 * i);
  sbx_sha256_update (&sha, be, sizeof be);
  while (pos < size)
    {
      size_t want = size - pos < CHUNK ? (size_t)(size - pos) : CHUNK;
      bool zero = true;
      if (pos >= hole)
        {
          /* The next data extent [data, hole); none left: all hole.  */
          data = lseek (in, pos, SEEK_DATA);
          if (data < 0 && errno != ENXIO)
            return sbx_error_sys (err, "seek data");
          hole = data < 0 ? size : lseek (in, data, SEEK_HOLE);
          if (data < 0)
            data = size;
          if (hole < 0)
            return sbx_error_sys (err, "seek hole");
        }
      if (pos + (off_t)want > data)
        {
          if (pread_full (in, w->buf, want, pos, err) < 0)
            return -1;
          zero = all_zero (w->buf, want);
        }
      sbx_sha256_update (&sha, zero ? "Z" : "D", 1);
      if (!zero)
        {
          sbx_sha256_update (&sha, w->buf, want);
          if (out >= 0 && pwrite (out, w->buf, want, pos) != (ssize_t)want)
            return sbx_error_sys (err, "write");
        }
      pos += want;
    }
  if (out >= 0 && ftruncate (out, size) < 0)
    return sbx_error_sys (err, "set size");
  sbx_sha256_final (&sha, d);
  sbx_sha256_hex (d, hex);
  return 0;
}

/* Record the content digest of path, or compare it with the manifest's.  */
static int
file_digest (struct walk *w, const char *path, const char *hex, sbx_error **err)
{
  const sbx_snapshot_manifest *m = w->check;
  if (m == NULL)
    {
      if (w->nf == w->capf)
        {
          w->capf = w->capf ? 2 * w->capf : 64;
          w->fkeys = xrealloc (w->fkeys, w->capf * sizeof *w->fkeys);
          w->fvals = xrealloc (w->fvals, w->capf * sizeof *w->fvals);
        }
      w->fkeys[w->nf] = xstrdup (path);
      w->fvals[w->nf++] = xstrdup (hex);
      return 0;
    }
  if (w->next >= m->files_len || strcmp (m->files_keys[w->next], path) != 0)
    {
      /* A file the manifest lists further on: the ones before it are gone. */
      for (size_t j = w->next + 1; j < m->files_len; j++)
        if (strcmp (m->files_keys[j], path) == 0)
          return sbx_error_set (err, EBADMSG, "`%s` of the manifest is missing: tampered, refused",
                                m->files_keys[w->next]);
      return sbx_error_set (err, EBADMSG, "no content digest in the manifest: tampered, refused");
    }
  if (strcmp (m->files_values[w->next], hex) != 0)
    return sbx_error_set (err, EBADMSG,
                          "content does not match the manifest (sha256 %.12s, manifest says %.12s): "
                          "tampered or truncated, refused",
                          hex, m->files_values[w->next]);
  w->next++;
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
        /* O_NONBLOCK: a running container may have swapped the file for a
           FIFO since the stat, and that must not hang us.  */
        cleanup_close int in = openat (sfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        cleanup_close int out = -1;
        struct stat now;
        if (in < 0)
          return sbx_error_sys (err, "open `%s`", path);
        if (fstat (in, &now) < 0 || !S_ISREG (now.st_mode) || now.st_ino != st.st_ino
            || now.st_dev != st.st_dev)
          return sbx_error_set (err, EAGAIN, "`%s` changed while the snapshot was taken", path);
        char hex[65];
        hash_entry (w, path, &st, NULL);
        w->bytes += st.st_size;
        if (w->copy)
          {
            out = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (out < 0)
              return sbx_error_sys (err, "create `%s`", path);
          }
        if ((w->copy || w->content)
            && (file_content (w, in, out, st.st_size, hex, err) < 0 || file_digest (w, path, hex, err) < 0))
          return sbx_error_wrap (err, "file `%s`", path);
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

static int
walk_result (struct walk *w, sbx_tree_sum *sum, sbx_error **err)
{
  unsigned char d[32];
  if (w->check && w->next < w->check->files_len)
    return sbx_error_set (err, EBADMSG, "file `%s` of the manifest is missing: tampered, refused",
                          w->check->files_keys[w->next]);
  sbx_sha256_final (&w->sha, d);
  sbx_sha256_hex (d, sum->digest);
  sum->entries = w->entries;
  sum->bytes = w->bytes;
  sum->files_keys = steal_ptr (w->fkeys);
  sum->files_values = steal_ptr (w->fvals);
  sum->files_len = w->nf;
  w->nf = 0;
  return 0;
}

int
sbx_fs_tree_copy (int srcfd, int dstfd, const sbx_snapshot_manifest *check, sbx_tree_sum *sum,
                  sbx_error **err)
{
  struct walk w = { .copy = true, .droot = dstfd, .content = true, .check = check };
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
    r = walk_result (&w, sum, err);
  walk_free (&w);
  return r;
}

static int
tree_sum (int dirfd, bool content, const sbx_snapshot_manifest *check, sbx_tree_sum *sum, sbx_error **err)
{
  struct walk w = { .copy = false, .droot = -1, .content = content, .check = check };
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
    r = walk_result (&w, sum, err);
  walk_free (&w);
  return r;
}

int
sbx_fs_tree_sum_of (int dirfd, const sbx_snapshot_manifest *check, sbx_tree_sum *sum, sbx_error **err)
{
  return tree_sum (dirfd, check != NULL, check, sum, err);
}

int
sbx_fs_tree_sum_record (int dirfd, sbx_tree_sum *sum, sbx_error **err)
{
  return tree_sum (dirfd, true, NULL, sum, err);
}
