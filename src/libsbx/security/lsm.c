/* lsm.c - see lsm.h.  */
#include <config.h>
#include "security/security.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/core.h"

#define SELINUX_MAGIC 0xf97cff8c

bool
sbx_apparmor_enabled (void)
{
  char buf[4] = "";
  cleanup_close int fd = open ("/sys/module/apparmor/parameters/enabled", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && read (fd, buf, sizeof buf) > 0 && buf[0] == 'Y';
}

/* selinuxfs is mounted, and loaded with a policy (the enforce file only
   exists then).  */
bool
sbx_selinux_enabled (void)
{
  struct statfs sf;
  return statfs ("/sys/fs/selinux", &sf) == 0 && (unsigned long) sf.f_type == SELINUX_MAGIC
         && access ("/sys/fs/selinux/enforce", F_OK) == 0;
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

/* Write an attribute of this thread; the kernel applies it at execve.  A
   write that does not reach procfs would leave the process unconfined:
   procfs.h checks where it lands.  */
static int
write_attr (int procfd, const char *rel, const char *value, const char *field, sbx_error **err)
{
  if (sbx_proc_write (procfd, rel, value, strlen (value), err) < 0)
    return sbx_error_wrap (err, "%s `%s`", field, value);
  return 0;
}

int
sbx_lsm_apply_exec (const oci_process *p, int procfd, sbx_error **err)
{
  if (p->apparmor_profile && *p->apparmor_profile)
    {
      cleanup_free char *v = xasprintf ("exec %s", p->apparmor_profile);
      /* The per-LSM directory exists when several LSMs are stacked.  */
      const char *rel = faccessat (procfd, "thread-self/attr/apparmor/exec", F_OK, AT_SYMLINK_NOFOLLOW) == 0
                            ? "thread-self/attr/apparmor/exec"
                            : "thread-self/attr/exec";
      if (write_attr (procfd, rel, v, "process.apparmorProfile", err) < 0)
        return -1;
    }
  if (p->selinux_label && *p->selinux_label
      && write_attr (procfd, "thread-self/attr/exec", p->selinux_label, "process.selinuxLabel", err) < 0)
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
