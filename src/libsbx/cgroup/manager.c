/* cgroup/manager.c - the manager of cgroup.h: create, load and describe,
 * and the dispatch to the v1 / v2 backends (the staging of the init and
 * exec's sub-cgroups: stage.c).
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
 * same cgroupsPath can resolve to different paths in different hierarchies
 * (cgroup/discovery.c).
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
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define DESCRIBE_MAGIC "sbxrun-cgroup 1"
/* A sixth field of a hierarchy's line: its parent_ours.  */
#define PARENT_OURS "parent-ours"

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

void
sbx_cg_sleep_ms (int ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
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
/* ------------------------------------------------------------ public API */

static const sbx_cg_ops *
ops_of (const sbx_cgroup *cg)
{
  return cg->mode == SBX_CGROUP_V2 ? &sbx_cg_v2_ops : &sbx_cg_v1_ops;
}


void
sbx_cgroup_free (sbx_cgroup *cg)
{
  if (cg == NULL)
    return;
  sbx_cg_stage_close (cg);
  sbx_cg_systemd_release (cg);
  sbx_cg_systemd_close (cg->bus);
  free (cg->unit);
  free (cg->slice);
  free (cg->unit_path);
  free (cg->placed_from);
  free (cg->id);
  sbx_cg_hiers_free (cg->h, cg->n);
  sbx_cg_hiers_free (cg->left, cg->nleft);
  free (cg);
}

void
sbx_cgroup_allow_partial (sbx_cgroup *cg)
{
  cg->partial_ok = cg->mode == SBX_CGROUP_V1;
}

char *
sbx_cgroup_left_out (const sbx_cgroup *cg)
{
  size_t cap = 1;
  char *names;

  if (cg->nleft == 0)
    return NULL;
  for (size_t i = 0; i < cg->nleft; i++)
    cap += strlen (cg->left[i].controllers) + 16;
  names = xmalloc0 (cap);
  for (size_t i = 0; i < cg->nleft; i++)
    {
      strcat (names, i ? ", " : "");
      strcat (names, cg->left[i].unified ? "unified (cgroup2)" : cg->left[i].controllers);
    }
  {
    /* v1_freeze falls back to the unified hierarchy's cgroup.freeze */
    bool no_freeze = sbx_cg_find_left (cg, "freezer") && sbx_cg_unified ((sbx_cgroup *)cg) == NULL;
    char *out = xasprintf ("the container has no cgroup in the hierarchies %s (`%s`: %s), which are not "
                           "delegated to the user: limits of their controllers are refused%s",
                           names, cg->left[0].dir, strerror (cg->left[0].refused),
                           no_freeze ? ", and without the freezer it cannot be paused" : "");
    free (names);
    return out;
  }
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
/* Is sbxrun in a pid namespace below the one its /proc shows (NSpid has
   more than one number)?  */
static bool
in_nested_pid_ns (void)
{
  cleanup_free char *text = NULL;
  const char *l;
  if (sbx_read_file ("/proc/self/status", 0, &text, NULL, NULL) < 0 || (l = strstr (text, "\nNSpid:")) == NULL)
    return false;
  l += 7;
  l += strspn (l, " \t");
  l += strspn (l, "0123456789");
  return *l == ' ' || *l == '\t';
}


static int create_fs (const char *id, const char *cgroups_path, sbx_cgroup **out, sbx_error **err);

int
sbx_cgroup_plan (const char *id, const char *cgroups_path, bool systemd_cgroup, bool rootless,
                 sbx_cgroup **out, sbx_error **err)
{
  cleanup_free char *slice = NULL, *unit = NULL, *path = NULL;

  if (!systemd_cgroup)
    {
      if (sbx_cg_is_systemd_form (cgroups_path))
        return sbx_error_set (
            err, EINVAL, "linux.cgroupsPath `%s` is systemd's slice:prefix:name: it needs --systemd-cgroup",
            cgroups_path);
      return create_fs (id, cgroups_path, out, err);
    }
  /* only computed: the unit is started by sbx_cgroup_make, once the
     journal has its name */
  if (sbx_cg_systemd_parse (cgroups_path, id, &slice, &unit, err) < 0
      || sbx_cg_systemd_unit_path (slice, unit, &path, err) < 0)
    return -1;
  if (rootless && sbx_cg_systemd_user_unit (cgroups_path, unit, &slice, &path, err) < 0)
    return -1;
#ifndef HAVE_SYSTEMD
  return sbx_error_set (err, ENOTSUP,
                        "--systemd-cgroup: this sbxrun was built without libsystemd (configure "
                        "--with-systemd)");
#endif
  if (create_fs (id, path, out, err) < 0)
    return -1;
  /* the slice is systemd's (it makes it for the unit), never removed here;
     in the v1 hierarchies systemd leaves alone a parent this create makes
     is ours, as with the cgroupfs driver */
  for (size_t i = 0; i < (*out)->n; i++)
    if (sbx_cg_systemd_hierarchy (&(*out)->h[i]))
      (*out)->h[i].parent_ours = false;
  (*out)->user_bus = rootless;
  if (rootless && sbx_cg_systemd_user_must_place (*out, path, &(*out)->placed_from) && in_nested_pid_ns ())
    {
      /* systemd would read the init's pid in its own pid namespace, where
         that number is another process */
      sbx_error_set (err, EACCES,
                     "--systemd-cgroup (rootless): sbxrun runs in `%s`, from where systemd must place "
                     "the container process by pid, but sbxrun is in a pid namespace of its own "
                     "(/proc/self/status NSpid): run it in the user's systemd's pid namespace, or "
                     "inside user@UID.service (systemd-run --user --scope sbxrun ...)",
                     (*out)->placed_from);
      sbx_cgroup_free (*out);
      *out = NULL;
      return -1;
    }
  if ((*out)->placed_from && strlen (unit) > 6 && strcmp (unit + strlen (unit) - 6, ".slice") == 0)
    {
      sbx_error_set (err, EACCES,
                     "--systemd-cgroup (rootless): linux.cgroupsPath `%s` names a slice as the "
                     "container's cgroup; sbxrun runs in `%s`, from where the user may not move "
                     "processes into the user's systemd, and systemd places a process only into a "
                     "scope: name a scope (slice:prefix:name), or run sbxrun inside user@UID.service "
                     "(systemd-run --user --scope sbxrun ...)",
                     cgroups_path, (*out)->placed_from);
      sbx_cgroup_free (*out);
      *out = NULL;
      return -1;
    }
  (*out)->unit = steal_ptr (unit);
  (*out)->slice = steal_ptr (slice);
  (*out)->unit_path = steal_ptr (path);
  (*out)->id = xstrdup (id);
  return 0;
}

/* Does h's parent directory (below the mount point) not exist yet, so
   that this create will make it?  */
static bool
parent_missing (const sbx_cg_hier *h)
{
  cleanup_free char *parent = xstrdup (h->dir);
  char *slash = strrchr (parent, '/');
  if (slash == NULL || (size_t)(slash - parent) <= strlen (h->mountpoint))
    return false;
  *slash = '\0';
  return access (parent, F_OK) < 0 && errno == ENOENT;
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
  sbx_cg_note_mountinfo (mountinfo);
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
      h->parent_ours = parent_missing (h);
    }
  *out = steal_ptr (cg);
  return 0;
}

/* The freezer state a process placed at dir would get: v1 freezer.state
   (which reports an ancestor's freezing too), v2 cgroup.events' effective
   "frozen 1" or cgroup.freeze.  A missing dir takes its nearest existing
   ancestor's state, up to the mount point.  */
static bool
dir_frozen (const sbx_cg_hier *h)
{
  cleanup_free char *d = xstrdup (h->dir);
  /* Its parent was missing at plan time: neither it nor the leaf can
     exist, so the look starts above both.  */
  for (int skip = h->parent_ours ? 2 : 0;; skip -= skip > 0)
    {
      cleanup_free char *path = NULL, *text = NULL;
      size_t len = 0;
      char *slash;
      if (skip == 0 && access (d, F_OK) == 0)
        {
          if (!h->unified)
            {
              path = xasprintf ("%s/freezer.state", d);
              return sbx_read_file (path, 64, &text, &len, NULL) == 0
                     && (sbx_has_prefix (text, "FROZEN") || sbx_has_prefix (text, "FREEZING"));
            }
          path = xasprintf ("%s/cgroup.events", d);
          if (sbx_read_file (path, 4096, &text, &len, NULL) == 0 && strstr (text, "frozen 1"))
            return true;
          free (path), free (text);
          path = text = NULL;
          path = xasprintf ("%s/cgroup.freeze", d);
          return sbx_read_file (path, 64, &text, &len, NULL) == 0 && text[0] == '1';
        }
      slash = strrchr (d, '/');
      if (!slash || strlen (d) <= strlen (h->mountpoint))
        return false;
      *slash = '\0';
    }
}

int
sbx_cgroup_check_existing (sbx_cgroup *cg, sbx_error **err)
{
  size_t n = 0;
  cleanup_free pid_t *pids = NULL;
  for (size_t i = 0; i < cg->n; i++)
    {
      const sbx_cg_hier *h = &cg->h[i];
      if ((h->unified || strstr (h->controllers, "freezer")) && dir_frozen (h))
        return sbx_error_set (err, EBUSY,
                              "linux.cgroupsPath `%s`: the cgroup `%s` is frozen (%s); thaw it "
                              "first, a container started there would hang",
                              sbx_cgroup_path (cg), h->dir, h->unified ? "cgroup.freeze" : "freezer.state");
    }
  for (size_t i = 0; i < cg->n; i++)
    if (!cg->h[i].parent_ours /* else it cannot exist */ && access (cg->h[i].dir, F_OK) == 0)
      {
        if (sbx_cgroup_pids (cg, &pids, &n, NULL) == 0 && n > 0)
          sbx_warn ("the container's cgroup `%s` is not empty: %zu process(es) found", sbx_cgroup_path (cg),
                    n);
        break;
      }
  return 0;
}

static int
make (sbx_cgroup *cg, pid_t init, sbx_error **err)
{
  /* systemd makes the unit's cgroup(s); the other hierarchies (v1) are
     ours, as with the cgroupfs driver */
  if (cg->slice && sbx_cg_systemd_start (cg, init, err) < 0)
    return -1;
  /* where systemd put it, read back */
  if (init > 0 && sbx_cg_systemd_landed (cg, init, cg->unit_path, err) < 0)
    goto fail;
  if (ops_of (cg)->create (cg, err) < 0)
    goto fail;
  /* the v1 hierarchies systemd does not place it in: there is no
     common-ancestor rule on v1 */
  if (init > 0 && cg->mode == SBX_CGROUP_V1 && ops_of (cg)->enter (cg, init, err) < 0)
    {
      sbx_cg_undo_create (cg);
      goto fail;
    }
  sbx_debug ("cgroup: created `%s` (cgroup %s)", sbx_cgroup_path (cg),
             cg->mode == SBX_CGROUP_V2 ? "v2" : "v1");
  return 0;
fail:
  if (cg->slice)
    {
      sbx_cg_systemd_release (cg);
      sbx_cg_systemd_stop (cg->bus, cg->unit, NULL);
    }
  return -1;
}

int
sbx_cgroup_make (sbx_cgroup *cg, sbx_error **err)
{
  if (cg->placed_from)
    return sbx_error_set (err, EINVAL, "internal: the cgroup is placed by systemd (sbx_cgroup_make_with)");
  return make (cg, 0, err);
}

bool
sbx_cgroup_can_be_late (const sbx_cgroup *cg)
{
  /* all staging files fit in one message (sbx_cgroup_stage_fds) */
  return cg->mode == SBX_CGROUP_V1 && !cg->slice && !cg->placed_from && !cg->partial_ok
         && 2 * cg->n <= SBX_MAX_SEND_FDS;
}

int
sbx_cgroup_make_early (sbx_cgroup *cg, sbx_error **err)
{
  if (!sbx_cgroup_can_be_late (cg))
    return sbx_error_set (err, EINVAL,
                          "internal: late placement is for the cgroupfs driver on v1 hierarchies");
  for (size_t i = 0; i < cg->n; i++)
    if (cg->h[i].unified)
      {
        if (sbx_cg_mkdir (&cg->h[i], NULL, err) < 0)
          {
            sbx_cg_undo_create (cg);
            return -1;
          }
        cg->h[i].early = true;
      }
  cg->late = true;
  return 0;
}

int
sbx_cgroup_make_with (sbx_cgroup *cg, pid_t pid, sbx_error **err)
{
  if (cg->placed_from == NULL || pid <= 0)
    return sbx_error_set (err, EINVAL, "internal: sbx_cgroup_make_with without systemd placing");
  return make (cg, pid, err);
}

char *
sbx_cgroup_describe (const sbx_cgroup *cg)
{
  size_t cap = 64, len;
  char *s;

  for (size_t i = 0; i < cg->n + cg->nleft; i++)
    {
      const sbx_cg_hier *h = i < cg->n ? &cg->h[i] : &cg->left[i - cg->n];
      cap += strlen (h->controllers) + strlen (h->mountpoint) + strlen (h->mount_root) + strlen (h->path)
             + 32;
    }
  cap += cg->unit ? strlen (cg->unit) : 0;
  s = xmalloc0 (cap);
  len = snprintf (s, cap, "%s %s%s%s\n", DESCRIBE_MAGIC, cg->mode == SBX_CGROUP_V2 ? "v2" : "v1",
                  cg->unit ? " " : "", cg->unit ? cg->unit : "");
  for (size_t i = 0; i < cg->n; i++)
    len += snprintf (s + len, cap - len, "%c\t%s\t%s\t%s\t%s%s\n", cg->h[i].unified ? 'u' : 'c',
                     cg->h[i].controllers, cg->h[i].mountpoint, cg->h[i].mount_root, cg->h[i].path,
                     cg->h[i].parent_ours ? "\t" PARENT_OURS : "");
  /* left out (rootless): "x" (v1) or "y" (unified), the errno last */
  for (size_t i = 0; i < cg->nleft; i++)
    len += snprintf (s + len, cap - len, "%c\t%s\t%s\t%s\t%s\t%d\n", cg->left[i].unified ? 'y' : 'x',
                     cg->left[i].controllers, cg->left[i].mountpoint, cg->left[i].mount_root,
                     cg->left[i].path, cg->left[i].refused);
  return s;
}

int
sbx_cgroup_load (const char *saved, sbx_cgroup **out, sbx_error **err)
{
  cleanup_cgroup sbx_cgroup *cg = NULL;
  size_t n = 0;
  cleanup_strv char **lines = sbx_cg_split_lines (saved, &n);
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
  cg->left = xmalloc0 ((n - 1) * sizeof *cg->left);
  for (size_t i = 1; i < n; i++)
    {
      char *f[5], *p = lines[i];
      bool left = lines[i][0] == 'x' || lines[i][0] == 'y';
      sbx_cg_hier *h = left ? &cg->left[cg->nleft] : &cg->h[cg->n];
      for (int k = 0; k < 5; k++)
        {
          f[k] = p;
          p = p ? strchr (p, '\t') : NULL;
          if (p)
            *p++ = '\0';
          else if (k < 4)
            return sbx_error_set (err, EINVAL, "invalid saved cgroup line %zu", i);
        }
      if (!f[0][0] || !strchr ("ucxy", f[0][0]) || f[0][1] || f[4][0] != '/'
          || (p && !left && strcmp (p, PARENT_OURS) != 0) || (left && (p == NULL || atoi (p) <= 0)))
        return sbx_error_set (err, EINVAL, "invalid saved cgroup line %zu", i);
      h->parent_ours = p != NULL && !left;
      h->refused = left ? atoi (p) : 0;
      h->unified = f[0][0] == 'u' || f[0][0] == 'y';
      h->controllers = xstrdup (f[1]);
      h->mountpoint = xstrdup (f[2]);
      h->mount_root = xstrdup (f[3]);
      h->path = xstrdup (f[4]);
      h->fd = -1;
      *(left ? &cg->nleft : &cg->n) += 1;
      if (sbx_cg_dir_for (h->mountpoint, h->mount_root, h->path, &h->dir, err) < 0)
        return -1;
      if (left)
        continue;
      /* the cgroup may be gone already (destroy succeeds then) */
      h->fd = open (h->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
  cg->user_bus = cg->unit && cg->n && sbx_cg_systemd_in_user_manager (cg->h[0].path);
  if (cg->user_bus && sbx_cg_unified (cg))
    sbx_cg_systemd_user_must_place (cg, sbx_cg_unified (cg)->path, &cg->placed_from);
  *out = steal_ptr (cg);
  return 0;
}

/* Are a's and b's directories in the same parent?  */
static bool
same_parent (const sbx_cg_hier *a, const sbx_cg_hier *b)
{
  const char *sa = strrchr (a->dir, '/'), *sb = strrchr (b->dir, '/');
  return sa && sb && sa - a->dir == sb - b->dir && strncmp (a->dir, b->dir, (size_t)(sa - a->dir)) == 0;
}

void
sbx_cgroup_share_parent (sbx_cgroup *cg, const char *sandbox_saved)
{
  cleanup_cgroup sbx_cgroup *sb = NULL;
  if (cg->unit || sandbox_saved == NULL || sbx_cgroup_load (sandbox_saved, &sb, NULL) < 0)
    return;
  for (size_t i = 0; i < cg->n; i++)
    for (size_t j = 0; j < sb->n; j++)
      if (sb->h[j].parent_ours && cg->h[i].unified == sb->h[j].unified
          && strcmp (cg->h[i].controllers, sb->h[j].controllers) == 0 && same_parent (&cg->h[i], &sb->h[j]))
        cg->h[i].parent_ours = true;
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
sbx_cgroup_clone_fd (const sbx_cgroup *cg)
{
  for (size_t i = 0; i < cg->n; i++)
    if (cg->h[i].unified)
      return cg->h[i].fd;
  return -1;
}

int
sbx_cgroup_apply (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  oci_resources held;
  oci_pids pids;

  if (r == NULL)
    return 0;
  /* Linux dropped kernel memory limits (v1 since 5.16, never on v2): a
     limit asked for cannot be had.  -1 and 0 ask for none.  */
  if (r->memory && r->memory->has_kernel && r->memory->kernel != 0 && r->memory->kernel != -1)
    return sbx_error_set (
        err, EOPNOTSUPP,
        "linux.resources.memory.kernel: kernel memory limits are not supported by Linux any "
        "more (deprecated in runtime-spec)");
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
      if (cg->bus == NULL && sbx_cg_systemd_open (cg->user_bus, &cg->bus, err) < 0)
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

bool
sbx_cgroup_saved_is_frozen (const char *saved)
{
  sbx_cgroup *cg = NULL;
  bool frozen = false;
  if (sbx_cgroup_load (saved, &cg, NULL) == 0)
    {
      frozen = sbx_cgroup_is_frozen (cg);
      sbx_cgroup_free (cg);
    }
  return frozen;
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

  if (cg->foreign)
    return 0;
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
      if (cg->bus == NULL && sbx_cg_systemd_open (cg->user_bus, &cg->bus, err) < 0)
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
         container, and so does a parent this create made (a pod's cgroup,
         parent_ours); another container still in it keeps it (EBUSY,
         ENOTEMPTY).  */
      slash = strrchr (parent, '/');
      if (slash && (size_t)(slash - parent) > strlen (cg->h[i].mountpoint))
        {
          *slash = '\0';
          slash = strrchr (parent, '/');
          if ((slash && strcmp (slash, "/sbxrun") == 0) || cg->h[i].parent_ours)
            {
              if (rmdir (parent) == 0)
                sbx_debug ("cgroup: removed the parent `%s`", parent);
              else if (errno != ENOENT)
                sbx_debug ("cgroup: the parent `%s` stays: %m", parent);
            }
        }
    }
  return 0;
}
