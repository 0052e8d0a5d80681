/* tar_import.c - read a snapshot's pax tar stream (tar.c describes the
 * format) into a directory, every path resolved beneath it without
 * following a symlink; and the export/import entry points.  */
#include <config.h>
#include "fs/fs.h"
#include "fs/fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "state/state.h"

#define BLOCK 512
#define MAX_PAX (16u << 20)

struct xattr
{
  char *name, *value;
  size_t len;
};

struct pending
{
  char *path, *linkpath, *sparse_name;
  long long realsize;
  long long size; /* pax "size", or -1 */
  bool sparse;
  struct xattr *x;
  size_t nx;
};

static void
pending_clear (struct pending *p)
{
  free (p->path);
  free (p->linkpath);
  free (p->sparse_name);
  for (size_t i = 0; i < p->nx; i++)
    {
      free (p->x[i].name);
      free (p->x[i].value);
    }
  free (p->x);
  memset (p, 0, sizeof *p);
  p->realsize = -1;
  p->size = -1;
}

static char *
dupn (const char *s, size_t n)
{
  char *r = xmalloc0 (n + 1);
  memcpy (r, s, n);
  return r;
}

static int
on_record (void *data, const char *key, size_t klen, const char *val, size_t vlen, sbx_error **err)
{
  struct pending *p = data;
  cleanup_free char *k = dupn (key, klen);
  if (strcmp (k, "size") == 0)
    {
      cleanup_free char *v = dupn (val, vlen);
      if (sbx_parse_int64 (v, &p->size) < 0 || p->size < 0)
        return sbx_error_set (err, EBADMSG, "tar: bad pax size `%s`", v);
    }
  else if (strcmp (k, "path") == 0)
    free (p->path), p->path = dupn (val, vlen);
  else if (strcmp (k, "linkpath") == 0)
    free (p->linkpath), p->linkpath = dupn (val, vlen);
  else if (strcmp (k, "GNU.sparse.name") == 0)
    free (p->sparse_name), p->sparse_name = dupn (val, vlen);
  else if (strcmp (k, "GNU.sparse.major") == 0)
    {
      if (vlen != 1 || val[0] != '1')
        return sbx_error_set (err, ENOTSUP, "tar: only GNU sparse format 1.0 is read");
      p->sparse = true;
    }
  else if (strcmp (k, "GNU.sparse.realsize") == 0)
    {
      cleanup_free char *v = dupn (val, vlen);
      if (sbx_parse_int64 (v, &p->realsize) < 0 || p->realsize < 0)
        return sbx_error_set (err, EBADMSG, "tar: bad GNU.sparse.realsize `%s`", v);
    }
  else if (sbx_has_prefix (k, "SCHILY.xattr."))
    {
      p->x = xrealloc (p->x, (p->nx + 1) * sizeof *p->x);
      p->x[p->nx].name = xstrdup (k + strlen ("SCHILY.xattr."));
      p->x[p->nx].value = dupn (val, vlen);
      p->x[p->nx++].len = vlen;
    }
  /* Other keys (mtime, atime, ...) carry nothing the snapshot keeps.  */
  return 0;
}

static int
get (int fd, void *buf, size_t len, sbx_error **err)
{
  ssize_t n = sbx_read_all (fd, buf, len);
  if (n < 0)
    return sbx_error_sys (err, "import: read");
  if ((size_t)n != len)
    return sbx_error_set (err, EBADMSG, "import: the stream ends early (truncated)");
  return 0;
}

static int
skip_pad (int fd, unsigned long long size, sbx_error **err)
{
  char buf[BLOCK];
  size_t r = size % BLOCK;
  return r ? get (fd, buf, BLOCK - r, err) : 0;
}

/* The parent directory of path under rootfd (every component a real
   directory, created as needed) and the last name.  */
