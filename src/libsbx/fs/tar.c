/* tar.c - snapshot export/import as a POSIX pax tar stream (see fs.h).
 *
 * The stream is the snapshot directory: manifest.json, then tree/ and
 * everything below it in sorted order, then process/ (a process image) the
 * same way when the snapshot has one.  Every entry has a pax extended
 * header with its path (no length limit), linkpath, and its xattrs as
 * SCHILY.xattr.<name> (the overlay marks a snapshot keeps included).  Overlay
 * whiteouts are character devices 0/0, hard links type 1 to the first name,
 * and a file with holes is written in the GNU sparse 1.0 layout (pax keys
 * GNU.sparse.major/minor/name/realsize, a decimal map of data extents at the
 * start of its data), so a 100 MB file with 1 MB of data costs 1 MB.
 *
 * Import extracts into a hidden temporary snapshot directory, refusing any
 * path outside manifest.json, tree/ and process/ (absolute, `..`, through
 * a symlink) and any xattr outside the snapshot policy or a file capability
 * (tar_import.c, sbx_fs_xattr_kept), checks the result against the
 * manifest it carried, and only then renames it into place.  */
#include <config.h>
#include "fs/fs.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "state/state.h"

#define BLOCK 512

/* ------------------------------------------------------------ pax records */

void
sbx_fs_pax_add (char **buf, size_t *len, const char *key, const char *val, size_t vlen)
{
  size_t base = strlen (key) + vlen + 3, n = base + 1;
  char digits[24];
  /* The length counts its own digits.  */
  for (;;)
    {
      size_t d = (size_t)snprintf (digits, sizeof digits, "%zu", n);
      if (base + d == n)
        break;
      n = base + d;
    }
  *buf = xrealloc (*buf, *len + n + 1);
  memcpy (*buf + *len, digits, strlen (digits));
  *len += strlen (digits);
  (*buf)[(*len)++] = ' ';
  memcpy (*buf + *len, key, strlen (key));
  *len += strlen (key);
  (*buf)[(*len)++] = '=';
  memcpy (*buf + *len, val, vlen);
  *len += vlen;
  (*buf)[(*len)++] = '\n';
}

int
sbx_fs_pax_parse (const char *buf, size_t len, sbx_pax_cb cb, void *data, sbx_error **err)
{
  size_t pos = 0;
  while (pos < len)
    {
      size_t n = 0, i = pos, klen;
      const char *key, *eq;
      while (i < len && buf[i] >= '0' && buf[i] <= '9' && n < (1u << 30))
        n = n * 10 + (buf[i++] - '0');
      if (i == pos || i >= len || buf[i] != ' ' || n <= i - pos + 1 || pos + n > len
          || buf[pos + n - 1] != '\n')
        return sbx_error_set (err, EBADMSG, "tar: malformed pax record at offset %zu", pos);
      key = buf + i + 1;
      eq = memchr (key, '=', buf + pos + n - 1 - key);
      if (eq == NULL)
        return sbx_error_set (err, EBADMSG, "tar: pax record without `=` at offset %zu", pos);
      klen = eq - key;
      if (cb (data, key, klen, eq + 1, buf + pos + n - 1 - (eq + 1), err) < 0)
        return -1;
      pos += n;
    }
  return 0;
}

/* ------------------------------------------------------------ headers */

static void
octal (char *field, size_t width, unsigned long long v)
{
  /* width - 1 digits, most significant first, then the NUL.  */
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0; v >>= 3)
    field[i] = (char)('0' + (v & 7));
}

static unsigned
checksum (const unsigned char *h)
{
  unsigned sum = 0;
  for (int i = 0; i < BLOCK; i++)
    sum += (i >= 148 && i < 156) ? ' ' : h[i];
  return sum;
}

