/* procfs.c - see procfs.h.  */
#include <config.h>
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>


#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif

/* The root directory of every procfs instance.  */
#define PROC_ROOT_INO 1

static int
on_procfs (int fd)
{
  struct statfs sf;
  return fstatfs (fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

int
sbx_proc_open (int dirfd, const char *path, sbx_error **err)
{
  return sbx_proc_open_as (dirfd, path, SBX_PROC_PRIVATE_COPY, err);
}

int
sbx_proc_open_as (int dirfd, const char *path, sbx_proc_open_mode mode, sbx_error **err)
{
  cleanup_close int fd = -1;
  struct stat sb;
  int tree;

  fd = openat (dirfd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open %s", path);
  /* A directory of some procfs bound there (/proc/1, say) is no procfs
     root: "self" would not be ours.  */
  if (!on_procfs (fd) || fstat (fd, &sb) < 0 || sb.st_ino != PROC_ROOT_INO)
    return sbx_error_set (err, EXDEV, "%s is not the root of a procfs", path);
  /* A detached copy of just this mount: nothing mounted later on or under
     path (by a hook, a mask, or a container process) is in it.  Refused
     when the mount has children the user namespace may not reveal; the
     checks of sbx_proc_open_write hold either way.  */
  if (mode == SBX_PROC_MOUNTED)
    return steal_fd (&fd);
  tree = syscall (SYS_open_tree, fd, "", OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH);
  if (tree >= 0)
    return tree;
  sbx_debug ("%s: no private copy of the procfs (%s): using the mount itself", path, strerror (errno));
  return steal_fd (&fd);
}

int
sbx_proc_open_write (int procfd, const char *rel, sbx_error **err)
{
  /* No mount crossed (what redirects a write), nothing outside procfd,
     no magic link, and the file itself not a symlink.  */
  struct open_how how = { .flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
  struct stat d, f;
  int fd;

  fd = syscall (SYS_openat2, procfd, rel, &how, sizeof how);
  if (fd < 0 && (errno == ENOSYS || errno == E2BIG))
    fd = openat (procfd, rel, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return sbx_error_sys (err, errno == EXDEV ? "/proc/%s: a mount is stacked on the way (refused)"
                                              : "open /proc/%s",
                          rel);
  /* Same filesystem as procfd: a file of another procfs or filesystem
     mounted over the path (possible without openat2) is refused.  */
  if (!on_procfs (fd) || fstat (fd, &f) < 0 || fstat (procfd, &d) < 0 || f.st_dev != d.st_dev)
    {
      close (fd);
      return sbx_error_set (err, EXDEV, "/proc/%s is not on the expected procfs (refused)", rel);
    }
  return fd;
}

int
sbx_proc_write (int procfd, const char *rel, const char *buf, size_t len, sbx_error **err)
{
  cleanup_close int fd = sbx_proc_open_write (procfd, rel, err);
  ssize_t n;

  if (fd < 0)
    return -1;
  n = write (fd, buf, len);
  if (n < 0)
    return sbx_error_sys (err, "write /proc/%s", rel);
  if ((size_t) n != len)
    return sbx_error_set (err, EIO, "write /proc/%s: short write", rel);
  return 0;
}
