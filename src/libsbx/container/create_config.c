/* container/create_config.c - create's first step: config.json read,
 * checked and planned (the namespaces, the rootfs, what can be done and
 * what is refused by name) before anything exists.  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "container/init_internal.h"
#include "core/core.h"
#include "egress/egress.h"
#include "fs/fs.h"
#include "process/process.h"
#include "security/security.h"

/* Socket activation: fds 3..3+N-1 of LISTEN_FDS pass through, as with runc. */
static void
inherit_listen_fds (oci_process *p, int *preserve)
{
  const char *lf = getenv ("LISTEN_FDS"), *lp = getenv ("LISTEN_PID");
  long long n, for_pid;
  if (lf == NULL || sbx_parse_int64 (lf, &n) < 0 || n <= 0 || n > 1024)
    return;
  /* Meant for another process (an ancestor that exec'd us by accident):
     those fds are not the container's.  */
  if (lp && (sbx_parse_int64 (lp, &for_pid) < 0 || for_pid != getpid ()))
    return;
  if (n > *preserve)
    *preserve = (int)n;
  p->env = xrealloc (p->env, (p->env_len + 3) * sizeof (char *));
  p->env[p->env_len++] = xasprintf ("LISTEN_FDS=%lld", n);
  p->env[p->env_len++] = xstrdup ("LISTEN_PID=1");
  p->env[p->env_len] = NULL;
}

