/* fs/resolve.c - resolution of a path inside the rootfs without following
 * a symlink out of it (openat2 RESOLVE_IN_ROOT, else an O_NOFOLLOW walk).  */
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


/* ---- resolution inside the rootfs ---- */

struct fdstack
{
  int *fd;
  size_t n, cap;
};

static void
fdstack_push (struct fdstack *s, int fd)
{
  if (s->n == s->cap)
    {
      s->cap = s->cap ? s->cap * 2 : 16;
      s->fd = xrealloc (s->fd, s->cap * sizeof *s->fd);
    }
  s->fd[s->n++] = fd;
}

static void
fdstack_pop (struct fdstack *s)
{
  close (s->fd[--s->n]);
}

static void
fdstack_free (struct fdstack *s)
{
  while (s->n)
    fdstack_pop (s);
  free (s->fd);
}

/* The fallback when openat2 is missing, and the only way to create missing
   components: walk one component at a time with O_NOFOLLOW, reading each
   symlink and splicing its target into the rest of the path; an absolute
   target or ".." never climbs above rootfd.  A dangling symlink as the last
   component therefore creates its target (inside the root).  */
static int
walk_in_root (int rootfd, const char *path, int create, sbx_error **err)
{
  struct fdstack st = { 0 };
  cleanup_free char *todo = xstrdup (path);
  size_t pos = 0;
  int links = 0, r = -1, fd;

  fd = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open root");
  fdstack_push (&st, fd);
  for (;;)
    {
      cleanup_free char *name = NULL;
      size_t len, rest;
      bool last;
      struct stat sb;
      int dir = st.fd[st.n - 1];

      while (todo[pos] == '/')
        pos++;
      if (todo[pos] == '\0')
        break;
      len = strcspn (todo + pos, "/");
      name = xasprintf ("%.*s", (int) len, todo + pos);
      pos += len;
      for (rest = pos; todo[rest] == '/'; rest++)
        ;
      last = todo[rest] == '\0';

      if (strcmp (name, ".") == 0)
        continue;
      if (strcmp (name, "..") == 0)
        {
          if (st.n > 1)
            fdstack_pop (&st);
          continue;
        }
      fd = openat (dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create != SBX_RESOLVE_EXISTING)
        {
          if (!last || create == SBX_RESOLVE_MKDIR)
            {
              if (mkdirat (dir, name, 0755) < 0 && errno != EEXIST)
                {
                  r = sbx_error_sys (err, "mkdir %s", path);
                  goto out;
                }
            }
          else
            {
              int f = openat (dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
              if (f < 0 && errno != EEXIST)
                {
                  r = sbx_error_sys (err, "create %s", path);
                  goto out;
                }
              if (f >= 0)
                close (f);
            }
          fd = openat (dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
      if (fd < 0)
        {
          r = sbx_error_sys (err, "open %s", path);
          goto out;
        }
      if (fstat (fd, &sb) < 0)
        {
          r = sbx_error_sys (err, "stat %s", path);
          close (fd);
          goto out;
        }
      if (S_ISLNK (sb.st_mode))
        {
          char target[PATH_MAX];
          ssize_t n = readlinkat (fd, "", target, sizeof target - 1);
          char *next;

          close (fd);
          if (n < 0 || ++links > 40)
            {
              r = sbx_error_set (err, n < 0 ? errno : ELOOP, "resolve %s", path);
              goto out;
            }
          target[n] = '\0';
          if (target[0] == '/')
            while (st.n > 1)
              fdstack_pop (&st);
          next = xasprintf ("%s/%s", target, todo + pos);
          free (todo);
          todo = next;
          pos = 0;
          continue;
        }
      if (!last && !S_ISDIR (sb.st_mode))
        {
          close (fd);
          r = sbx_error_set (err, ENOTDIR, "open %s", path);
          goto out;
        }
      fdstack_push (&st, fd);
    }
  r = st.fd[--st.n];
out:
  fdstack_free (&st);
  return r;
}

int
sbx_fs_root_resolve (int rootfd, const char *path, int create, sbx_error **err)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  const char *rel = path;
  int fd = -1;

  while (*rel == '/')
    rel++;
  if (*rel == '\0')
    rel = ".";
  /* EAGAIN: a concurrent rename raced the lookup; retry a few times.  */
  for (int i = 0; i < 8; i++)
    {
      fd = syscall (SYS_openat2, rootfd, rel, &how, sizeof how);
      if (fd >= 0 || errno != EAGAIN)
        break;
    }
  if (fd >= 0)
    return fd;
  if (errno == ENOENT && create == SBX_RESOLVE_EXISTING)
    return sbx_error_sys (err, "open %s", path);
  if (errno != ENOENT && errno != ENOSYS && errno != E2BIG && errno != EAGAIN)
    return sbx_error_sys (err, "open %s", path);
  return walk_in_root (rootfd, path, create, err);
}