int
sbx_fs_tar_header (unsigned char h[BLOCK], const char *name, char type, mode_t mode, uid_t uid, gid_t gid,
                   unsigned long long size, long long mtime, unsigned maj, unsigned min)
{
  memset (h, 0, BLOCK);
  snprintf ((char *)h, 100, "%s", name);
  octal ((char *)h + 100, 8, mode & 07777);
  octal ((char *)h + 108, 8, uid & 07777777);
  octal ((char *)h + 116, 8, gid & 07777777);
  octal ((char *)h + 124, 12, size);
  octal ((char *)h + 136, 12, mtime < 0 ? 0 : (unsigned long long)mtime);
  h[156] = type;
  memcpy (h + 257, "ustar", 6);
  memcpy (h + 263, "00", 2);
  octal ((char *)h + 329, 8, maj);
  octal ((char *)h + 337, 8, min);
  snprintf ((char *)h + 148, 8, "%06o", checksum (h));
  h[155] = ' ';
  return 0;
}

static int
parse_octal (const unsigned char *f, size_t w, unsigned long long *out)
{
  unsigned long long v = 0;
  size_t i = 0;
  while (i < w && f[i] == ' ')
    i++;
  for (; i < w && f[i] >= '0' && f[i] <= '7'; i++)
    v = v * 8 + (f[i] - '0');
  if (i < w && f[i] != '\0' && f[i] != ' ')
    return -1;
  *out = v;
  return 0;
}

int
sbx_fs_tar_parse_header (const unsigned char h[BLOCK], sbx_tar_entry *e, sbx_error **err)
{
  unsigned long long sum, v[7];
  memset (e, 0, sizeof *e);
  if (parse_octal (h + 148, 8, &sum) < 0 || sum != checksum (h))
    return sbx_error_set (err, EBADMSG, "tar: header checksum mismatch");
  if (parse_octal (h + 100, 8, &v[0]) < 0 || parse_octal (h + 108, 8, &v[1]) < 0
      || parse_octal (h + 116, 8, &v[2]) < 0 || parse_octal (h + 124, 12, &v[3]) < 0
      || parse_octal (h + 136, 12, &v[4]) < 0 || parse_octal (h + 329, 8, &v[5]) < 0
      || parse_octal (h + 337, 8, &v[6]) < 0)
    return sbx_error_set (err, EBADMSG, "tar: malformed number in header");
  memcpy (e->name, h, 100);
  memcpy (e->linkname, h + 157, 100);
  e->type = h[156] ? (char)h[156] : '0';
  e->mode = v[0], e->uid = v[1], e->gid = v[2], e->size = v[3], e->mtime = v[4];
  e->devmajor = v[5], e->devminor = v[6];
  return 0;
}

/* ------------------------------------------------------------ export */

struct tw
{
  int fd;
  struct
  {
    dev_t dev;
    ino_t ino;
    char *path;
  } * links;
  size_t nlinks;
};

static int
put (int fd, const void *buf, size_t len, sbx_error **err)
{
  if (sbx_write_all (fd, buf, len) < 0)
    return sbx_error_sys (err, "export: write");
  return 0;
}

static int
pad (int fd, unsigned long long size, sbx_error **err)
{
  static const char zero[BLOCK];
  size_t r = size % BLOCK;
  return r ? put (fd, zero, BLOCK - r, err) : 0;
}

static int
put_pax (int fd, const char *path, const char *recs, size_t len, sbx_error **err)
{
  unsigned char h[BLOCK];
  cleanup_free char *n = xasprintf ("PaxHeaders/%.80s", path);
  sbx_fs_tar_header (h, n, 'x', 0644, 0, 0, len, 0, 0, 0);
  if (put (fd, h, BLOCK, err) < 0 || put (fd, recs, len, err) < 0)
    return -1;
  return pad (fd, len, err);
}

static int
add_xattrs (int pfd, const char *name, char **recs, size_t *rlen, sbx_error **err)
{
  char p[64 + NAME_MAX];
  cleanup_free char *list = NULL;
  ssize_t n;
  snprintf (p, sizeof p, "/proc/self/fd/%d/%s", pfd, name);
  n = llistxattr (p, NULL, 0);
  if (n <= 0)
    return n < 0 && errno != ENOTSUP ? sbx_error_sys (err, "export: list xattrs") : 0;
  list = xmalloc0 (n + 1);
  n = llistxattr (p, list, n);
  for (char *k = list; n > 0 && k < list + n; k += strlen (k) + 1)
    {
      cleanup_free char *val = NULL, *key = xasprintf ("SCHILY.xattr.%s", k);
      ssize_t vn = lgetxattr (p, k, NULL, 0);
      if (vn < 0)
        return sbx_error_sys (err, "export: read xattr `%s`", k);
      val = xmalloc0 (vn + 1);
      vn = lgetxattr (p, k, val, vn);
      if (vn < 0)
        return sbx_error_sys (err, "export: read xattr `%s`", k);
      sbx_fs_pax_add (recs, rlen, key, val, vn);
    }
  return 0;
}

