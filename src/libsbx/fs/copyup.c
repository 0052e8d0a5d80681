/* copyup.c - the `tmpcopyup` mount option: what the image has at a tmpfs
 * mount point is copied into the new tmpfs (see fs_internal.h).  The image
 * is the attacker's: nothing is followed (symlinks are copied as links), only
 * what is below the mount point is read, and the depth is bounded.  */
#include <config.h>
#include "fs/fs_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/core.h"

#define COPYUP_MAX_DEPTH 64

static int
copy_file (int from, int to, const char *name, const struct stat *st, sbx_error **err)
{
  cleanup_close int in = openat (from, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  cleanup_close int out = -1;
  char buf[65536];
  ssize_t n;

  if (in < 0)
    return sbx_error_sys (err, "tmpcopyup: open `%s`", name);
  out = openat (to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 07777);
  if (out < 0)
    return sbx_error_sys (err, "tmpcopyup: create `%s`", name);
  while ((n = read (in, buf, sizeof buf)) > 0)
    if (sbx_write_all (out, buf, (size_t)n) < 0)
      return sbx_error_sys (err, "tmpcopyup: write `%s`", name);
  if (n < 0)
    return sbx_error_sys (err, "tmpcopyup: read `%s`", name);
  if (fchown (out, st->st_uid, st->st_gid) < 0 || fchmod (out, st->st_mode & 07777) < 0)
    return sbx_error_sys (err, "tmpcopyup: owner and mode of `%s`", name);
  return 0;
}

int
sbx_copy_tree (int from, int to, int depth, sbx_error **err)
{
  int dfd = fcntl (from, F_DUPFD_CLOEXEC, 3);
  DIR *d;
  struct dirent *de;
  int r = 0;

  if (dfd < 0)
    return sbx_error_sys (err, "tmpcopyup: dup");
  if (depth > COPYUP_MAX_DEPTH)
    {
      close (dfd);
      return sbx_error_set (err, ELOOP, "tmpcopyup: deeper than %d directories", COPYUP_MAX_DEPTH);
    }
  d = fdopendir (dfd);
  if (d == NULL)
    {
      close (dfd);
      return sbx_error_sys (err, "tmpcopyup: read directory");
    }
  while (r == 0 && (errno = 0, de = readdir (d)) != NULL)
    {
      const char *name = de->d_name;
      struct stat st;
      if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        continue;
      if (fstatat (from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        r = sbx_error_sys (err, "tmpcopyup: stat `%s`", name);
      else if (S_ISDIR (st.st_mode))
        {
          cleanup_close int sub_from = -1, sub_to = -1;
          if (mkdirat (to, name, 0700) < 0)
            r = sbx_error_sys (err, "tmpcopyup: mkdir `%s`", name);
          else if ((sub_from = openat (from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0
                   || (sub_to = openat (to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            r = sbx_error_sys (err, "tmpcopyup: open directory `%s`", name);
          else if ((r = sbx_copy_tree (sub_from, sub_to, depth + 1, err)) == 0
                   && (fchown (sub_to, st.st_uid, st.st_gid) < 0 || fchmod (sub_to, st.st_mode & 07777) < 0))
            r = sbx_error_sys (err, "tmpcopyup: owner and mode of `%s`", name);
        }
      else if (S_ISREG (st.st_mode))
        r = copy_file (from, to, name, &st, err);
      else if (S_ISLNK (st.st_mode))
        {
          char target[4096];
          ssize_t n = readlinkat (from, name, target, sizeof target - 1);
          if (n < 0)
            r = sbx_error_sys (err, "tmpcopyup: readlink `%s`", name);
          else
            {
              target[n] = '\0';
              if (symlinkat (target, to, name) < 0
                  || fchownat (to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                r = sbx_error_sys (err, "tmpcopyup: symlink `%s`", name);
            }
        }
      else if (mknodat (to, name, st.st_mode, st.st_rdev) < 0
               || fchownat (to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        r = sbx_error_sys (err, "tmpcopyup: mknod `%s`", name);
    }
  if (r == 0 && de == NULL && errno != 0)
    r = sbx_error_sys (err, "tmpcopyup: read directory");
  closedir (d);
  return r;
}
