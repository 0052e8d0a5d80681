/* cgroup/files.c - file helpers on one hierarchy's cgroup directory (open,
 * read, write, mkdir, remove) and the pid walks (collect, signal) both
 * backends share.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* --------------------------------------------------------- file helpers */

int
sbx_cg_open (sbx_cg_hier *h, sbx_error **err)
{
  if (h->fd >= 0)
    return 0;
  h->fd = open (h->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (h->fd < 0)
    return sbx_error_sys (err, "open cgroup `%s`", h->dir);
  return 0;
}

bool
sbx_cg_exists (sbx_cg_hier *h, const char *file)
{
  if (sbx_cg_open (h, NULL) < 0)
    return false;
  return faccessat (h->fd, file, F_OK, 0) == 0;
}

int
sbx_cg_write (sbx_cg_hier *h, const char *file, const char *value, const char *field, sbx_error **err)
{
  cleanup_close int fd = -1;
  size_t len = strlen (value);
  ssize_t r;

  if (sbx_cg_open (h, err) < 0)
    return -1;
  fd = openat (h->fd, file, O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      do
        r = write (fd, value, len);
      while (r < 0 && errno == EINTR);
      if (r >= 0 && (size_t)r != len)
        errno = EIO;
      if (r >= 0 && (size_t)r == len)
        return 0;
    }
  if (field)
    return sbx_error_sys (err, "linux.resources.%s: write %s = %s", field, file, value);
  return sbx_error_sys (err, "write %s/%s = %s", h->dir, file, value);
}

int
sbx_cg_writef (sbx_cg_hier *h, const char *file, const char *field, sbx_error **err, const char *fmt, ...)
{
  cleanup_free char *v = NULL;
  va_list ap;
  va_start (ap, fmt);
  v = xvasprintf (fmt, ap);
  va_end (ap);
  return sbx_cg_write (h, file, v, field, err);
}

int
sbx_cg_read_at (int dirfd, const char *file, char **out, sbx_error **err)
{
  cleanup_close int fd = openat (dirfd, file, O_RDONLY | O_CLOEXEC);
  char *s = NULL;
  size_t len = 0;

  if (fd < 0)
    return sbx_error_sys (err, "open %s", file);
  if (sbx_read_fd (fd, 0, &s, &len, err) < 0)
    return sbx_error_wrap (err, "read %s", file);
  while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
    s[--len] = '\0';
  *out = s;
  return 0;
}

int
sbx_cg_read (sbx_cg_hier *h, const char *file, char **out, sbx_error **err)
{
  if (sbx_cg_open (h, err) < 0)
    return -1;
  if (sbx_cg_read_at (h->fd, file, out, err) < 0)
    return sbx_error_wrap (err, "cgroup `%s`", h->dir);
  return 0;
}

int
sbx_cg_read_keyed (sbx_cg_hier *h, const char *file, const char *key, long long *value, sbx_error **err)
{
  cleanup_free char *s = NULL;
  size_t kl = strlen (key);

  if (sbx_cg_read (h, file, &s, err) < 0)
    return -1;
  for (char *l = s; l && *l;)
    {
      char *nl = strchr (l, '\n');
      if (nl)
        *nl = '\0';
      if (strncmp (l, key, kl) == 0 && l[kl] == ' ')
        {
          if (sbx_parse_int64 (l + kl + 1, value) < 0)
            return sbx_error_set (err, EINVAL, "%s/%s: bad value for `%s`", h->dir, file, key);
          return 0;
        }
      l = nl ? nl + 1 : NULL;
    }
  return sbx_error_set (err, ENOENT, "%s/%s: no `%s` entry", h->dir, file, key);
}

int
sbx_cg_mkdir (sbx_cg_hier *h, int (*level) (const char *parent, const char *dir, sbx_error **err),
              sbx_error **err)
{
  size_t ml = strlen (h->mountpoint);
  cleanup_free char *cur = xstrdup (h->dir);
  char *p = cur + ml;

  if (strncmp (h->dir, h->mountpoint, ml) != 0)
    return sbx_error_set (err, EINVAL, "cgroup `%s` is not below `%s`", h->dir, h->mountpoint);
  while (*p == '/')
    {
      char *next = strchr (p + 1, '/');
      if (next)
        *next = '\0';
      if (mkdir (cur, 0755) == 0)
        {
          h->created = next == NULL;
          if (h->made_from == 0)
            h->made_from = strlen (cur);
        }
      else if (errno != EEXIST)
        return sbx_error_sys (err, "create cgroup `%s`", cur);
      if (level)
        {
          cleanup_free char *parent = xasprintf ("%.*s", (int)(p - cur), cur);
          if (level (parent, cur, err) < 0)
            return -1;
        }
      if (next == NULL)
        break;
      *next = '/';
      p = next;
    }
  return sbx_cg_open (h, err);
}

void
sbx_cg_undo_create (sbx_cgroup *cg)
{
  for (size_t i = 0; i < cg->n; i++)
    if (cg->h[i].created)
      {
        if (cg->h[i].fd >= 0)
          close (cg->h[i].fd);
        cg->h[i].fd = -1;
        if (rmdir (cg->h[i].dir) < 0 && errno != ENOENT)
          sbx_debug ("cgroup: cannot remove `%s` after a failed create: %m", cg->h[i].dir);
        cg->h[i].created = false;
      }
}

static void
append_pid (pid_t **pids, size_t *n, pid_t p)
{
  /* capacity: 16, then doubled each time n reaches a power of two */
  if (*n == 0 || (*n >= 16 && (*n & (*n - 1)) == 0))
    *pids = xrealloc (*pids, (*n ? *n * 2 : 16) * sizeof **pids);
  (*pids)[(*n)++] = p;
}

static int
collect_at (int dirfd, const char *where, int depth, pid_t **pids, size_t *n, sbx_error **err)
{
  cleanup_free char *procs = NULL;
  DIR *d;
  int lfd;
  struct dirent *de;

  sbx_error *e = NULL;

  if (sbx_cg_read_at (dirfd, "cgroup.procs", &procs, &e) < 0)
    {
      /* removed meanwhile once empty (systemd does that to a scope): no
         processes there */
      if (e->errno_ == ENODEV || e->errno_ == ENOENT)
        {
          sbx_error_free (e);
          return 0;
        }
      *err = e;
      return sbx_error_wrap (err, "cgroup `%s`", where);
    }
  for (char *p = procs, *end; *p; p = end)
    {
      long v = strtol (p, &end, 10);
      if (end == p)
        break;
      if (v > 0)
        append_pid (pids, n, (pid_t)v);
      while (*end == '\n')
        end++;
    }
  if (depth >= 32)
    return 0;
  lfd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lfd < 0 || (d = fdopendir (lfd)) == NULL)
    {
      if (lfd >= 0)
        close (lfd);
      return sbx_error_sys (err, "list cgroup `%s`", where);
    }
  while ((de = readdir (d)))
    {
      cleanup_close int sub = -1;
      cleanup_free char *subwhere = NULL;
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      sub = openat (dirfd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        continue; /* removed meanwhile */
      subwhere = xasprintf ("%s/%s", where, de->d_name);
      if (collect_at (sub, subwhere, depth + 1, pids, n, err) < 0)
        {
          closedir (d);
          return -1;
        }
    }
  closedir (d);
  return 0;
}

int
sbx_cg_collect_pids (sbx_cg_hier *h, pid_t **pids, size_t *n, sbx_error **err)
{
  if (sbx_cg_open (h, err) < 0)
    return -1;
  return collect_at (h->fd, h->dir, 0, pids, n, err);
}

/* Depth first; returns 0 or -errno.  */
static int
remove_tree (int parentfd, const char *name, int depth)
{
  int fd = openat (parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d;
  struct dirent *de;
  int r = 0;

  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  d = fdopendir (fd);
  if (d == NULL)
    {
      r = -errno;
      close (fd);
      return r;
    }
  while (depth < 32 && (de = readdir (d)))
    if (de->d_type == DT_DIR && strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      {
        r = remove_tree (dirfd (d), de->d_name, depth + 1);
        if (r < 0)
          break;
      }
  closedir (d);
  if (r < 0)
    return r;
  if (unlinkat (parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -errno;
  return 0;
}

int
sbx_cg_remove (sbx_cg_hier *h, sbx_error **err)
{
  cleanup_free char *parent = xstrdup (h->dir);
  cleanup_close int pfd = -1;
  char *slash = strrchr (parent, '/');
  long long deadline = sbx_now_ms () + SBX_CG_RMDIR_TIMEOUT_MS;
  int r;

  if (h->fd >= 0)
    {
      close (h->fd);
      h->fd = -1;
    }
  if (slash == NULL || slash == parent)
    return sbx_error_set (err, EINVAL, "refusing to remove cgroup `%s`", h->dir);
  *slash = '\0';
  pfd = open (parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0)
    return errno == ENOENT ? 0 : sbx_error_sys (err, "open `%s`", parent);
  for (;;)
    {
      r = remove_tree (pfd, slash + 1, 0);
      if (r == 0)
        return 0;
      if (r != -EBUSY || sbx_now_ms () > deadline)
        return sbx_error_set (err, -r, "remove cgroup `%s`", h->dir);
      sbx_cg_sleep_ms (10);
    }
}

static int
cmp_pid (const void *a, const void *b)
{
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

int
sbx_cgroup_pids (sbx_cgroup *cg, pid_t **pids, size_t *n, sbx_error **err)
{
  pid_t *v = NULL;
  size_t k = 0, u = 0;

  for (size_t i = 0; i < cg->n; i++)
    {
      if (cg->h[i].fd < 0 && access (cg->h[i].dir, F_OK) < 0 && errno == ENOENT)
        continue; /* this hierarchy's cgroup is gone already */
      {
        sbx_error *e = NULL;
        if (sbx_cg_collect_pids (&cg->h[i], &v, &k, &e) < 0)
          {
            /* removed under our open fd: systemd takes away a scope's
               cgroups once its last process is gone */
            if (e && e->errno_ == ENOENT)
              {
                sbx_error_free (e);
                continue;
              }
            free (v);
            if (err)
              *err = e;
            else
              sbx_error_free (e);
            return -1;
          }
      }
    }
  if (k)
    qsort (v, k, sizeof *v, cmp_pid);
  for (size_t i = 0; i < k; i++)
    if (u == 0 || v[u - 1] != v[i])
      v[u++] = v[i];
  *pids = v;
  *n = u;
  return 0;
}

int
sbx_cg_signal_all (sbx_cgroup *cg, int signo, size_t *seen, sbx_error **err)
{
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  pid_t self = getpid ();

  if (sbx_cgroup_pids (cg, &pids, &n, err) < 0)
    return -1;
  *seen = 0;
  for (size_t i = 0; i < n; i++)
    {
      if (pids[i] == self)
        continue; /* never ourselves, even if we sit in the cgroup */
      (*seen)++;
      if (kill (pids[i], signo) < 0 && errno != ESRCH)
        return sbx_error_sys (err, "kill %d with signal %d", (int)pids[i], signo);
    }
  return 0;
}
