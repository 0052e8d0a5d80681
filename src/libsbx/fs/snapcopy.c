/* snapcopy.c - copy a directory tree for a snapshot, and the digest of a
 * tree's metadata (see fs.h).
 *
 * The walk never follows a symlink: every object is reached from its
 * parent's fd (openat O_NOFOLLOW, *at calls).  Regular files and
 * directories are opened (a file O_NONBLOCK, and checked with fstat to be
 * the regular file the lstat saw: a FIFO swapped in never blocks the copy)
 * and their xattrs, owner, mode and times are read and set through the
 * fds; symlinks and special files are never opened (xattrs through
 * /proc/self/fd/<parent>/<name> with the l* calls), specials are copied as
 * nodes.  Data is cloned (FICLONE) where the filesystem shares extents,
 * else read once into a buffer, hashed and written (chunks of zeros and
 * holes, found with SEEK_DATA/SEEK_HOLE, left as holes).  Overlay whiteouts
 * (0/0 character devices) are copied like any node.  Hard links inside the
 * tree stay links.  xattrs pass a policy (xattr_kept): what is not kept is
 * neither copied nor hashed.
 *
 * The digest covers, per entry in sorted path order: path, type, mode,
 * owner, size, device number, symlink target, kept xattrs, and for a second name
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
#include "fs/fs_internal.h"

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
  bool file_caps; /* copy security.capability (hashed always) */
  bool no_clone;  /* FICLONE unsupported from noclone_dev: not tried */
  dev_t noclone_dev;
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

int
sbx_fs_dir_names (int dfd, char ***out, size_t *n, sbx_error **err)
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

bool
sbx_fs_xattr_kept (const char *name, bool file_caps)
{
  static const char *const kept[] = {
    /* what the overlay format of an upper dir needs (opaque directories,
       xattr whiteouts, renamed directories under redirect_dir=on) */
    "trusted.overlay.opaque",   "trusted.overlay.whiteout", "trusted.overlay.whiteouts",
    "trusted.overlay.redirect", "system.posix_acl_access",  "system.posix_acl_default",
  };
  if (sbx_has_prefix (name, "user."))
    return !sbx_has_prefix (name, "user.overlay.");
  if (strcmp (name, "security.capability") == 0)
    return file_caps;
  for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
    if (strcmp (name, kept[i]) == 0)
      return true;
  return false;
}

/* Where an object's xattrs are read or written: an open fd, else (a
   symlink, a special file) parent fd + name with the l* calls.  */
struct xa_obj
{
  int fd;
  char path[64 + NAME_MAX];
};

static void
xa_at (struct xa_obj *o, int fd, int pfd, const char *name)
{
  o->fd = fd;
  if (fd < 0 && pfd >= 0)
    snprintf (o->path, sizeof o->path, "/proc/self/fd/%d/%s", pfd, name);
  else
    o->path[0] = '\0';
}

static ssize_t
xa_list (const struct xa_obj *o, char *buf, size_t n)
{
  return o->fd >= 0 ? flistxattr (o->fd, buf, n) : llistxattr (o->path, buf, n);
}

static ssize_t
xa_get (const struct xa_obj *o, const char *name, void *buf, size_t n)
{
  return o->fd >= 0 ? fgetxattr (o->fd, name, buf, n) : lgetxattr (o->path, name, buf, n);
}

static int
xa_set (const struct xa_obj *o, const char *name, const void *val, size_t n)
{
  return o->fd >= 0 ? fsetxattr (o->fd, name, val, n, 0) : lsetxattr (o->path, name, val, n, 0);
}

/* The kept xattrs of src (sbx_fs_xattr_kept with caps: hashed as sorted
   "name\0value"), copied onto dst when given (security.capability only
   with w->file_caps).  */
