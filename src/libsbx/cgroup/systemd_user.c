/* cgroup/systemd_user.c - rootless --systemd-cgroup: the user's systemd.
 *
 * An unprivileged caller asks its own user manager (user@UID.service,
 * over the user bus) for the transient unit, as runc and crun do; that
 * manager's units live below its cgroup,
 * /user.slice/user-UID.slice/user@UID.service, which systemd delegates to
 * the user.  The unit's cgroup path is computed here without asking
 * systemd (the journal records it before the unit exists); start checks
 * that systemd put the unit there.
 *
 * The kernel lets an unprivileged process move another into a cgroup
 * (cgroup.procs, or clone3 CLONE_INTO_CGROUP) only if it may write the
 * cgroup.procs of the deepest cgroup the two share.  Inside
 * user@UID.service that holds; from a login session's session-N.scope
 * (or a system service) the two meet at user-UID.slice or above, which is
 * root's.  There the container process is started first, outside any
 * cgroup of ours, and the user manager is given its pid with the unit
 * (StartTransientUnit, PIDs): it asks the system manager to move it
 * (sbx_cg_systemd_user_must_place decides, sbx_cgroup_make_with does it).  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

bool
sbx_cg_systemd_in_user_manager (const char *path)
{
  const char *p = path && sbx_has_prefix (path, "/user.slice/") ? strstr (path, "/user@") : NULL;
  const char *end = p ? strchr (p + 1, '/') : NULL;
  return end && end - p > 14 && strncmp (end - 8, ".service", 8) == 0;
}

char *
sbx_cg_systemd_user_root (void)
{
  cleanup_free char *map = NULL;
  unsigned long uid = geteuid ();
  /* in a user namespace (rootless podman's) the host uid euid maps to */
  if (sbx_read_file ("/proc/self/uid_map", 0, &map, NULL, NULL) == 0)
    for (char *l = map; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
      {
        unsigned long in, out, n;
        if (sscanf (l, "%lu %lu %lu", &in, &out, &n) == 3 && uid >= in && uid - in < n)
          {
            uid = out + (uid - in);
            break;
          }
      }
  return xasprintf ("/user.slice/user-%lu.slice/user@%lu.service", uid, uid);
}

int
sbx_cg_systemd_user_unit (const char *cgroups_path, const char *unit, char **slice, char **path,
                          sbx_error **err)
{
  cleanup_free char *root = sbx_cg_systemd_user_root ();
  char *full;

  if (cgroups_path == NULL || *cgroups_path == '\0' || *cgroups_path == ':')
    {
      free (*slice), free (*path);
      *slice = xstrdup ("user.slice");
      *path = NULL;
      if (sbx_cg_systemd_unit_path (*slice, unit, path, err) < 0)
        return -1;
    }
  full = xasprintf ("%s%s", root, *path);
  free (*path);
  *path = full;
  return 0;
}

char *
sbx_cg_common_ancestor (const char *a, const char *b)
{
  size_t i = 0, last = 0;

  while (a[i] && a[i] == b[i])
    {
      if (a[i] == '/')
        last = i;
      i++;
    }
  if ((a[i] == '\0' || a[i] == '/') && (b[i] == '\0' || b[i] == '/'))
    last = i;
  return last ? xasprintf ("%.*s", (int)last, a) : xstrdup ("/");
}

char *
sbx_cg_unified_of (pid_t pid)
{
  char file[64];
  cleanup_free char *text = NULL;
  const char *line;

  if (pid > 0)
    snprintf (file, sizeof file, "/proc/%d/cgroup", (int)pid);
  else
    snprintf (file, sizeof file, "/proc/self/cgroup");
  if (sbx_read_file (file, 0, &text, NULL, NULL) < 0)
    return NULL;
  line = sbx_has_prefix (text, "0::") ? text : strstr (text, "\n0::");
  if (line == NULL)
    return NULL;
  line += *line == '\n' ? 4 : 3;
  return xasprintf ("%.*s", (int)strcspn (line, "\n"), line);
}

int
sbx_cg_systemd_landed (const sbx_cgroup *cg, pid_t pid, const char *want, sbx_error **err)
{
  cleanup_free char *at = sbx_cg_unified_of (pid);
  if (at && strcmp (at, want) == 0)
    return 0;
  return sbx_error_set (err, EIO, "--systemd-cgroup: systemd put process %d in `%s`, not in unit `%s` (`%s`)",
                        (int)pid, at ? at : "(unknown)", cg->unit, want);
}

bool
sbx_cg_systemd_user_must_place (sbx_cgroup *cg, const char *unit_path, char **own_out)
{
  sbx_cg_hier *h = sbx_cg_unified (cg);
  cleanup_free char *anc = NULL, *dir = NULL, *procs = NULL;
  cleanup_free char *own = h ? sbx_cg_unified_of (0) : NULL;

  *own_out = NULL;
  /* without a unified hierarchy there is no common-ancestor rule (v1);
     only a path of the host's systemd layout says where we are (in a
     cgroup namespace our own path is relative to its root): else the
     kernel decides, as it always did */
  if (own == NULL
      || (!sbx_has_prefix (own, "/user.slice/") && !sbx_has_prefix (own, "/system.slice/")
          && strcmp (own, "/init.scope") != 0))
    return false;
  anc = sbx_cg_common_ancestor (own, unit_path);
  if (sbx_cg_dir_for (h->mountpoint, h->mount_root, anc, &dir, NULL) < 0)
    return false;
  procs = xasprintf ("%s/cgroup.procs", dir);
  if (faccessat (AT_FDCWD, procs, W_OK, AT_EACCESS) == 0)
    return false;
  sbx_debug ("cgroup: sbxrun's cgroup `%s` and the unit's `%s` meet at `%s`, whose cgroup.procs the "
             "caller may not write: systemd places the container process",
             own, unit_path, anc);
  *own_out = steal_ptr (own);
  return true;
}

bool
sbx_cgroup_placed_by_systemd (const sbx_cgroup *cg)
{
  return cg->placed_from != NULL;
}

int
sbx_cgroup_attach_by_systemd (sbx_cgroup *cg, pid_t pid, sbx_error **err)
{
  const char *want = sbx_cg_unified (cg) ? sbx_cg_unified (cg)->path : NULL;

  if (cg->placed_from == NULL || cg->unit == NULL || want == NULL)
    return sbx_error_set (err, EINVAL, "internal: sbx_cgroup_attach_by_systemd without systemd placing");
  if (cg->bus == NULL && sbx_cg_systemd_open (cg->user_bus, &cg->bus, err) < 0)
    return -1;
  if (sbx_cg_systemd_attach (cg->bus, cg->unit, pid, err) < 0)
    return sbx_error_wrap (err,
                           "--systemd-cgroup (rootless): sbxrun runs in `%s`, from where the user may not "
                           "move processes into the user's systemd: the user manager was asked to move "
                           "process %d into unit `%s` and could not",
                           cg->placed_from, (int)pid, cg->unit);
  return sbx_cg_systemd_landed (cg, pid, want, err);
}
