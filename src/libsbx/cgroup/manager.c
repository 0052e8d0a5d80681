/* cgroup/manager.c - host mode detection, discovery of the hierarchies and of the
 * caller's own cgroups, linux.cgroupsPath resolution, unit conversions,
 * shared file helpers and the dispatch to the v1 / v2 backends.
 *
 * cgroupsPath (see also sbxrun(1)):
 *   "/a/b"   that path below the root of every hierarchy;
 *   "a/b"    below the calling process's own cgroup in every hierarchy;
 *   absent   "<own cgroup>/sbxrun/<id>".
 * The default lands below our own cgroup (not at the hierarchy root) so that
 * a runtime started inside a delegated or supervisor-owned cgroup keeps its
 * containers inside it: creating cgroups at the root of a hierarchy we were
 * not given is both rude and, on locked-down hosts, not permitted.  "Own
 * cgroup" is read per hierarchy from /proc/self/cgroup, so on v1 hosts the
 * same cgroupsPath can resolve to different paths in different hierarchies.
 *
 * The saved form (sbx_cgroup_describe) records each hierarchy's path, so a
 * later `delete` from a process in another cgroup finds the same cgroups.  */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define DESCRIBE_MAGIC "sbxrun-cgroup 1"

/* ------------------------------------------------------------------ misc */

bool
sbx_cg_has_word (const char *list, const char *word)
{
  size_t wl = strlen (word);
  const char *p = list;

  if (list == NULL || wl == 0)
    return false;
  while (*p)
    {
      size_t l;
      p += strspn (p, " ,\n\t");
      l = strcspn (p, " ,\n\t");
      if (l == wl && memcmp (p, word, wl) == 0)
        return true;
      p += l;
    }
  return false;
}

long long
sbx_cg_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sbx_cg_sleep_ms (int ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static bool
bad_chars (const char *s)
{
  return s == NULL || strpbrk (s, "\t\n") != NULL;
}

/* ------------------------------------------------------- text discovery */

/* mountinfo escapes space, tab, newline and backslash as \ooo.  */
static void
unescape_octal (char *s)
{
  char *w = s;
  for (char *r = s; *r; r++)
    {
      if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0'
          && r[3] <= '7')
        {
          *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
          r += 3;
        }
      else
        *w++ = *r;
    }
  *w = '\0';
}

typedef struct
{
  char *root, *mountpoint, *fstype, *superopts;
} mi_entry;

/* Split one mountinfo line in place.  */
static bool
parse_mountinfo_line (char *line, mi_entry *e)
{
  char *f[6] = { 0 };
  char *save = NULL, *tok;
  int i = 0;

  for (tok = strtok_r (line, " ", &save); tok && i < 6; tok = strtok_r (NULL, " ", &save))
    f[i++] = tok;
  if (i < 6)
    return false;
  e->root = f[3];
  e->mountpoint = f[4];
  /* optional fields until the lone "-" */
  while (tok && strcmp (tok, "-") != 0)
    tok = strtok_r (NULL, " ", &save);
  if (tok == NULL)
    return false;
  e->fstype = strtok_r (NULL, " ", &save);
  if (e->fstype == NULL || strtok_r (NULL, " ", &save) == NULL)
    return false;
  e->superopts = strtok_r (NULL, " ", &save);
  if (e->superopts == NULL)
    return false;
  unescape_octal (e->root);
  unescape_octal (e->mountpoint);
  return true;
}

/* Every controller of the comma list `ctrls` is among the mount options.  */
static bool
opts_cover (const char *superopts, const char *ctrls)
{
  cleanup_free char *dup = xstrdup (ctrls);
  char *save = NULL;
  bool any = false;
  for (char *c = strtok_r (dup, ",", &save); c; c = strtok_r (NULL, ",", &save))
    {
      if (!sbx_cg_has_word (superopts, c))
        return false;
      any = true;
    }
  return any;
}

static bool
under (const char *path, const char *dir)
{
  size_t l = strlen (dir);
  return strncmp (path, dir, l) == 0 && (path[l] == '/' || path[l] == '\0');
}

/* Find the mount for one /proc/self/cgroup line; prefer mounts below root.  */
static bool
find_mount (char **lines, size_t n, sbx_cgroup_mode mode, const char *root, const char *ctrls,
            mi_entry *found)
{
  cleanup_free char *unified_at = xasprintf ("%s/unified", root);
  bool have = false;

  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *dup = xstrdup (lines[i]);
      mi_entry e;
      bool match;

      if (!parse_mountinfo_line (dup, &e))
        continue;
      if (*ctrls == '\0')
        match = strcmp (e.fstype, "cgroup2") == 0
                && strcmp (e.mountpoint, mode == SBX_CGROUP_V2 ? root : unified_at) == 0;
      else
        match = strcmp (e.fstype, "cgroup") == 0 && opts_cover (e.superopts, ctrls);
      if (!match || bad_chars (e.mountpoint) || bad_chars (e.root))
        continue;
      if (!have || (!under (found->mountpoint, root) && under (e.mountpoint, root)))
        {
          if (have)
            {
              free (found->root);
              free (found->mountpoint);
            }
          found->root = xstrdup (e.root);
          found->mountpoint = xstrdup (e.mountpoint);
          have = true;
        }
    }
  return have;
}