static int
xattrs (struct walk *w, const struct xa_obj *src, const struct xa_obj *dst, sbx_error **err)
{
  char small[1024];
  cleanup_free char *big = NULL;
  char *list = small;
  cleanup_free char **names = NULL;
  ssize_t n;
  size_t cnt = 0;

  n = xa_list (src, small, sizeof small - 1);
  if (n < 0 && errno == ERANGE)
    {
      n = xa_list (src, NULL, 0);
      if (n >= 0)
        {
          list = big = xmalloc0 (n + 1);
          n = xa_list (src, big, n);
        }
    }
  if (n < 0)
    return errno == ENOTSUP ? 0 : sbx_error_sys (err, "list xattrs");
  if (n == 0)
    return 0;
  list[n] = '\0';
  names = xmalloc0 ((n + 1) * sizeof *names);
  for (char *p = list; p < list + n; p += strlen (p) + 1)
    if (*p && sbx_fs_xattr_kept (p, true))
      names[cnt++] = p;
  qsort (names, cnt, sizeof *names, cmp_names);
  for (size_t i = 0; i < cnt; i++)
    {
      cleanup_free char *val = NULL;
      ssize_t vn = xa_get (src, names[i], NULL, 0);
      if (vn < 0)
        return sbx_error_sys (err, "read xattr `%s`", names[i]);
      val = xmalloc0 (vn + 1);
      vn = xa_get (src, names[i], val, vn);
      if (vn < 0)
        return sbx_error_sys (err, "read xattr `%s`", names[i]);
      sbx_sha256_update (&w->sha, names[i], strlen (names[i]) + 1);
      sbx_sha256_update (&w->sha, val, vn);
      if (dst && sbx_fs_xattr_kept (names[i], w->file_caps) && xa_set (dst, names[i], val, vn) < 0)
        return sbx_error_sys (err, "set xattr `%s`", names[i]);
    }
  return 0;
}

#define CHUNK (64 << 10)   /* the content digest's unit */
#define IOBUF (16 * CHUNK) /* one read, one write */

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

static int
pwrite_full (int fd, const unsigned char *buf, size_t n, off_t off, sbx_error **err)
{
  while (n > 0)
    {
      ssize_t r = pwrite (fd, buf, n, off);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return sbx_error_sys (err, "write");
      buf += r;
      n -= r;
      off += r;
    }
  return 0;
}

/* The content digest of size bytes of in (see the top), and the copy to
   out when out >= 0: cloned (FICLONE) where the filesystem shares extents,
   else written as it is read, runs of data chunks in one write, chunks of
   zeros left as holes.  st is in's stat: a file with as many blocks as
   bytes has no hole to look for.  */
static int
file_content (struct walk *w, int in, int out, const struct stat *st, char hex[65], sbx_error **err)
{
  sbx_sha256_ctx sha;
  unsigned char be[8], d[32];
  off_t size = st->st_size, pos = 0, data = 0, hole = 0, end = 0;
  bool seek = (off_t)st->st_blocks * 512 < size;

  if (out >= 0 && size > 0 && !(w->no_clone && w->noclone_dev == st->st_dev))
    {
      if (ioctl (out, FICLONE, in) == 0)
        out = -1;
      else if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV)
        {
          /* No reflinks from this filesystem (to the copy's).  */
          w->no_clone = true;
          w->noclone_dev = st->st_dev;
        }
    }
  if (w->buf == NULL && size > 0)
    w->buf = xmalloc0 (IOBUF);
  if (!seek)
    hole = size;
  sbx_sha256_init (&sha);
  for (int i = 0; i < 8; i++)
    be[i] = (unsigned long long)size >> (56 - 8 * i);
  sbx_sha256_update (&sha, be, sizeof be);
  while (pos < size)
    {
      size_t want;
      if (seek && pos >= hole)
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
      if (data > pos)
        {
          /* Whole chunks of a hole (to the end when no data is left): not
             read, not written.  */
          off_t n = data >= size ? (size - pos + CHUNK - 1) / CHUNK : (data - pos) / CHUNK;
          for (off_t i = 0; i < n; i++)
            sbx_sha256_update (&sha, "Z", 1);
          pos += n * CHUNK;
          if (n > 0)
            continue;
        }
      /* Chunks from pos, up to the end of this data extent (rounded up to
         a chunk) and the buffer's size.  */
      want = IOBUF;
      if (hole > pos && (off_t)want > hole - pos)
        want = ((hole - pos) + CHUNK - 1) / CHUNK * CHUNK;
      if ((off_t)want > size - pos)
        want = size - pos;
      if (pread_full (in, w->buf, want, pos, err) < 0)
        return -1;
      for (size_t off = 0, run = 0; off < want;)
        {
          size_t n = want - off < CHUNK ? want - off : CHUNK;
          bool zero = all_zero (w->buf + off, n);
          sbx_sha256_update (&sha, zero ? "Z" : "D", 1);
          if (!zero)
            {
              sbx_sha256_update (&sha, w->buf + off, n);
              run += n;
            }
          off += n;
          if (out >= 0 && run > 0 && (zero || off == want))
            {
              /* The run of data chunks that ends here.  */
              size_t at = off - (zero ? n : 0) - run;
              if (pwrite_full (out, w->buf + at, run, pos + at, err) < 0)
                return -1;
              end = pos + at + run;
              run = 0;
            }
        }
      pos += want;
    }
  if (out >= 0 && end != size && ftruncate (out, size) < 0)
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

