/* cgroup/discovery.c - host mode detection, discovery of the hierarchies and
 * of the caller's own cgroups from /proc/self/cgroup and mountinfo, and
 * linux.cgroupsPath resolution (see manager.c for the rules).  */
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


static bool
bad_chars (const char *s)
{
  return s == NULL || strpbrk (s, "\t\n") != NULL;
}

/* ------------------------------------------------------- text discovery */

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
            sbx_mountinfo_entry *found)
{
  cleanup_free char *unified_at = xasprintf ("%s/unified", root);
  bool have = false;

  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *dup = xstrdup (lines[i]);
      sbx_mountinfo_entry e;
      bool match;

      if (!sbx_mountinfo_parse_line (dup, &e))
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

char **
sbx_cg_split_lines (const char *text, size_t *n)
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
  cleanup_strv char **lines = sbx_cg_split_lines (proc_cgroup, &nlines);
  cleanup_strv char **mi = sbx_cg_split_lines (mountinfo, &nmi);
  sbx_cg_hier *h = NULL;

  if (mode != SBX_CGROUP_V1 && mode != SBX_CGROUP_V2)
    return sbx_error_set (err, ENOENT, "no cgroup file system at `%s`", root);
  for (size_t i = 0; i < nlines; i++)
    {
      char *c1 = strchr (lines[i], ':'), *c2;
      sbx_mountinfo_entry m = { 0 };
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

bool
sbx_cg_is_systemd_form (const char *p)
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
  if (sbx_cg_is_systemd_form (cgroups_path))
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

const sbx_cg_hier *
sbx_cg_find_left (const sbx_cgroup *cg, const char *controller)
{
  for (size_t i = 0; i < cg->nleft; i++)
    if (!cg->left[i].unified && sbx_cg_has_word (cg->left[i].controllers, controller))
      return &cg->left[i];
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

/* ------------------------------------------- host layout (for fs/mounts.c) */

void
sbx_cgroup_host_layout_free (sbx_cgroup_host_layout *l)
{
  for (size_t i = 0; i < l->n; i++)
    {
      free (l->h[i].name);
      free (l->h[i].path);
      free (l->h[i].opts);
      free (l->h[i].own);
    }
  free (l->h);
  free (l->base);
  memset (l, 0, sizeof *l);
}

/* Superblock options of a v1 hierarchy without rw/ro and release_agent:
   what must be repeated to mount the same hierarchy again.  */
static char *
controller_opts (const char *super)
{
  cleanup_free char *copy = xstrdup (super);
  char *out = NULL, *save = NULL;
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    {
      char *n;
      if (strcmp (t, "rw") == 0 || strcmp (t, "ro") == 0 || sbx_has_prefix (t, "release_agent="))
        continue;
      n = out ? xasprintf ("%s,%s", out, t) : xstrdup (t);
      free (out);
      out = n;
    }
  return out;
}

/* The caller's own cgroup in hierarchy h, as a host directory; the mount
   point when /proc/self/cgroup does not say.  */
static char *
own_dir (const char *proc_cgroup, const sbx_cgroup_host_hierarchy *h, const char *mount_root)
{
  cleanup_free char *text = xstrdup (proc_cgroup ? proc_cgroup : "");
  char *save = NULL;

  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *c1 = strchr (line, ':'), *c2 = c1 ? strchr (c1 + 1, ':') : NULL, *cg;
      bool match = true;
      if (c2 == NULL)
        continue;
      *c2 = '\0';
      cg = c2 + 1;
      if (h->v2)
        match = c1[1] == '\0';
      else if (c1[1] == '\0')
        match = false;
      else
        {
          /* Every controller of the line must be an option of the mount.  */
          cleanup_free char *ctl = xstrdup (c1 + 1);
          char *s3 = NULL;
          for (char *t = strtok_r (ctl, ",", &s3); t && match; t = strtok_r (NULL, ",", &s3))
            match = sbx_cg_has_word (h->opts, t);
        }
      if (!match)
        continue;
      if (strcmp (mount_root, "/") != 0 && sbx_has_prefix (cg, mount_root))
        cg += strlen (mount_root);
      return xasprintf ("%s%s", h->path, cg);
    }
  return xstrdup (h->path);
}

/* /proc/self/mountinfo as the runtime read it to plan the container's
   cgroup: the init, forked after that in a copy of the same mount
   namespace, finds the same cgroup mounts there (each checked again with
   statfs below) without reading it again.  */
static char *planned_mountinfo;

void
sbx_cg_note_mountinfo (const char *text)
{
  free (planned_mountinfo);
  planned_mountinfo = xstrdup (text);
}

void
sbx_cgroup_forget_mountinfo (void)
{
  free (planned_mountinfo);
  planned_mountinfo = NULL;
}

int
sbx_cgroup_host_layout_read (sbx_cgroup_host_layout *l, const char *self_cgroup, sbx_error **err)
{
  cleanup_free char *text = NULL, *proc_cgroup = NULL;
  char *save = NULL;

  memset (l, 0, sizeof *l);
  if (planned_mountinfo)
    text = xstrdup (planned_mountinfo);
  else if (sbx_read_file ("/proc/self/mountinfo", 0, &text, NULL, err) < 0)
    return -1;
  if (self_cgroup)
    proc_cgroup = xstrdup (self_cgroup);
  else if (sbx_read_file ("/proc/self/cgroup", 0, &proc_cgroup, NULL, NULL) < 0)
    proc_cgroup = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      sbx_mountinfo_entry e;
      sbx_cgroup_host_hierarchy *h;
      struct statfs sf;
      const char *slash;
      bool v2;

      if (!sbx_mountinfo_parse_line (line, &e)
          || (strcmp (e.fstype, "cgroup") != 0 && strcmp (e.fstype, "cgroup2") != 0))
        continue;
      v2 = strcmp (e.fstype, "cgroup2") == 0;
      if (statfs (e.mountpoint, &sf) < 0
          || (unsigned long)sf.f_type != (v2 ? CGROUP2_SUPER_MAGIC : CGROUP_SUPER_MAGIC))
        continue;
      l->h = xrealloc (l->h, (l->n + 1) * sizeof *l->h);
      h = &l->h[l->n++];
      memset (h, 0, sizeof *h);
      slash = strrchr (e.mountpoint, '/');
      h->v2 = v2;
      h->path = xstrdup (e.mountpoint);
      h->name = xstrdup (slash ? slash + 1 : e.mountpoint);
      h->opts = v2 ? NULL : controller_opts (e.superopts);
      h->own = own_dir (proc_cgroup, h, e.root);
      if (!v2 && l->nv1++ == 0)
        l->base = xasprintf ("%.*s", (int)(strlen (h->path) - strlen (h->name) - 1), h->path);
    }
  for (size_t i = 0; l->base && i < l->n; i++)
    {
      size_t n = strlen (l->base);
      const char *p = l->h[i].path;
      l->h[i].in_base = strncmp (p, l->base, n) == 0 && p[n] == '/' && strchr (p + n + 1, '/') == NULL;
    }
  return 0;
}