/* Data extents of fd (offset, length pairs), or none for a file without
   holes.  */
static size_t
extents (int fd, off_t size, off_t **out)
{
  off_t pos = 0, *v = NULL, total = 0;
  size_t n = 0;
  while (pos < size)
    {
      off_t d = lseek (fd, pos, SEEK_DATA), h;
      if (d < 0)
        break;
      h = lseek (fd, d, SEEK_HOLE);
      if (h < 0)
        h = size;
      v = xrealloc (v, (n + 1) * 2 * sizeof *v);
      v[2 * n] = d, v[2 * n + 1] = h - d;
      total += h - d;
      n++;
      pos = h;
    }
  if (total == size)
    {
      free (v);
      *out = NULL;
      return 0;
    }
  *out = v;
  return n;
}

static int
copy_out (int fd, int in, off_t off, off_t len, sbx_error **err)
{
  char buf[1 << 16];
  while (len > 0)
    {
      ssize_t n = pread (in, buf, len < (off_t)sizeof buf ? (size_t)len : sizeof buf, off);
      if (n <= 0)
        return sbx_error_set (err, n < 0 ? errno : EIO, "export: read file (changed while exported?)");
      if (put (fd, buf, n, err) < 0)
        return -1;
      off += n, len -= n;
    }
  return 0;
}

static int export_dir (struct tw *t, int dfd, const char *rel, sbx_error **err);

