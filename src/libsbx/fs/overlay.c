/* overlay.c - the opt-in writable overlay over the bundle's rootfs (see
 * fs.h): the lower layer is never written, upper/ and work/ live in the
 * container's state directory, and the filesystem is built by the runtime
 * with the new mount API as a detached mount that the init moves onto the
 * rootfs inside its own mount namespace (so the host never sees it and
 * nothing is left mounted when the container goes).  */
#include <config.h>
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x1
#define FSMOUNT_CLOEXEC 0x1
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif

int
sbx_fs_overlay_wanted (const oci_config *c, bool flag, bool *out, sbx_error **err)
{
  *out = flag;
  for (size_t i = 0; c && i < c->annotations_len; i++)
    {
      const char *k = c->annotations_keys[i], *v = c->annotations_values[i];
      if (!sbx_has_prefix (k, "org.sbxrun.rootfs."))
        continue;
      if (strcmp (k, SBX_OVERLAY_ANNOTATION) != 0)
        return sbx_error_set (err, EINVAL,
                              "annotation `%s`: unknown key under `org.sbxrun.rootfs.` (known: %s)", k,
                              SBX_OVERLAY_ANNOTATION);
      if (strcmp (v, "true") == 0)
        *out = true;
      else if (strcmp (v, "false") != 0)
        return sbx_error_set (err, EINVAL, "annotation %s: `%s`: expected true or false",
                              SBX_OVERLAY_ANNOTATION, v);
    }
  return 0;
}

int
sbx_fs_overlay_dirs (int state_dirfd, const char *lower, sbx_error **err)
{
  struct stat st;
  cleanup_close int ufd = -1;

  if (stat (lower, &st) < 0)
    return sbx_error_sys (err, "overlay: lower rootfs `%s`", lower);
  if (mkdirat (state_dirfd, SBX_OVERLAY_UPPER, 0700) < 0 && errno != EEXIST)
    return sbx_error_sys (err, "overlay: create upper directory");
  if (mkdirat (state_dirfd, SBX_OVERLAY_WORK, 0700) < 0 && errno != EEXIST)
    return sbx_error_sys (err, "overlay: create work directory");
  /* The merged root takes the upper root's owner and mode: the lower's.  */
  ufd = openat (state_dirfd, SBX_OVERLAY_UPPER, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (ufd < 0 || fchown (ufd, st.st_uid, st.st_gid) < 0 || fchmod (ufd, st.st_mode & 07777) < 0)
    return sbx_error_sys (err, "overlay: upper directory");
  return 0;
}

static int
fsconfig_str (int fd, const char *key, const char *value)
{
  return syscall (SYS_fsconfig, fd, FSCONFIG_SET_STRING, key, value, 0);
}

/* lowerdir takes a `:` separated list with `\` escapes.  */
static char *
escape_lower (const char *p)
{
  char *out = xmalloc0 (2 * strlen (p) + 1), *q = out;
  for (; *p; p++)
    {
      if (*p == ':' || *p == '\\')
        *q++ = '\\';
      *q++ = *p;
    }
  return out;
}

/* The overlay's fs context; lower given as lowerdir+ (plus) or as the
   escaped lowerdir list.  Fails with *create_einval set when only the
   filesystem's creation refused the options.  */
static int
overlay_fd (const char *lower, const char *upper, const char *work, bool plus, bool *create_einval,
            sbx_error **err)
{
  cleanup_close int fsfd = -1;
  int mfd;

  fsfd = syscall (SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return sbx_error_sys (err, "overlay: fsopen (is overlayfs available?)");
  if (plus && fsconfig_str (fsfd, "lowerdir+", lower) < 0)
    return sbx_error_sys (err, "overlay: lowerdir+ `%s`", lower);
  if (!plus)
    {
      cleanup_free char *esc = escape_lower (lower);
      if (fsconfig_str (fsfd, "lowerdir", esc) < 0)
        return sbx_error_sys (err, "overlay: lowerdir `%s`", lower);
    }
  if (fsconfig_str (fsfd, "upperdir", upper) < 0)
    return sbx_error_sys (err, "overlay: upperdir `%s`", upper);
  if (fsconfig_str (fsfd, "workdir", work) < 0)
    return sbx_error_sys (err, "overlay: workdir `%s`", work);
  /* The upper must stay a self-contained change set that snapshots copy
     and forks mount again over the same lower: no inode index tying it to
     this mount, no metadata-only copy-up pointing into the lower.  */
  if (fsconfig_str (fsfd, "index", "off") < 0 && errno != EINVAL)
    return sbx_error_sys (err, "overlay: index=off");
  if (fsconfig_str (fsfd, "metacopy", "off") < 0 && errno != EINVAL)
    return sbx_error_sys (err, "overlay: metacopy=off");
  if (syscall (SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    {
      *create_einval = errno == EINVAL;
      return sbx_error_sys (err, "overlay: create the filesystem (lower `%s`, upper `%s`)", lower, upper);
    }
  mfd = syscall (SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, 0);
  if (mfd < 0)
    return sbx_error_sys (err, "overlay: fsmount");
  return mfd;
}

int
sbx_fs_overlay_mount_fd (const char *lower, const char *upper, const char *work, sbx_error **err)
{
  cleanup_error sbx_error *e = NULL;
  bool einval = false;
  /* lowerdir+ (Linux 6.8) takes the path as it is; older kernels the
     escaped list.  Before 6.5 overlayfs took its options as one legacy
     string: the unknown lowerdir+ is accepted by fsconfig and refused
     only when the filesystem is created, so that is tried again too.  */
  int fd = overlay_fd (lower, upper, work, true, &einval, &e);
  if (fd >= 0 || (!einval && !sbx_has_prefix (e->msg, "overlay: lowerdir+")))
    {
      if (fd < 0 && err)
        *err = steal_ptr (e);
      return fd;
    }
  return overlay_fd (lower, upper, work, false, &einval, err);
}
