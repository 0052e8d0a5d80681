/* cgroup/systemd_user.c - rootless --systemd-cgroup: the user's systemd.
 *
 * An unprivileged caller asks its own user manager (user@UID.service,
 * over the user bus) for the transient unit, as runc and crun do; that
 * manager's units live below its cgroup,
 * /user.slice/user-UID.slice/user@UID.service, which systemd delegates to
 * the user.  The unit's cgroup path is computed here without asking
 * systemd (the journal records it before the unit exists); start checks
 * that systemd put the unit there.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

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

int
sbx_cg_systemd_user_check_self (sbx_error **err)
{
  cleanup_free char *self = NULL, *own = NULL, *root = sbx_cg_systemd_user_root ();
  const char *p, *line;
  size_t n = strlen (root);

  if (sbx_read_file ("/proc/self/cgroup", 0, &self, NULL, NULL) < 0)
    return 0;
  line = sbx_has_prefix (self, "0::") ? self : strstr (self, "\n0::");
  if (line == NULL)
    return 0; /* no unified hierarchy: the kernel decides */
  p = line + (*line == '\n' ? 4 : 3);
  own = xasprintf ("%.*s", (int)strcspn (p, "\n"), p);
  if ((strncmp (own, root, n) == 0 && (own[n] == '/' || own[n] == '\0')))
    return 0;
  /* only a path of the host's systemd layout is known to be outside (in a
     cgroup namespace the own path says nothing) */
  if (!sbx_has_prefix (own, "/user.slice/") && !sbx_has_prefix (own, "/system.slice/")
      && strcmp (own, "/init.scope") != 0)
    return 0;
  return sbx_error_set (err, EACCES,
                        "--systemd-cgroup (rootless): sbxrun runs in cgroup `%s`, outside the user's "
                        "systemd (`%s`); the kernel lets an unprivileged process move the container "
                        "into the unit's cgroup only from inside that subtree: run sbxrun in a user "
                        "scope (systemd-run --user --scope sbxrun ...) or a user service",
                        own, root);
}