static int
export_entry (struct tw *t, int pfd, const char *name, const char *path, sbx_error **err)
{
  cleanup_free char *recs = NULL, *target = NULL, *map = NULL;
  cleanup_free off_t *ext = NULL;
  cleanup_close int in = -1;
  size_t rlen = 0, next = 0, maplen = 0;
  unsigned long long size = 0;
  unsigned char h[BLOCK];
  struct stat st;
  char type;

  if (fstatat (pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "export: `%s`", path);
  sbx_fs_pax_add (&recs, &rlen, "path", path, strlen (path));
  switch (st.st_mode & S_IFMT)
    {
    case S_IFDIR:
      type = '5';
      break;
    case S_IFLNK:
      type = '2';
      target = xmalloc0 (PATH_MAX);
      if (readlinkat (pfd, name, target, PATH_MAX - 1) < 0)
        return sbx_error_sys (err, "export: readlink `%s`", path);
      sbx_fs_pax_add (&recs, &rlen, "linkpath", target, strlen (target));
      break;
    case S_IFCHR:
      type = '3';
      break;
    case S_IFBLK:
      type = '4';
      break;
    case S_IFIFO:
      type = '6';
      break;
    case S_IFREG:
      type = '0';
      break;
    default:
      return 0; /* sockets are not archived */
    }
  if (type == '0' && st.st_nlink > 1)
    {
      for (size_t i = 0; i < t->nlinks; i++)
        if (t->links[i].dev == st.st_dev && t->links[i].ino == st.st_ino)
          {
            type = '1';
            sbx_fs_pax_add (&recs, &rlen, "linkpath", t->links[i].path, strlen (t->links[i].path));
            break;
          }
      if (type == '0')
        {
          t->links = xrealloc (t->links, (t->nlinks + 1) * sizeof *t->links);
          t->links[t->nlinks].dev = st.st_dev;
          t->links[t->nlinks].ino = st.st_ino;
          t->links[t->nlinks++].path = xstrdup (path);
        }
    }
  if (type == '0')
    {
      in = openat (pfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
      if (in < 0)
        return sbx_error_sys (err, "export: open `%s`", path);
      size = st.st_size;
      next = extents (in, st.st_size, &ext);
      if (ext)
        {
          char num[32];
          snprintf (num, sizeof num, "%lld", (long long)st.st_size);
          sbx_fs_pax_add (&recs, &rlen, "GNU.sparse.major", "1", 1);
          sbx_fs_pax_add (&recs, &rlen, "GNU.sparse.minor", "0", 1);
          sbx_fs_pax_add (&recs, &rlen, "GNU.sparse.name", path, strlen (path));
          sbx_fs_pax_add (&recs, &rlen, "GNU.sparse.realsize", num, strlen (num));
          map = xasprintf ("%zu\n", next);
          for (size_t i = 0; i < next; i++)
            {
              char *m2 = xasprintf ("%s%lld\n%lld\n", map, (long long)ext[2 * i], (long long)ext[2 * i + 1]);
              free (map);
              map = m2;
            }
          maplen = strlen (map);
          size = (maplen + BLOCK - 1) / BLOCK * BLOCK;
          for (size_t i = 0; i < next; i++)
            size += ext[2 * i + 1];
        }
    }
  if (type == '0' && size > 077777777777ULL)
    {
      /* Beyond the 11 octal digits of the ustar field (8 GiB).  */
      char num[32];
      snprintf (num, sizeof num, "%llu", size);
      sbx_fs_pax_add (&recs, &rlen, "size", num, strlen (num));
    }
  if (add_xattrs (pfd, name, &recs, &rlen, err) < 0)
    return sbx_error_wrap (err, "`%s`", path);
  if (put_pax (t->fd, path, recs, rlen, err) < 0)
    return -1;
  sbx_fs_tar_header (h, path, type, st.st_mode, st.st_uid, st.st_gid,
                     type == '0' && size <= 077777777777ULL ? size : 0, st.st_mtim.tv_sec,
                     (type == '3' || type == '4') ? major (st.st_rdev) : 0,
                     (type == '3' || type == '4') ? minor (st.st_rdev) : 0);
  if (put (t->fd, h, BLOCK, err) < 0)
    return -1;
  if (type == '0')
    {
      if (map)
        {
          if (put (t->fd, map, maplen, err) < 0 || pad (t->fd, maplen, err) < 0)
            return -1;
          for (size_t i = 0; i < next; i++)
            if (copy_out (t->fd, in, ext[2 * i], ext[2 * i + 1], err) < 0)
              return sbx_error_wrap (err, "`%s`", path);
        }
      else if (copy_out (t->fd, in, 0, st.st_size, err) < 0)
        return sbx_error_wrap (err, "`%s`", path);
      if (pad (t->fd, size, err) < 0)
        return -1;
    }
  if (type == '5')
    {
      cleanup_close int sub = openat (pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        return sbx_error_sys (err, "export: open `%s`", path);
      return export_dir (t, sub, path, err);
    }
  return 0;
}

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

static int
export_dir (struct tw *t, int dfd, const char *rel, sbx_error **err)
{
  DIR *d = fdopendir (dup (dfd));
  struct dirent *de;
  char **v = NULL;
  size_t n = 0;
  int r = 0;
  if (d == NULL)
    return sbx_error_sys (err, "export: read `%s`", rel);
  while ((de = readdir (d)))
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      {
        v = xrealloc (v, (n + 1) * sizeof *v);
        v[n++] = xstrdup (de->d_name);
      }
  closedir (d);
  if (n)
    qsort (v, n, sizeof *v, cmp_names);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *p = xasprintf ("%s/%s", rel, v[i]);
      if (r == 0)
        r = export_entry (t, dfd, v[i], p, err);
      free (v[i]);
    }
  free (v);
  return r;
}

int
sbx_fs_snapshot_export_fd (int snapfd, int out_fd, sbx_error **err)
{
  struct tw t = { .fd = out_fd };
  static const char zero[2 * BLOCK];
  struct stat st;
  int r = export_entry (&t, snapfd, "manifest.json", "manifest.json", err);
  if (r == 0)
    r = export_entry (&t, snapfd, "tree", "tree", err);
  if (r == 0 && fstatat (snapfd, "process", &st, AT_SYMLINK_NOFOLLOW) == 0)
    r = export_entry (&t, snapfd, "process", "process", err);
  if (r == 0)
    r = put (out_fd, zero, sizeof zero, err);
  for (size_t i = 0; i < t.nlinks; i++)
    free (t.links[i].path);
  free (t.links);
  return r;
}