static char **
split_lines (const char *text, size_t *n)
{
  cleanup_free char *dup = xstrdup (text ? text : "");
  char **v = NULL, *save = NULL;
  size_t k = 0;
  for (char *l = strtok_r (dup, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      v = xrealloc (v, (k + 2) * sizeof *v);
      v[k++] = xstrdup (l);
      v[k] = NULL;
    }
  *n = k;
  return v ? v : xmalloc0 (sizeof (char *));
}

int
sbx_cg_hierarchies_from_text (sbx_cgroup_mode mode, const char *root, const char *proc_cgroup,
                              const char *mountinfo, sbx_cg_hier **out, size_t *n, sbx_error **err)
{
  size_t nlines = 0, nmi = 0, k = 0;
  cleanup_strv char **lines = split_lines (proc_cgroup, &nlines);
  cleanup_strv char **mi = split_lines (mountinfo, &nmi);
  sbx_cg_hier *h = NULL;

  if (mode != SBX_CGROUP_V1 && mode != SBX_CGROUP_V2)
    return sbx_error_set (err, ENOENT, "no cgroup file system at `%s`", root);
  for (size_t i = 0; i < nlines; i++)
    {
      char *c1 = strchr (lines[i], ':'), *c2;
      mi_entry m = { 0 };
      const char *ctrls;

      if (c1 == NULL || (c2 = strchr (c1 + 1, ':')) == NULL)
        {
          sbx_cg_hiers_free (h, k);
          return sbx_error_set (err, 0, "/proc/self/cgroup: malformed line `%s`", lines[i]);
        }
      *c1 = *c2 = '\0';
      ctrls = c1 + 1;
      if (c2[1] != '/' || bad_chars (c2 + 1))
        continue;
      if (*ctrls == '\0' && strcmp (lines[i], "0") != 0)
        continue; /* a named v1 hierarchy without controllers and name: ignore */
      if (mode == SBX_CGROUP_V2 && *ctrls != '\0')
        continue;
      if (!find_mount (mi, nmi, mode, root, ctrls, &m))
        {
          if (mode == SBX_CGROUP_V2)
            {
              /* statfs said cgroup2 but mountinfo does not show it (odd
                 mount namespaces): assume the whole hierarchy.  */
              m.root = xstrdup ("/");
              m.mountpoint = xstrdup (root);
            }
          else
            continue;
        }
      h = xrealloc (h, (k + 1) * sizeof *h);
      memset (&h[k], 0, sizeof h[k]);
      h[k].unified = *ctrls == '\0';
      h[k].controllers = xstrdup (ctrls);
      h[k].mountpoint = m.mountpoint;
      h[k].mount_root = m.root;
      h[k].own = xstrdup (c2 + 1);
      h[k].fd = -1;
      k++;
    }
  if (k == 0)
    return sbx_error_set (err, ENOENT, "no mounted cgroup hierarchy matches /proc/self/cgroup");
  if (mode == SBX_CGROUP_V2 && k != 1)
    {
      sbx_cg_hiers_free (h, k);
      return sbx_error_set (err, 0, "/proc/self/cgroup: more than one cgroup v2 entry");
    }
  *out = h;
  *n = k;
  return 0;
}

void
sbx_cg_hiers_free (sbx_cg_hier *h, size_t n)
{
  for (size_t i = 0; h && i < n; i++)
    {
      free (h[i].controllers);
      free (h[i].mountpoint);
      free (h[i].mount_root);
      free (h[i].own);
      free (h[i].path);
      free (h[i].dir);
      if (h[i].fd >= 0)
        close (h[i].fd);
    }
  free (h);
}

/* ---------------------------------------------------------- path logic */

static bool
is_systemd_form (const char *p)
{
  return p && *p && *p != '/' && strchr (p, ':') != NULL;
}

int
sbx_cg_resolve_path (const char *own, const char *cgroups_path, const char *id, bool systemd_cgroup,
                     char **out, sbx_error **err)
{
  cleanup_free char *joined = NULL;
  char *save = NULL, *w;
  size_t cap;
  cleanup_free char *res = NULL;

  if (systemd_cgroup)
    return sbx_error_set (err, 0, "linux.cgroupsPath `%s`: the systemd driver resolves it, not a path",
                          cgroups_path ? cgroups_path : "");
  if (is_systemd_form (cgroups_path))
    return sbx_error_set (err, EINVAL,
                          "linux.cgroupsPath `%s` is systemd's slice:prefix:name: it needs --systemd-cgroup",
                          cgroups_path);
  if (own == NULL || *own != '/')
    return sbx_error_set (err, 0, "invalid own cgroup `%s`", own ? own : "");
  if (cgroups_path == NULL || *cgroups_path == '\0')
    {
      if (id == NULL || *id == '\0' || strchr (id, '/') || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
        return sbx_error_set (err, 0, "linux.cgroupsPath: invalid container id `%s` for a cgroup name",
                              id ? id : "");
      joined = xasprintf ("%s/sbxrun/%s", own, id);
    }
  else if (*cgroups_path == '/')
    joined = xstrdup (cgroups_path);
  else
    joined = xasprintf ("%s/%s", own, cgroups_path);

  cap = strlen (joined) + 2;
  res = xmalloc0 (cap);
  w = res;
  for (char *c = strtok_r (joined, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      if (strcmp (c, ".") == 0 || strcmp (c, "..") == 0 || bad_chars (c))
        return sbx_error_set (err, 0, "linux.cgroupsPath: invalid component `%s` in `%s`", c,
                              cgroups_path ? cgroups_path : "");
      *w++ = '/';
      w = stpcpy (w, c);
    }
  if (w == res)
    return sbx_error_set (err, 0, "linux.cgroupsPath: `%s` resolves to the root cgroup",
                          cgroups_path ? cgroups_path : "");
  *out = steal_ptr (res);
  return 0;
}

int
sbx_cg_dir_for (const char *mountpoint, const char *mount_root, const char *path, char **out, sbx_error **err)
{
  size_t rl = strlen (mount_root);
  const char *rest;

  while (rl > 0 && mount_root[rl - 1] == '/')
    rl--;
  if (strncmp (path, mount_root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
    return sbx_error_set (err, 0, "cgroup `%s` is outside the cgroup mount `%s` (which shows `%s`)", path,
                          mountpoint, mount_root);
  rest = path + rl;
  while (*rest == '/')
    rest++;
  *out = *rest ? xasprintf ("%s/%s", mountpoint, rest) : xstrdup (mountpoint);
  return 0;
}

sbx_cg_hier *
sbx_cg_find_v1 (sbx_cgroup *cg, const char *controller)
{
  for (size_t i = 0; i < cg->n; i++)
    if (!cg->h[i].unified && sbx_cg_has_word (cg->h[i].controllers, controller))
      return &cg->h[i];
  return NULL;
}

sbx_cg_hier *
sbx_cg_unified (sbx_cgroup *cg)
{
  for (size_t i = 0; i < cg->n; i++)
    if (cg->h[i].unified)
      return &cg->h[i];
  return NULL;
}

const char *
sbx_cgroup_unified_dir (sbx_cgroup *cg, int *level)
{
  sbx_cg_hier *u = sbx_cg_unified (cg);
  int n = 0;

  if (u == NULL || u->dir == NULL || u->path == NULL)
    return NULL;
  for (const char *p = u->path; *p; p++)
    if (*p != '/' && (p == u->path || p[-1] == '/'))
      n++;
  *level = n;
  return u->dir;
}

sbx_cg_hier *
sbx_cg_find (sbx_cgroup *cg, const char *controller)
{
  sbx_cg_hier *h = sbx_cg_find_v1 (cg, controller), *u;
  cleanup_free char *path = NULL, *avail = NULL;

  if (h)
    return h;
  u = sbx_cg_unified (cg);
  if (u == NULL)
    return NULL;
  path = xasprintf ("%s/cgroup.controllers", u->mountpoint);
  if (sbx_read_file (path, 0, &avail, NULL, NULL) < 0)
    return NULL;
  return sbx_cg_has_word (avail, controller) ? u : NULL;
}

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
  if (vasprintf (&v, fmt, ap) < 0)
    abort ();
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
        h->created = next == NULL;
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

  if (sbx_cg_read_at (dirfd, "cgroup.procs", &procs, err) < 0)
    return sbx_error_wrap (err, "cgroup `%s`", where);
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
  long long deadline = sbx_cg_now_ms () + SBX_CG_RMDIR_TIMEOUT_MS;
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
      if (r != -EBUSY || sbx_cg_now_ms () > deadline)
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
      if (sbx_cg_collect_pids (&cg->h[i], &v, &k, err) < 0)
        {
          free (v);
          return -1;
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

/* ---------------------------------------------------------------- stats */

bool
sbx_cg_read_stat_map (sbx_cg_hier *h, const char *file, sbx_cgroup_stats *st)
{
  cleanup_free char *text = NULL;
  char *save = NULL;

  if (sbx_cg_read (h, file, &text, NULL) < 0)
    return false;
  for (char *l = strtok_r (text, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      char *sp = strchr (l, ' ');
      long long v;
      if (sp == NULL)
        continue;
      *sp = '\0';
      if (sbx_parse_int64 (sp + 1, &v) < 0 || v < 0)
        continue;
      st->memory_stat_keys = xrealloc (st->memory_stat_keys, (st->memory_stat_len + 2) * sizeof (char *));
      st->memory_stat_values
          = xrealloc (st->memory_stat_values, (st->memory_stat_len + 1) * sizeof (uint64_t));
      st->memory_stat_keys[st->memory_stat_len] = xstrdup (l);
      st->memory_stat_keys[st->memory_stat_len + 1] = NULL;
      st->memory_stat_values[st->memory_stat_len] = (uint64_t)v;
      st->memory_stat_len++;
    }
  return true;
}

uint64_t
sbx_cg_stat_value (const sbx_cgroup_stats *st, const char *key)
{
  for (size_t i = 0; i < st->memory_stat_len; i++)
    if (strcmp (st->memory_stat_keys[i], key) == 0)
      return st->memory_stat_values[i];
  return 0;
}

void
sbx_cg_blkio_add (sbx_cgroup_blkio_entry **v, size_t *n, uint64_t major, uint64_t minor, const char *op,
                  uint64_t value)
{
  *v = xrealloc (*v, (*n + 1) * sizeof **v);
  (*v)[*n] = (sbx_cgroup_blkio_entry){ major, minor, op, value };
  (*n)++;
}

char **
sbx_cg_hugepage_sizes (void)
{
  DIR *d = opendir ("/sys/kernel/mm/hugepages");
  struct dirent *de;
  char **v = xmalloc0 (sizeof *v);
  size_t n = 0;

  if (d == NULL)
    return v;
  while ((de = readdir (d)))
    {
      unsigned long long kb;
      char unit[8] = "";
      if (sscanf (de->d_name, "hugepages-%llukB", &kb) != 1 || kb == 0)
        continue;
      if (kb % (1024 * 1024) == 0)
        kb /= 1024 * 1024, strcpy (unit, "GB");
      else if (kb % 1024 == 0)
        kb /= 1024, strcpy (unit, "MB");
      else
        strcpy (unit, "KB");
      v = xrealloc (v, (n + 2) * sizeof *v);
      v[n++] = xasprintf ("%llu%s", kb, unit);
      v[n] = NULL;
    }
  closedir (d);
  return v;
}

void
sbx_cg_hugetlb_add (sbx_cgroup_stats *st, const char *size, uint64_t usage, uint64_t max_usage,
                    uint64_t failcnt)
{
  sbx_cgroup_hugetlb_stat *e;
  st->hugetlb = xrealloc (st->hugetlb, (st->hugetlb_len + 1) * sizeof *st->hugetlb);
  e = &st->hugetlb[st->hugetlb_len++];
  memset (e, 0, sizeof *e);
  snprintf (e->page_size, sizeof e->page_size, "%s", size);
  e->usage = usage;
  e->max_usage = max_usage;
  e->failcnt = failcnt;
}

void
sbx_cgroup_stats_release (sbx_cgroup_stats *st)
{
  if (st == NULL)
    return;
  free (st->cpu_percpu_ns);
  sbx_strv_free (st->memory_stat_keys);
  free (st->memory_stat_values);
  free (st->blkio_bytes);
  free (st->blkio_ios);
  free (st->hugetlb);
  memset (st, 0, sizeof *st);
}

/* ---------------------------------------------------------- OOM events */

struct sbx_cgroup_oom_watch
{
  int fd; /* eventfd (v1) or inotify (v2) */
  bool inotify;
  char *dir;     /* the memory cgroup's directory */
  uint64_t last; /* v2: oom_kill count seen so far */
};

static bool
oom_kill_count (const char *dir, uint64_t *out)
{
  cleanup_close int fd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *text = NULL;
  char *p;

  if (fd < 0 || sbx_cg_read_at (fd, "memory.events", &text, NULL) < 0)
    return false;
  for (p = text; p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
    if (strncmp (p, "oom_kill ", 9) == 0)
      {
        *out = strtoull (p + 9, NULL, 10);
        return true;
      }
  return false;
}

int
sbx_cgroup_oom_watch_open (sbx_cgroup *cg, sbx_cgroup_oom_watch **out, sbx_error **err)
{
  sbx_cg_hier *h = cg->mode == SBX_CGROUP_V2 ? &cg->h[0] : sbx_cg_find_v1 (cg, "memory");
  sbx_cgroup_oom_watch *w;

  if (h == NULL)
    return sbx_error_set (err, EOPNOTSUPP, "no memory controller: no OOM notifications");
  w = xmalloc0 (sizeof *w);
  w->fd = -1;
  w->dir = xstrdup (h->dir);
  if (cg->mode == SBX_CGROUP_V2)
    {
      cleanup_free char *file = xasprintf ("%s/memory.events", h->dir);
      w->inotify = true;
      if (!oom_kill_count (h->dir, &w->last))
        {
          sbx_cgroup_oom_watch_free (w);
          return sbx_error_set (err, EOPNOTSUPP,
                                "cgroup `%s` has no memory.events (memory controller not enabled): no OOM "
                                "notifications",
                                h->path);
        }
      w->fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
      if (w->fd < 0 || inotify_add_watch (w->fd, file, IN_MODIFY) < 0)
        {
          sbx_error_sys (err, "watch `%s`", file);
          sbx_cgroup_oom_watch_free (w);
          return -1;
        }
    }
  else
    {
      cleanup_free char *ctl = xasprintf ("%s/cgroup.event_control", h->dir);
      cleanup_free char *oc = xasprintf ("%s/memory.oom_control", h->dir);
      cleanup_close int ocfd = open (oc, O_RDONLY | O_CLOEXEC);
      cleanup_close int ctlfd = open (ctl, O_WRONLY | O_CLOEXEC);
      char line[64];
      int n;

      w->fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (w->fd < 0 || ocfd < 0 || ctlfd < 0)
        {
          sbx_error_sys (err, "register for OOM notifications of `%s`", h->dir);
          sbx_cgroup_oom_watch_free (w);
          return -1;
        }
      n = snprintf (line, sizeof line, "%d %d", w->fd, ocfd);
      if (write (ctlfd, line, n) != n)
        {
          sbx_error_sys (err, "register for OOM notifications in `%s`", ctl);
          sbx_cgroup_oom_watch_free (w);
          return -1;
        }
    }
  *out = w;
  return 0;
}

int
sbx_cgroup_oom_watch_fd (const sbx_cgroup_oom_watch *w)
{
  return w->fd;
}

int
sbx_cgroup_oom_read (sbx_cgroup_oom_watch *w, uint64_t *n_new, sbx_error **err)
{
  *n_new = 0;
  if (w->inotify)
    {
      char buf[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
      uint64_t now = w->last;
      while (read (w->fd, buf, sizeof buf) > 0)
        ;
      if (oom_kill_count (w->dir, &now) && now > w->last)
        {
          *n_new = now - w->last;
          w->last = now;
        }
      return 0;
    }
  else
    {
      uint64_t v = 0;
      if (read (w->fd, &v, sizeof v) != sizeof v)
        {
          if (errno == EAGAIN)
            return 0;
          return sbx_error_sys (err, "read the OOM eventfd");
        }
      /* the kernel also signals the eventfd when the cgroup goes away */
      if (access (w->dir, F_OK) == 0)
        *n_new = v;
      return 0;
    }
}

void
sbx_cgroup_oom_watch_free (sbx_cgroup_oom_watch *w)
{
  if (w == NULL)
    return;
  if (w->fd >= 0)
    close (w->fd);
  free (w->dir);
  free (w);
}

/* ------------------------------------------------------ default devices */

void
sbx_cgroup_add_default_devices (oci_resources *r)
{
  static const struct
  {
    char type;
    int64_t major, minor;
    const char *access;
  } defaults[] = {
    { 'c', -1, -1, "m" }, { 'b', -1, -1, "m" },    { 'c', 1, 3, "rwm" }, { 'c', 1, 5, "rwm" },
    { 'c', 1, 7, "rwm" }, { 'c', 1, 8, "rwm" },    { 'c', 1, 9, "rwm" }, { 'c', 5, 0, "rwm" },
    { 'c', 5, 2, "rwm" }, { 'c', 136, -1, "rwm" },
  };
  size_t n = sizeof defaults / sizeof *defaults;

  if (r == NULL || r->devices_len == 0)
    return;
  r->devices = xrealloc (r->devices, (r->devices_len + n + 1) * sizeof *r->devices);
  for (size_t i = 0; i < n; i++)
    {
      oci_device_cgroup *d = xmalloc0 (sizeof *d);
      d->allow = d->has_allow = true;
      d->type = xasprintf ("%c", defaults[i].type);
      d->major = defaults[i].major;
      d->minor = defaults[i].minor;
      d->has_major = d->has_minor = true;
      d->access = xstrdup (defaults[i].access);
      r->devices[r->devices_len++] = d;
    }
  r->devices[r->devices_len] = NULL;
}

/* ------------------------------------------------------------ host mode */

static bool
has_v1_mount (const char *root)
{
  DIR *d = opendir (root);
  struct dirent *de;
  bool found = false;

  if (d == NULL)
    return false;
  while (!found && (de = readdir (d)))
    {
      cleanup_free char *p = NULL;
      struct statfs s;
      if (de->d_name[0] == '.')
        continue;
      p = xasprintf ("%s/%s", root, de->d_name);
      if (statfs (p, &s) == 0 && s.f_type == CGROUP_SUPER_MAGIC)
        found = true;
    }
  closedir (d);
  return found;
}

sbx_cgroup_mode
sbx_cgroup_host_mode (void)
{
  static int cached = -1;
  struct statfs s;

  if (cached >= 0)
    return (sbx_cgroup_mode)cached;
  if (statfs (SBX_CGROUP_ROOT, &s) < 0)
    cached = SBX_CGROUP_NONE;
  else if (s.f_type == CGROUP2_SUPER_MAGIC)
    cached = SBX_CGROUP_V2;
  else if (s.f_type == TMPFS_MAGIC && has_v1_mount (SBX_CGROUP_ROOT))
    cached = SBX_CGROUP_V1;
  else
    cached = SBX_CGROUP_NONE;
  return (sbx_cgroup_mode)cached;
}

/* ------------------------------------------------------------ public API */

static const sbx_cg_ops *
ops_of (const sbx_cgroup *cg)
{
  return cg->mode == SBX_CGROUP_V2 ? &sbx_cg_v2_ops : &sbx_cg_v1_ops;
}

static void
stage_close (sbx_cgroup *cg)
{
  for (size_t i = 0; i < cg->n; i++)
    {
      if (cg->stage_in && cg->stage_in[i] >= 0)
        close (cg->stage_in[i]);
      if (cg->stage_out && cg->stage_out[i] >= 0)
        close (cg->stage_out[i]);
    }
  free (cg->stage_in);
  free (cg->stage_out);
  cg->stage_in = cg->stage_out = NULL;
}

void
sbx_cgroup_free (sbx_cgroup *cg)
{
  if (cg == NULL)
    return;
  stage_close (cg);
  sbx_cg_systemd_release (cg);
  sbx_cg_systemd_close (cg->bus);
  free (cg->unit);
  sbx_cg_hiers_free (cg->h, cg->n);
  free (cg);
}

int
sbx_cgroup_placed (sbx_cgroup *cg, sbx_error **err)
{
  oci_pids p = { 0 };
  oci_resources r = { 0 };

  sbx_cg_systemd_release (cg);
  if (cg->pids_after == 0)
    return 0;
  /* the limit itself, now that the placeholder no longer counts */
  p.limit = cg->pids_after;
  r.pids = &p;
  cg->pids_after = 0;
  return sbx_cgroup_apply (cg, &r, err);
}

/* Open the cgroup.procs pairs of sbx_cgroup_stage_*.  */
static int
stage_prepare (sbx_cgroup *cg, sbx_error **err)
{
  bool differs = false;

  cg->stage_in = xmalloc0 (cg->n * sizeof (int));
  cg->stage_out = xmalloc0 (cg->n * sizeof (int));
  for (size_t i = 0; i < cg->n; i++)
    cg->stage_in[i] = cg->stage_out[i] = -1;
  for (size_t i = 0; i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      cleanup_free char *own_dir = NULL, *file = NULL;

      if (sbx_cg_dir_for (h->mountpoint, h->mount_root, h->own, &own_dir, err) < 0)
        goto fail;
      differs |= strcmp (own_dir, h->dir) != 0;
      file = xasprintf ("%s/cgroup.procs", own_dir);
      cg->stage_out[i] = open (file, O_WRONLY | O_CLOEXEC);
      if (cg->stage_out[i] < 0)
        {
          sbx_error_sys (err, "open `%s`", file);
          goto fail;
        }
      if (sbx_cg_open (h, err) < 0)
        goto fail;
      cg->stage_in[i] = openat (h->fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
      if (cg->stage_in[i] < 0)
        {
          sbx_error_sys (err, "open `%s/cgroup.procs`", h->dir);
          goto fail;
        }
    }
  if (differs)
    return 0;
  sbx_error_set (err, 0, "the container's cgroup is the runtime's own");
fail:
  stage_close (cg);
  return -1;
}

static int
write_self (int fd)
{
  ssize_t r;
  do
    r = write (fd, "0", 1);
  while (r < 0 && errno == EINTR);
  return r == 1 ? 0 : -1;
}

int
sbx_cgroup_stage_leave (sbx_cgroup *cg, sbx_error **err)
{
  if (cg->stage_out == NULL)
    return sbx_error_set (err, 0, "cgroup staging not prepared");
  for (size_t i = 0; i < cg->n; i++)
    if (write_self (cg->stage_out[i]) < 0)
      {
        int e = errno;
        for (size_t j = 0; j < i; j++) /* back where we were */
          write_self (cg->stage_in[j]);
        return sbx_error_set (err, e, "move the container init to the runtime's cgroup `%s`", cg->h[i].own);
      }
  cg->staged_out = true;
  return 0;
}

int
sbx_cgroup_stage_enter (sbx_cgroup *cg, sbx_error **err)
{
  if (!cg->staged_out)
    return 0;
  for (size_t i = 0; i < cg->n; i++)
    if (write_self (cg->stage_in[i]) < 0)
      return sbx_error_sys (err, "move the container init into its cgroup `%s`", cg->h[i].dir);
  cg->staged_out = false;
  return 0;
}

int
sbx_cgroup_procs_open (sbx_cgroup *cg, int **fds, size_t *n, sbx_error **err)
{
  *fds = xmalloc0 ((cg->n + 1) * sizeof (int));
  *n = 0;
  for (size_t i = 0; i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      int fd = sbx_cg_open (h, NULL) < 0 ? -1 : openat (h->fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        {
          sbx_error_sys (err, "open `%s/cgroup.procs`", h->dir);
          while (*n > 0)
            close ((*fds)[--*n]);
          free (*fds);
          *fds = NULL;
          return -1;
        }
      (*fds)[(*n)++] = fd;
    }
  return 0;
}

int
sbx_cgroup_procs_enter_self (const int *fds, size_t n, sbx_error **err)
{
  for (size_t i = 0; i < n; i++)
    if (write_self (fds[i]) < 0)
      return sbx_error_sys (err, "move the process into the container's cgroup");
  return 0;
}

static void
cgroup_freep (sbx_cgroup **cg)
{
  sbx_cgroup_free (*cg);
}
#define cleanup_cgroup __attribute__ ((cleanup (cgroup_freep)))

/* mountinfo lists mounts that others cover (a tmpfs over a cgroup2 mount
   at <root>/unified): keep only hierarchies whose mount point statfs(2)
   shows as that kind of cgroup file system.  */
static void
drop_shadowed (sbx_cgroup *cg)
{
  size_t k = 0;
  for (size_t i = 0; i < cg->n; i++)
    {
      struct statfs sf;
      unsigned long want = cg->h[i].unified ? CGROUP2_SUPER_MAGIC : CGROUP_SUPER_MAGIC;
      if (statfs (cg->h[i].mountpoint, &sf) == 0 && (unsigned long)sf.f_type == want)
        {
          if (k != i)
            cg->h[k] = cg->h[i];
          k++;
          continue;
        }
      sbx_debug ("cgroup: %s is not a %s mount (covered?): ignored", cg->h[i].mountpoint,
                 cg->h[i].unified ? "cgroup2" : "cgroup");
      free (cg->h[i].controllers);
      free (cg->h[i].mountpoint);
      free (cg->h[i].mount_root);
      free (cg->h[i].own);
    }
  cg->n = k;
}

static int create_fs (const char *id, const char *cgroups_path, sbx_cgroup **out, sbx_error **err);

int
sbx_cgroup_create (const char *id, const char *cgroups_path, bool systemd_cgroup, sbx_cgroup **out,
                   sbx_error **err)
{
  sbx_cg_systemd *bus = NULL;
  cleanup_free char *unit = NULL, *path = NULL;
  pid_t hold = 0;

  if (!systemd_cgroup)
    {
      if (is_systemd_form (cgroups_path))
        return sbx_error_set (
            err, EINVAL, "linux.cgroupsPath `%s` is systemd's slice:prefix:name: it needs --systemd-cgroup",
            cgroups_path);
      return create_fs (id, cgroups_path, out, err);
    }
  if (sbx_cg_systemd_start (id, cgroups_path, &bus, &unit, &path, &hold, err) < 0)
    return -1;
  if (create_fs (id, path, out, err) < 0)
    {
      sbx_cg_systemd_stop (bus, unit, NULL);
      sbx_cg_systemd_close (bus);
      if (hold > 0)
        {
          kill (hold, SIGKILL);
          waitpid (hold, NULL, 0);
        }
      return -1;
    }
  (*out)->unit = steal_ptr (unit);
  (*out)->bus = bus;
  (*out)->hold = hold;
  return 0;
}

static int
create_fs (const char *id, const char *cgroups_path, sbx_cgroup **out, sbx_error **err)
{
  cleanup_cgroup sbx_cgroup *cg = NULL;
  cleanup_free char *self_cg = NULL, *mountinfo = NULL;
  sbx_cgroup_mode mode;

  mode = sbx_cgroup_host_mode ();
  if (mode == SBX_CGROUP_NONE)
    return sbx_error_set (err, ENOENT, "no cgroup file system mounted at `%s`", SBX_CGROUP_ROOT);
  if (sbx_read_file ("/proc/self/cgroup", 0, &self_cg, NULL, err) < 0
      || sbx_read_file ("/proc/self/mountinfo", 0, &mountinfo, NULL, err) < 0)
    return -1;
  cg = xmalloc0 (sizeof *cg);
  cg->mode = mode;
  if (sbx_cg_hierarchies_from_text (mode, SBX_CGROUP_ROOT, self_cg, mountinfo, &cg->h, &cg->n, err) < 0)
    return -1;
  drop_shadowed (cg);
  if (cg->n == 0)
    return sbx_error_set (err, ENOENT, "no cgroup hierarchy is reachable under `%s`", SBX_CGROUP_ROOT);
  for (size_t i = 0; i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      if (sbx_cg_resolve_path (h->own, cgroups_path, id, false, &h->path, err) < 0
          || sbx_cg_dir_for (h->mountpoint, h->mount_root, h->path, &h->dir, err) < 0)
        return -1;
    }
  if (ops_of (cg)->create (cg, err) < 0)
    return -1;
  sbx_debug ("cgroup: created `%s` (cgroup %s)", sbx_cgroup_path (cg), mode == SBX_CGROUP_V2 ? "v2" : "v1");
  {
    cleanup_error sbx_error *e = NULL;
    if (stage_prepare (cg, &e) < 0)
      sbx_debug ("cgroup: the init will set up inside the container's cgroup: %s", e->msg);
  }
  *out = steal_ptr (cg);
  return 0;
}

char *
sbx_cgroup_describe (const sbx_cgroup *cg)
{
  size_t cap = 64, len;
  char *s;

  for (size_t i = 0; i < cg->n; i++)
    cap += strlen (cg->h[i].controllers) + strlen (cg->h[i].mountpoint) + strlen (cg->h[i].mount_root)
           + strlen (cg->h[i].path) + 8;
  cap += cg->unit ? strlen (cg->unit) : 0;
  s = xmalloc0 (cap);
  len = snprintf (s, cap, "%s %s%s%s\n", DESCRIBE_MAGIC, cg->mode == SBX_CGROUP_V2 ? "v2" : "v1",
                  cg->unit ? " " : "", cg->unit ? cg->unit : "");
  for (size_t i = 0; i < cg->n; i++)
    len += snprintf (s + len, cap - len, "%c\t%s\t%s\t%s\t%s\n", cg->h[i].unified ? 'u' : 'c',
                     cg->h[i].controllers, cg->h[i].mountpoint, cg->h[i].mount_root, cg->h[i].path);
  return s;
}

int
sbx_cgroup_load (const char *saved, sbx_cgroup **out, sbx_error **err)
{
  cleanup_cgroup sbx_cgroup *cg = NULL;
  size_t n = 0;
  cleanup_strv char **lines = split_lines (saved, &n);
  const char *m;

  if (n < 2 || !sbx_has_prefix (lines[0], DESCRIBE_MAGIC " "))
    return sbx_error_set (err, EINVAL, "invalid saved cgroup description");
  m = lines[0] + strlen (DESCRIBE_MAGIC " ");
  cg = xmalloc0 (sizeof *cg);
  {
    char *sp = strchr (lines[0], ' ');
    sp = sp ? strchr (sp + 1, ' ') : NULL; /* after the magic's own space */
    sp = sp ? strchr (sp + 1, ' ') : NULL;
    if (sp)
      {
        *sp = '\0';
        if (sp[1] == '\0' || strpbrk (sp + 1, "/ \t"))
          return sbx_error_set (err, EINVAL, "invalid saved systemd unit `%s`", sp + 1);
        cg->unit = xstrdup (sp + 1);
      }
  }
  if (strcmp (m, "v2") == 0)
    cg->mode = SBX_CGROUP_V2;
  else if (strcmp (m, "v1") == 0)
    cg->mode = SBX_CGROUP_V1;
  else
    return sbx_error_set (err, EINVAL, "invalid saved cgroup mode `%s`", m);
  cg->h = xmalloc0 ((n - 1) * sizeof *cg->h);
  for (size_t i = 1; i < n; i++)
    {
      char *f[5], *p = lines[i];
      sbx_cg_hier *h = &cg->h[cg->n];
      for (int k = 0; k < 5; k++)
        {
          f[k] = p;
          p = p ? strchr (p, '\t') : NULL;
          if (p)
            *p++ = '\0';
          else if (k < 4)
            return sbx_error_set (err, EINVAL, "invalid saved cgroup line %zu", i);
        }
      if ((f[0][0] != 'u' && f[0][0] != 'c') || f[0][1] || f[4][0] != '/')
        return sbx_error_set (err, EINVAL, "invalid saved cgroup line %zu", i);
      h->unified = f[0][0] == 'u';
      h->controllers = xstrdup (f[1]);
      h->mountpoint = xstrdup (f[2]);
      h->mount_root = xstrdup (f[3]);
      h->path = xstrdup (f[4]);
      h->fd = -1;
      cg->n++;
      if (sbx_cg_dir_for (h->mountpoint, h->mount_root, h->path, &h->dir, err) < 0)
        return -1;
      /* the cgroup may be gone already (destroy succeeds then) */
      h->fd = open (h->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
  *out = steal_ptr (cg);
  return 0;
}

sbx_cgroup_mode
sbx_cgroup_get_mode (const sbx_cgroup *cg)
{
  return cg->mode;
}

const char *
sbx_cgroup_controller_path (const sbx_cgroup *cg, const char *controller)
{
  for (size_t i = 0; i < cg->n; i++)
    {
      const sbx_cg_hier *h = &cg->h[i];
      if (cg->mode == SBX_CGROUP_V2 || (*controller == '\0' && h->unified)
          || (*controller && !h->unified && sbx_cg_has_word (h->controllers, controller)))
        return h->path;
    }
  return NULL;
}

const char *
sbx_cgroup_path (const sbx_cgroup *cg)
{
  const char *p = sbx_cgroup_controller_path (cg, "memory");
  if (p)
    return p;
  return cg->n ? cg->h[0].path : "/";
}

int
sbx_cgroup_dirfd (const sbx_cgroup *cg)
{
  if (cg->mode != SBX_CGROUP_V2 || cg->n != 1)
    return -1;
  return cg->h[0].fd;
}

int
sbx_cgroup_apply (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  oci_resources held;
  oci_pids pids;

  if (r == NULL)
    return 0;
  if (cg->hold > 0 && r->pids && r->pids->limit > 0)
    {
      /* The placeholder is one of the scope's tasks until the init is in:
         one more until sbx_cgroup_placed sets the limit itself.  */
      held = *r;
      pids = *r->pids;
      cg->pids_after = pids.limit++;
      held.pids = &pids;
      r = &held;
    }
  if (cg->unit)
    {
      if (cg->bus == NULL && sbx_cg_systemd_open (&cg->bus, err) < 0)
        return -1;
      if (sbx_cg_systemd_set (cg->bus, cg->unit, r, err) < 0)
        return -1;
    }
  return ops_of (cg)->apply (cg, r, err);
}

int
sbx_cgroup_enter (sbx_cgroup *cg, pid_t pid, sbx_error **err)
{
  return ops_of (cg)->enter (cg, pid, err);
}

int
sbx_cgroup_kill (sbx_cgroup *cg, int signo, sbx_error **err)
{
  return ops_of (cg)->kill (cg, signo, err);
}

int
sbx_cgroup_freeze (sbx_cgroup *cg, bool frozen, sbx_error **err)
{
  return ops_of (cg)->freeze (cg, frozen, err);
}

bool
sbx_cgroup_is_frozen (sbx_cgroup *cg)
{
  return ops_of (cg)->is_frozen (cg);
}

int
sbx_cgroup_get_stats (sbx_cgroup *cg, sbx_cgroup_stats *st, sbx_error **err)
{
  memset (st, 0, sizeof *st);
  return ops_of (cg)->stats (cg, st, err);
}

int
sbx_cgroup_destroy (sbx_cgroup *cg, sbx_error **err)
{
  cleanup_error sbx_error *kerr = NULL;
  bool any = false;

  for (size_t i = 0; i < cg->n; i++)
    if (access (cg->h[i].dir, F_OK) == 0)
      any = true;
  if (!any && cg->unit == NULL)
    return 0;
  if (any && ops_of (cg)->kill (cg, SIGKILL, &kerr) < 0)
    sbx_debug ("cgroup: destroy: %s", kerr->msg);
  sbx_cg_systemd_release (cg);
  if (cg->unit)
    {
      /* systemd removes the unit's own cgroup(s); the ones we made in its
         other hierarchies (v1) are removed below */
      if (cg->bus == NULL && sbx_cg_systemd_open (&cg->bus, err) < 0)
        return -1;
      if (sbx_cg_systemd_stop (cg->bus, cg->unit, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < cg->n; i++)
    {
      cleanup_free char *parent = xstrdup (cg->h[i].dir);
      char *slash;
      if (sbx_cg_remove (&cg->h[i], err) < 0)
        {
          if (kerr)
            return sbx_error_wrap (err, "after failing to kill its processes (%s)", kerr->msg);
          return -1;
        }
      /* The default path's shared "sbxrun" level goes with its last
         container; another container still in it keeps it (ENOTEMPTY).  */
      slash = strrchr (parent, '/');
      if (slash)
        {
          *slash = '\0';
          slash = strrchr (parent, '/');
          if (slash && strcmp (slash, "/sbxrun") == 0)
            rmdir (parent);
        }
    }
  return 0;
}
