/* core/mountinfo.c - one parser of /proc/<pid>/mountinfo lines, for the
 * cgroup discovery and the cgroup mounts of fs/; and a file's mount id.  */
#include <config.h>
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

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

bool
sbx_mountinfo_parse_line (char *line, sbx_mountinfo_entry *e)
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

int
sbx_mount_id (int dirfd, const char *path, int flags, uint64_t *out)
{
  struct statx sx;
  if (statx (dirfd, path, flags | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) < 0)
    return -1;
  if (!(sx.stx_mask & STATX_MNT_ID))
    {
      errno = ENOTSUP;
      return -1;
    }
  *out = sx.stx_mnt_id;
  return 0;
}
