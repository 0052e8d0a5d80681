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
sbx_default_state_root (void)
{
  const char *xdg = getenv ("XDG_RUNTIME_DIR");
  if (geteuid () == 0)
    return xstrdup ("/run/sbxrun");
  /* An unprivileged user cannot write /run/sbxrun; the per-user runtime
     directory is private to them and emptied at logout.  */
  if (xdg && xdg[0] == '/')
    return xasprintf ("%s/sbxrun", xdg);
  return xasprintf ("/run/user/%u/sbxrun", (unsigned) geteuid ());
}