/* Is path dir itself or below it (both absolute and clean)?  */
static bool
path_under (const char *path, const char *dir)
{
  size_t n = strlen (dir);
  if (n == 1 && dir[0] == '/')
    return true;
  return strncmp (path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* "1.<minor>.<patch>" with an optional -suffix.  */
static bool
valid_oci_version (const char *v)
{
  unsigned a, b, c;
  int n = 0;
  if (sscanf (v, "%u.%u.%u%n", &a, &b, &c, &n) != 3 || a != 1)
    return false;
  return v[n] == '\0' || v[n] == '-' || v[n] == '+';
}

/* linux.intelRdt: resctrl groups are not implemented; say which of the two
   reasons applies.  */
#define SBX_RDTGROUP_SUPER_MAGIC 0x7655821
static int
intel_rdt_validate (const oci_linux *l, sbx_error **err)
{
  struct statfs sf;
  if (l == NULL || l->intel_rdt == NULL)
    return 0;
  if (statfs ("/sys/fs/resctrl", &sf) < 0 || sf.f_type != SBX_RDTGROUP_SUPER_MAGIC)
    return sbx_error_set (err, ENOTSUP,
                          "linux.intelRdt: this host has no resctrl filesystem mounted at /sys/fs/resctrl "
                          "(no Intel RDT / AMD QoS, or not mounted)");
  return sbx_error_set (err, ENOTSUP, "linux.intelRdt: resctrl groups are not supported by sbxrun yet");
}

int
sbx_create_load_config (const sbx_create_opts *o, sbx_creator *cr, sbx_error **err)
{
  cleanup_free char *msg = NULL, *cfg = NULL, *root_path = NULL;
  const char *bundle = o->bundle ? o->bundle : ".";

  cr->bundle = realpath (bundle, NULL);
  if (cr->bundle == NULL)
    return sbx_error_sys (err, "bundle `%s`", bundle);
  cfg = o->config ? xstrdup (o->config) : xasprintf ("%s/config.json", cr->bundle);
  cr->c = oci_config_parse_file (cfg, &msg);
  if (cr->c == NULL) /* the text says it all, strerror included */
    return sbx_error_set (err, 0, "config.json: %s", msg);
  if (cr->c->root == NULL)
    return sbx_error_set (err, EINVAL, "config.json: root: required to create a container");
  if (!valid_oci_version (cr->c->oci_version))
    return sbx_error_set (err, EINVAL, "config.json: ociVersion `%s`: unsupported (want 1.x.y)",
                          cr->c->oci_version);
  /* config.md makes process optional until start, but a container without
     one could never start: say so now rather than at start.  */
  if (cr->c->process == NULL)
    return sbx_error_set (err, EINVAL,
                          "config.json: process: required to create a container (missing or null)");
  if (sbx_process_validate (cr->c->process, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (cr->c->linux && sbx_cgroup_validate (cr->c->linux->resources, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (cr->c->process && cr->c->linux && cr->c->linux->seccomp
      && sbx_seccomp_check_notify (cr->c->linux->seccomp, cr->c->process->no_new_privileges, err) < 0)
    return sbx_error_wrap (err, "config.json");
  root_path = cr->c->root->path[0] == '/' ? xstrdup (cr->c->root->path)
                                          : xasprintf ("%s/%s", cr->bundle, cr->c->root->path);
  cr->rootfs = realpath (root_path, NULL);
  if (cr->rootfs == NULL)
    return sbx_error_sys (err, "config.json: root.path `%s`", cr->c->root->path);
  {
    /* A rootfs in the bundle that a symlink takes elsewhere: whoever
       wrote the bundle picks a host directory as the container's root.  */
    cleanup_free char *lexical = sbx_fs_mount_dest_clean (root_path);
    if (path_under (lexical, cr->bundle) && !path_under (cr->rootfs, cr->bundle))
      return sbx_error_set (
          err, EXDEV, "config.json: root.path `%s`: a symlink leads outside the bundle (to `%s`): refused",
          cr->c->root->path, cr->rootfs);
  }
  {
    struct stat st;
    if (stat (cr->rootfs, &st) < 0 || !S_ISDIR (st.st_mode))
      return sbx_error_set (err, ENOTDIR, "config.json: root.path `%s`", cr->c->root->path);
  }
  if (cr->c->process && cr->c->process->terminal && o->detach && o->console_socket == NULL)
    return sbx_error_set (err, EINVAL,
                          "process.terminal is true but no --console-socket was given to receive "
                          "the terminal of a detached container");
  if (sbx_lsm_validate (NULL, cr->c->linux, err) < 0
      || sbx_process_linux_proc_validate (cr->c->linux, err) < 0
      || intel_rdt_validate (cr->c->linux, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (sbx_fs_mounts_validate (cr->c, cr->bundle, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (sbx_fs_overlay_wanted (cr->c, o->overlay, &cr->overlay, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (sbx_process_ns_plan_make (cr->c->linux, &cr->plan, err) < 0)
    return sbx_error_wrap (err, "config.json");
  /* An ordinary user: the kernel permits the other namespaces only to the
     owner of a user namespace, and host devices not at all.  */
  if (geteuid () != 0 && cr->plan.new_flags && !((cr->plan.new_flags | cr->plan.join_flags) & CLONE_NEWUSER))
    return sbx_error_set (
        err, EPERM,
        "config.json: linux.namespaces: an unprivileged caller (uid %u) is not permitted to "
        "create namespaces outside a user namespace of its own: add {\"type\": \"user\"} "
        "with uidMappings/gidMappings (`sbxrun spec --rootless` writes such a config)",
        (unsigned)geteuid ());
  if (geteuid () != 0 && cr->c->linux && cr->c->linux->net_devices_len)
    return sbx_error_set (
        err, EPERM,
        "config.json: linux.netDevices: an unprivileged caller (uid %u) is not permitted to "
        "move a host network device (that needs CAP_NET_ADMIN on the host)",
        (unsigned)geteuid ());
  if (cr->c->linux && cr->c->linux->time_offsets_len && !(cr->plan.new_flags & CLONE_NEWTIME))
    return sbx_error_set (err, EINVAL,
                          "config.json: linux.timeOffsets needs a new time namespace in "
                          "linux.namespaces");
  if (cr->overlay && !(cr->plan.new_flags & CLONE_NEWNS))
    return sbx_error_set (err, EINVAL,
                          "config.json: " SBX_OVERLAY_ANNOTATION " (or --overlay) needs a new mount "
                          "namespace in linux.namespaces");
  /* Without a mount namespace of its own (the host's, or one joined by
     path) the rootfs is built below a private bind of itself, recorded
     and removed whole at delete (fs.h, hostroot.c).  */
  cr->host_root = !(cr->plan.new_flags & CLONE_NEWNS) && sbx_fs_host_root_wanted (cr->c);
  if (cr->host_root && sbx_fs_host_root_validate (cr->c, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if ((cr->plan.new_flags & CLONE_NEWUSER) && (cr->plan.join_flags & ~CLONE_NEWUSER))
    return sbx_error_set (err, ENOTSUP,
                          "config.json: linux.namespaces: joining namespaces by path together with a "
                          "new user namespace is not supported yet");
  for (size_t i = 0; cr->c->linux && i < cr->c->linux->sysctl_len; i++)
    {
      /* Two values for one name: refused rather than one silently winning.  */
      const char *k = cr->c->linux->sysctl_keys[i], *v = cr->c->linux->sysctl_values[i];
      const char *field = strcmp (k, "kernel.hostname") == 0     ? "hostname"
                          : strcmp (k, "kernel.domainname") == 0 ? "domainname"
                                                                 : NULL;
      const char *name = field == NULL ? NULL : field[0] == 'h' ? cr->c->hostname : cr->c->domainname;
      if (name && *name && strcmp (name, v ? v : "") != 0)
        return sbx_error_set (err, EINVAL, "config.json: linux.sysctl[\"%s\"] `%s` conflicts with %s `%s`", k,
                              v ? v : "", field, name);
    }
  if (sbx_process_netdev_validate (cr->c->linux, (cr->plan.new_flags | cr->plan.join_flags) & CLONE_NEWNET,
                                   err)
      < 0)
    return sbx_error_wrap (err, "config.json");
  if (cr->c->process)
    inherit_listen_fds (cr->c->process, (int *)&o->preserve_fds);
  /* Nothing mounted: no procfs to get right. */
  cr->fork_init
      = (cr->plan.join_flags & CLONE_NEWPID)
        && (!((cr->plan.new_flags & CLONE_NEWNS) || cr->host_root) || sbx_fs_mount_proc_pidns_supported ());
  if ((cr->plan.join_flags & CLONE_NEWPID) && !cr->fork_init)
    sbx_debug ("no procfs pidns= option: the init sets up inside the joined pid namespace");
  return 0;
}
