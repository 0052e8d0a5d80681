/* lsm.c - see lsm.h.  */
#include <config.h>
#include "lsm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "utils.h"

#define SELINUX_MAGIC 0xf97cff8c

bool
sbx_apparmor_enabled (void)
{
  char buf[4] = "";
  cleanup_close int fd = open ("/sys/module/apparmor/parameters/enabled", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && read (fd, buf, sizeof buf) > 0 && buf[0] == 'Y';
}

bool
sbx_selinux_enabled (void)
{
  struct statfs sf;
  return statfs ("/sys/fs/selinux", &sf) == 0 && (unsigned long) sf.f_type == SELINUX_MAGIC;
}

int
sbx_lsm_validate (const oci_process *p, const oci_linux *l, sbx_error **err)
{
  if (p && p->apparmor_profile && *p->apparmor_profile && !sbx_apparmor_enabled ())
    return sbx_error_set (err, ENOTSUP,
                          "process.apparmorProfile `%s`: AppArmor is not enabled on this host",
                          p->apparmor_profile);
  if (p && p->selinux_label && *p->selinux_label && !sbx_selinux_enabled ())
    return sbx_error_set (err, ENOTSUP, "process.selinuxLabel `%s`: SELinux is not enabled on this host",
                          p->selinux_label);
  if (l && l->mount_label && *l->mount_label && !sbx_selinux_enabled ())
    return sbx_error_set (err, ENOTSUP, "linux.mountLabel `%s`: SELinux is not enabled on this host",
                          l->mount_label);
  return 0;
}

/* Write an attribute of this thread; the kernel applies it at execve.  */
static int
write_attr (const char *path, const char *value, const char *field, sbx_error **err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || sbx_write_all (fd, value, strlen (value)) < 0)
    return sbx_error_sys (err, "%s `%s`: write %s", field, value, path);
  return 0;
}

int
sbx_lsm_apply_exec (const oci_process *p, sbx_error **err)
{
  if (p->apparmor_profile && *p->apparmor_profile)
    {
      cleanup_free char *v = xasprintf ("exec %s", p->apparmor_profile);
      /* The per-LSM directory exists when several LSMs are stacked.  */
      const char *path = access ("/proc/thread-self/attr/apparmor/exec", F_OK) == 0
                             ? "/proc/thread-self/attr/apparmor/exec"
                             : "/proc/thread-self/attr/exec";
      if (write_attr (path, v, "process.apparmorProfile", err) < 0)
        return -1;
    }
  if (p->selinux_label && *p->selinux_label
      && write_attr ("/proc/thread-self/attr/exec", p->selinux_label, "process.selinuxLabel", err) < 0)
    return -1;
  return 0;
}

char *
sbx_lsm_mount_data (const oci_linux *l)
{
  if (l == NULL || l->mount_label == NULL || *l->mount_label == '\0' || !sbx_selinux_enabled ())
    return NULL;
  return xasprintf ("context=\"%s\"", l->mount_label);
}
