/* rootless.c - what `--rootless` and the euid mean for the state root and
 * for the privileges sbxrun may assume (docs/rootless.md).  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

/* Whether we are in a user namespace that maps less than the whole id
   range: there, host-root privileges (cgroups, mknod, sysfs) are not ours
   even as uid 0.  */
static bool
userns_is_partial (void)
{
  char buf[256];
  unsigned a, b, n;
  ssize_t len;
  int fd = open ("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  len = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (len <= 0)
    return false;
  buf[len] = '\0';
  if (sscanf (buf, "%u %u %u", &a, &b, &n) != 3)
    return true;
  return !(a == 0 && b == 0 && n == 4294967295u);
}

int
sbx_rootless_resolve (const char *flag, bool *rootless, sbx_error **err)
{
  if (flag == NULL || strcmp (flag, "auto") == 0)
    *rootless = geteuid () != 0 || userns_is_partial ();
  else if (strcmp (flag, "true") == 0)
    *rootless = true;
  else if (strcmp (flag, "false") == 0)
    *rootless = false;
  else
    return sbx_error_set (err, EINVAL, "--rootless `%s`: expected auto, true or false", flag);
  return 0;
}

char *
sbx_default_state_root (bool rootless)
{
  const char *xdg = getenv ("XDG_RUNTIME_DIR"), *user = getenv ("USER");
  bool has_xdg = xdg && xdg[0] == '/';
  /* An unprivileged user cannot write /run/sbxrun; the per-user runtime
     directory is private to them and emptied at logout.  */
  if (geteuid () != 0)
    return has_xdg ? xasprintf ("%s/sbxrun", xdg) : xasprintf ("/run/user/%u/sbxrun", (unsigned)geteuid ());
  /* uid 0 of a user's namespace (rootless podman calls us there, with the
     user's XDG_RUNTIME_DIR): /run/sbxrun is still the host's.  As runc,
     unless USER says we are the real root.  */
  if (rootless && has_xdg && (user == NULL || strcmp (user, "root") != 0))
    return xasprintf ("%s/sbxrun", xdg);
  return xstrdup ("/run/sbxrun");
}