/* Owner, mode and times of a copied node, and the kept xattrs between
   the owner and the mode (a chown drops security.capability).  Through
   fd when it is open (regular files, directories), else dpfd/name.  */
static int
copy_meta (struct walk *w, const struct xa_obj *src, int fd, int dpfd, const char *name,
           const struct stat *st, sbx_error **err)
{
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  struct xa_obj dst;
  xa_at (&dst, fd, dpfd, name);
  if ((fd >= 0 ? fchown (fd, st->st_uid, st->st_gid)
               : fchownat (dpfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW))
      < 0)
    return sbx_error_sys (err, "set owner");
  if (xattrs (w, src, &dst, err) < 0)
    return -1;
  if (!S_ISLNK (st->st_mode)
      && (fd >= 0 ? fchmod (fd, st->st_mode & 07777) : fchmodat (dpfd, name, st->st_mode & 07777, 0)) < 0)
    return sbx_error_sys (err, "set mode");
  if ((fd >= 0 ? futimens (fd, ts) : utimensat (dpfd, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
    return sbx_error_sys (err, "set times");
  return 0;
}

/* An opened object is still the one lstat saw (a running container may
   swap it).  */
static int
same_object (int fd, const struct stat *st, const char *path, sbx_error **err)
{
  struct stat now;
  if (fstat (fd, &now) < 0 || (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT) || now.st_ino != st->st_ino
      || now.st_dev != st->st_dev)
    return sbx_error_set (err, EAGAIN, "`%s` changed while the snapshot was taken", path);
  return 0;
}

static int walk_dir (struct walk *w, int sfd, int dfd, const char *rel, sbx_error **err);

/* One entry name of directory sfd (copied into dfd when copying).  */
static int
walk_entry (struct walk *w, int sfd, int dfd, const char *rel, const char *name, sbx_error **err)
{
  cleanup_free char *path = xasprintf ("%s/%s", rel, name);
  cleanup_close int in = -1, out = -1;
  char target[PATH_MAX];
  struct xa_obj src;
  const char *first;
  struct stat st;
  ssize_t tn;

  if (fstatat (sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "`%s`", path);
  w->entries++;
  if (!S_ISDIR (st.st_mode) && st.st_nlink > 1 && (first = link_lookup (w, &st)))
    {
      /* A name of an inode already copied (and hashed): a link.  */
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
      in = openat (sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (in < 0)
        return sbx_error_sys (err, "open `%s`", path);
      if (same_object (in, &st, path, err) < 0)
        return -1;
      hash_entry (w, path, &st, NULL);
      if (w->copy)
        {
          if (mkdirat (dfd, name, 0700) < 0)
            return sbx_error_sys (err, "mkdir `%s`", path);
          out = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (out < 0)
            return sbx_error_sys (err, "open copy of `%s`", path);
        }
      xa_at (&src, in, -1, NULL);
      if (!w->copy && xattrs (w, &src, NULL, err) < 0)
        return sbx_error_wrap (err, "`%s`", path);
      if (w->copy)
        {
          /* Owner and xattrs first (hashed before the entries, as the
             digest orders them); mode and times after the entries.  */
          struct xa_obj dst;
          xa_at (&dst, out, -1, NULL);
          if (fchown (out, st.st_uid, st.st_gid) < 0)
            return sbx_error_sys (err, "`%s`: set owner", path);
          if (xattrs (w, &src, &dst, err) < 0)
            return sbx_error_wrap (err, "`%s`", path);
        }
      if (walk_dir (w, in, out, path, err) < 0)
        return -1;
      if (w->copy)
        {
          struct timespec ts[2] = { st.st_atim, st.st_mtim };
          if (fchmod (out, st.st_mode & 07777) < 0 || futimens (out, ts) < 0)
            return sbx_error_sys (err, "`%s`: set mode and times", path);
        }
      return 0;
    case S_IFLNK:
      tn = readlinkat (sfd, name, target, sizeof target - 1);
      if (tn < 0)
        return sbx_error_sys (err, "readlink `%s`", path);
      target[tn] = '\0';
      hash_entry (w, path, &st, target);
      if (w->copy && symlinkat (target, dfd, name) < 0)
        return sbx_error_sys (err, "symlink `%s`", path);
      xa_at (&src, -1, sfd, name);
      break;
    case S_IFREG:
      {
        char hex[65];
        /* A file of no bytes is not opened: nothing to read.  The others
           O_NONBLOCK and checked: a running container may have swapped the
           file for a FIFO since the stat, and that must not hang us.  */
        if (st.st_size > 0)
          {
            in = openat (sfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
            if (in < 0)
              return sbx_error_sys (err, "open `%s`", path);
            if (same_object (in, &st, path, err) < 0)
              return -1;
          }
        hash_entry (w, path, &st, NULL);
        w->bytes += st.st_size;
        if (w->copy)
          {
            out = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (out < 0)
              return sbx_error_sys (err, "create `%s`", path);
          }
        if ((w->copy || w->content)
            && (file_content (w, in, out, &st, hex, err) < 0 || file_digest (w, path, hex, err) < 0))
          return sbx_error_wrap (err, "file `%s`", path);
        xa_at (&src, in, sfd, name);
        break;
      }
    default: /* devices (overlay whiteouts are 0/0), fifos, sockets: never opened */
      hash_entry (w, path, &st, NULL);
      if (w->copy && mknodat (dfd, name, st.st_mode & (S_IFMT | 0777), st.st_rdev) < 0)
        return sbx_error_sys (err, "mknod `%s`", path);
      xa_at (&src, -1, sfd, name);
      break;
    }
  if (!w->copy && xattrs (w, &src, NULL, err) < 0)
    return sbx_error_wrap (err, "`%s`", path);
  if (w->copy && copy_meta (w, &src, out, dfd, name, &st, err) < 0)
    return sbx_error_wrap (err, "`%s`", path);
  return 0;
}

static int
walk_dir (struct walk *w, int sfd, int dfd, const char *rel, sbx_error **err)
{
  cleanup_strv char **names = NULL;
  size_t n = 0;
  if (sbx_fs_dir_names (sfd, &names, &n, err) < 0)
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
sbx_fs_tree_copy (int srcfd, int dstfd, const sbx_snapshot_manifest *check, unsigned flags, sbx_tree_sum *sum,
                  sbx_error **err)
{
  struct walk w = { .copy = true,
                    .droot = dstfd,
                    .content = true,
                    .check = check,
                    .file_caps = (flags & SBX_TREE_FILE_CAPS) != 0 };
  struct xa_obj src, dst;
  struct stat st;
  int r;

  sbx_sha256_init (&w.sha);
  if (fstat (srcfd, &st) < 0)
    return sbx_error_sys (err, "stat the tree");
  hash_entry (&w, "", &st, NULL);
  xa_at (&src, srcfd, -1, NULL);
  xa_at (&dst, dstfd, -1, NULL);
  r = xattrs (&w, &src, &dst, err);
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
  struct xa_obj src;
  struct stat st;
  int r;

  sbx_sha256_init (&w.sha);
  if (fstat (dirfd, &st) < 0)
    return sbx_error_sys (err, "stat the tree");
  hash_entry (&w, "", &st, NULL);
  xa_at (&src, dirfd, -1, NULL);
  r = xattrs (&w, &src, NULL, err);
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