static int
open_parent (int rootfd, const char *path, char **base, sbx_error **err)
{
  cleanup_free char *p = xstrdup (path);
  char *save = NULL, *c, *next;
  int fd = dup (rootfd);

  if (fd < 0)
    return sbx_error_sys (err, "dup");
  if (p[0] == '/' || p[0] == '\0')
    {
      close (fd);
      return sbx_error_set (err, EINVAL, "import: path `%s` is not relative", path);
    }
  c = strtok_r (p, "/", &save);
  while (c)
    {
      next = strtok_r (NULL, "/", &save);
      if (strcmp (c, ".") == 0 || strcmp (c, "..") == 0)
        {
          close (fd);
          return sbx_error_set (err, EINVAL, "import: path `%s` has a `%s` component", path, c);
        }
      if (next == NULL)
        {
          *base = xstrdup (c);
          return fd;
        }
      {
        int sub = openat (fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close (fd);
        if (sub < 0)
          return sbx_error_set (err, errno, "import: `%s`: parent `%s` is not a directory of the archive",
                                path, c);
        fd = sub;
      }
      c = next;
    }
  close (fd);
  return sbx_error_set (err, EINVAL, "import: empty path");
}

/* Which part of a snapshot path is in: "tree", "process" (a process
   image), "" for manifest.json, NULL for anything else.  */
static const char *
part_of (const char *path)
{
  static const char *const parts[] = { "tree", "process", NULL };
  if (strcmp (path, "manifest.json") == 0)
    return "";
  for (const char *const *p = parts; *p; p++)
    {
      size_t l = strlen (*p);
      if (strncmp (path, *p, l) == 0 && (path[l] == '\0' || path[l] == '/'))
        return *p;
    }
  return NULL;
}

static int
write_sparse (int in, int out, unsigned long long size, long long realsize, sbx_error **err)
{
  /* The map: count, then offset and length lines, padded to a block.  */
  char blk[BLOCK], line[32];
  size_t li = 0, bi = BLOCK, used = 0;
  long long nums[2], count = -1, got = 0, total = 0;
  int k = 0;
  cleanup_free long long *map = NULL;
  char buf[1 << 16];

  for (;;)
    {
      if (bi == BLOCK)
        {
          if (get (in, blk, BLOCK, err) < 0)
            return -1;
          used += BLOCK;
          bi = 0;
        }
      char ch = blk[bi++];
      if (ch != '\n')
        {
          if (li + 1 >= sizeof line)
            return sbx_error_set (err, EBADMSG, "import: bad sparse map");
          line[li++] = ch;
          continue;
        }
      line[li] = '\0';
      li = 0;
      if (count < 0)
        {
          if (sbx_parse_int64 (line, &count) < 0 || count < 0 || count > (1 << 20))
            return sbx_error_set (err, EBADMSG, "import: bad sparse map");
          map = xmalloc0 ((count + 1) * 2 * sizeof *map);
        }
      else
        {
          if (sbx_parse_int64 (line, &nums[k]) < 0 || nums[k] < 0)
            return sbx_error_set (err, EBADMSG, "import: bad sparse map");
          map[2 * got + k] = nums[k];
          if (++k == 2)
            k = 0, got++;
        }
      if (count >= 0 && got == count)
        break;
    }
  for (long long i = 0; i < count; i++)
    {
      long long off = map[2 * i], len = map[2 * i + 1];
      total += len;
      if (off + len > realsize || used + total > size)
        return sbx_error_set (err, EBADMSG, "import: sparse map beyond the file");
      while (len > 0)
        {
          size_t want = len < (long long)sizeof buf ? (size_t)len : sizeof buf;
          if (get (in, buf, want, err) < 0)
            return -1;
          if (pwrite (out, buf, want, off) != (ssize_t)want)
            return sbx_error_sys (err, "import: write");
          off += want, len -= want;
        }
    }
  if (used + total != size)
    return sbx_error_set (err, EBADMSG, "import: sparse data does not fill the entry");
  if (ftruncate (out, realsize) < 0)
    return sbx_error_sys (err, "import: set size");
  return skip_pad (in, size, err);
}

static int
extract (int in, int rootfd, sbx_tar_entry *e, struct pending *p, sbx_error **err)
{
  const char *path = p->sparse_name ? p->sparse_name : p->path ? p->path : e->name;
  cleanup_free char *base = NULL;
  cleanup_close int pfd = -1;
  const char *link = p->linkpath ? p->linkpath : e->linkname;
  const char *part = part_of (path);
  char xp[64 + NAME_MAX];

  if (part == NULL)
    return sbx_error_set (err, EINVAL, "import: `%s`: not part of a snapshot (manifest.json, tree/)", path);
  /* A CRIU image is the processes' whole state (credentials, capabilities,
     seccomp, namespaces, the mounts CRIU is told to bind) and its log and
     work files: restoring one from elsewhere would run what its author
     wrote, not what the container's config says.  Its manifest proves
     nothing (the author computed it).  Only a snapshot taken here has
     one.  */
  if (strcmp (part, "process") == 0)
    return sbx_error_set (err, EPERM,
                          "import: `%s`: a process image (process/) is not imported: a CRIU image from "
                          "another machine or container would be restored as its author wrote it; "
                          "import the files only (an export of a snapshot taken without --with-process)",
                          path);
  if (strcmp (path, "tree") == 0)
    pfd = dup (rootfd), base = xstrdup ("tree");
  else
    pfd = open_parent (rootfd, path, &base, err);
  if (pfd < 0)
    return -1;
  switch (e->type)
    {
    case '5':
      if (mkdirat (pfd, base, 0700) < 0)
        return sbx_error_sys (err, "import: mkdir `%s`", path);
      break;
    case '2':
      if (symlinkat (link, pfd, base) < 0)
        return sbx_error_sys (err, "import: symlink `%s`", path);
      break;
    case '1':
      {
        cleanup_free char *tbase = NULL;
        cleanup_close int tpfd = -1;
        const char *lpart = part_of (link);
        if (lpart == NULL || *lpart == '\0' || strcmp (part, lpart) != 0 || strcmp (link, lpart) == 0)
          return sbx_error_set (err, EINVAL, "import: hard link `%s` to `%s` outside %s/", path, link,
                                *part ? part : "tree");
        tpfd = open_parent (rootfd, link, &tbase, err);
        if (tpfd < 0)
          return -1;
        if (linkat (tpfd, tbase, pfd, base, 0) < 0)
          return sbx_error_sys (err, "import: link `%s` to `%s`", path, link);
        return 0;
      }
    case '3':
    case '4':
    case '6':
      {
        mode_t t = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;
        if (mknodat (pfd, base, t | 0600, makedev (e->devmajor, e->devminor)) < 0)
          return sbx_error_sys (err, "import: mknod `%s`", path);
        break;
      }
    case '0':
    case '7':
      {
        cleanup_close int out
            = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        char buf[1 << 16];
        unsigned long long left = e->size;
        if (out < 0)
          return sbx_error_sys (err, "import: create `%s`", path);
        if (p->sparse)
          {
            if (p->realsize < 0)
              return sbx_error_set (err, EBADMSG, "import: `%s`: sparse without realsize", path);
            if (write_sparse (in, out, e->size, p->realsize, err) < 0)
              return sbx_error_wrap (err, "`%s`", path);
          }
        else
          {
            while (left > 0)
              {
                size_t want = left < sizeof buf ? left : sizeof buf;
                if (get (in, buf, want, err) < 0 || sbx_write_all (out, buf, want) < 0)
                  return sbx_error_wrap (err, "`%s`", path);
                left -= want;
              }
            if (skip_pad (in, e->size, err) < 0)
              return -1;
          }
        break;
      }
    default:
      return sbx_error_set (err, ENOTSUP, "import: `%s`: entry type `%c` is not supported", path, e->type);
    }
  snprintf (xp, sizeof xp, "/proc/self/fd/%d/%s", pfd, base);
  if (fchownat (pfd, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_sys (err, "import: `%s`: owner", path);
  for (size_t i = 0; i < p->nx; i++)
    {
      /* What a snapshot never holds, and file capabilities: a stream
         says nothing trustworthy about the config they were taken under
         (docs/design.md).  */
      if (!sbx_fs_xattr_kept (p->x[i].name, false))
        return sbx_error_set (err, EPERM,
                              "import: `%s`: xattr `%s` is not imported (only user.*, POSIX ACLs and the "
                              "overlay's opaque/whiteout/redirect marks are; file capabilities come back "
                              "only from a snapshot taken in place)",
                              path, p->x[i].name);
      if (lsetxattr (xp, p->x[i].name, p->x[i].value, p->x[i].len, 0) < 0)
        return sbx_error_sys (err, "import: `%s`: set xattr `%s`", path, p->x[i].name);
    }
  if (e->type != '2' && fchmodat (pfd, base, e->mode & 07777, 0) < 0)
    return sbx_error_sys (err, "import: `%s`: mode", path);
  return 0;
}

int
sbx_fs_tar_extract (int in, int rootfd, sbx_error **err)
{
  struct pending p = { .realsize = -1, .size = -1 };
  unsigned char h[BLOCK];
  int r = 0;

  for (;;)
    {
      static const unsigned char zero[BLOCK];
      sbx_tar_entry e;
      if (get (in, h, BLOCK, err) < 0)
        {
          r = -1;
          break;
        }
      if (memcmp (h, zero, BLOCK) == 0)
        break;
      if (sbx_fs_tar_parse_header (h, &e, err) < 0)
        {
          r = sbx_error_wrap (err, "import");
          break;
        }
      if (e.type == 'x' || e.type == 'g')
        {
          cleanup_free char *recs = NULL;
          if (e.size > MAX_PAX)
            {
              r = sbx_error_set (err, EBADMSG, "import: pax header too large");
              break;
            }
          recs = xmalloc0 (e.size + 1);
          if (get (in, recs, e.size, err) < 0 || skip_pad (in, e.size, err) < 0
              || (e.type == 'x' && sbx_fs_pax_parse (recs, e.size, on_record, &p, err) < 0))
            {
              r = -1;
              break;
            }
          continue;
        }
      if (p.size >= 0)
        e.size = (unsigned long long)p.size;
      r = extract (in, rootfd, &e, &p, err);
      pending_clear (&p);
      if (r < 0)
        break;
    }
  pending_clear (&p);
  return r;
}

/* ------------------------------------------------------------ entry points */

static void
state_freep (sbx_state **s)
{
  sbx_state_free (*s);
}

int
sbx_fs_snapshot_export (const char *root, const char *id, const char *name, int out_fd, sbx_error **err)
{
  __attribute__ ((cleanup (state_freep))) sbx_state *s = NULL;
  cleanup_close int snapsfd = -1, snapfd = -1;

  if (sbx_fs_snapshot_name_validate (name, err) < 0 || sbx_state_open (root, id, &s, err) < 0)
    return -1;
  snapsfd = sbx_fs_snapshot_open_store (s->dir_fd, false, NULL);
  snapfd = snapsfd >= 0 ? openat (snapsfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  if (snapfd < 0)
    return sbx_error_set (err, ENOENT, "container \"%s\" has no snapshot \"%s\"", id, name);
  if (sbx_fs_snapshot_verify_dir (snapfd, name, true, NULL, err) < 0
      || sbx_fs_snapshot_export_fd (snapfd, out_fd, err) < 0)
    return sbx_error_wrap (err, "container \"%s\": export", id);
  return 0;
}

int
sbx_fs_snapshot_import (const char *root, const char *id, const char *name, int in_fd, sbx_error **err)
{
  __attribute__ ((cleanup (state_freep))) sbx_state *s = NULL;
  cleanup_close int snapsfd = -1, tfd = -1;
  cleanup_free char *tmp = NULL;
  struct stat st;
  int r;

  if (sbx_fs_snapshot_name_validate (name, err) < 0 || sbx_state_open (root, id, &s, err) < 0)
    return -1;
  snapsfd = sbx_fs_snapshot_open_store (s->dir_fd, true, err);
  if (snapsfd < 0)
    return -1;
  if (fstatat (snapsfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return sbx_error_set (err, EEXIST, "container \"%s\": snapshot \"%s\" already exists", id, name);
  if (sbx_fs_mkdtemp_at (snapsfd, ".tmp-import-", &tmp, err) < 0)
    return -1;
  tfd = openat (snapsfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  r = tfd < 0 ? sbx_error_sys (err, "open import dir") : sbx_fs_tar_extract (in_fd, tfd, err);
  if (r == 0)
    r = sbx_fs_snapshot_verify_dir (tfd, name, true, NULL, err);
  if (r == 0)
    r = sbx_fs_snapshot_commit (snapsfd, tmp, name, err);
  if (r < 0)
    {
      sbx_remove_tree_at (snapsfd, tmp);
      return sbx_error_wrap (err, "container \"%s\": import snapshot \"%s\"", id, name);
    }
  return 0;
}
