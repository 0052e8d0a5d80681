/* egress/checks.c - what a container with an egress policy may not have
 * (see egress.h): a network namespace that is not its own, a shared pid
 * namespace without a seccomp filter against ptrace, capabilities that
 * lift or bypass the rules.  */
#include <config.h>
#include "egress/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "egress/egress_internal.h"

/* Capabilities with which a process could lift or slip past its egress
   rules; a container with a policy may hold none of them, in any set.
   CAP_NET_RAW is not among them: raw IP sockets pass the output hook, and
   packet sockets are refused by a seccomp filter (packet_guard.c).  */
static const struct
{
  const char *cap, *why;
} bypass_caps[] = {
  { "CAP_NET_ADMIN", "it could remove its own egress rules" },
  { "CAP_SYS_ADMIN", "it could leave its cgroup or join other network namespaces" },
  { "CAP_SYS_MODULE", "it could load kernel modules" },
  { "CAP_SYS_PTRACE", "it could ptrace a process outside the policy (in a shared pid namespace) "
                      "and make it send on its behalf" },
};

int
sbx_net_check_caps (const oci_process *p, const char *what, sbx_error **err)
{
  const oci_capabilities *c = p ? p->capabilities : NULL;
  struct
  {
    const char *name;
    char **v;
    size_t n;
  } sets[] = {
    { "bounding", c ? c->bounding : NULL, c ? c->bounding_len : 0 },
    { "effective", c ? c->effective : NULL, c ? c->effective_len : 0 },
    { "inheritable", c ? c->inheritable : NULL, c ? c->inheritable_len : 0 },
    { "permitted", c ? c->permitted : NULL, c ? c->permitted_len : 0 },
    { "ambient", c ? c->ambient : NULL, c ? c->ambient_len : 0 },
  };

  for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
    for (size_t j = 0; j < sets[i].n; j++)
      for (size_t k = 0; k < sizeof bypass_caps / sizeof *bypass_caps; k++)
        if (strcmp (sets[i].v[j], bypass_caps[k].cap) == 0)
          return sbx_error_set (err, EPERM,
                                "%s.capabilities.%s: %s is refused with an egress policy "
                                "(" SBX_NET_PREFIX "* annotations): %s; drop it from every "
                                "capability set",
                                what, sets[i].name, bypass_caps[k].cap, bypass_caps[k].why);
  return 0;
}

static int
check_netns (const oci_config *c, sbx_error **err)
{
  const oci_namespace *net = NULL;
  struct stat own, joined;

  for (size_t i = 0; c->linux && i < c->linux->namespaces_len; i++)
    if (strcmp (c->linux->namespaces[i]->type, "network") == 0)
      net = c->linux->namespaces[i];
  if (net == NULL)
    return sbx_error_set (err, EINVAL,
                          "annotations " SBX_NET_PREFIX "*: an egress policy needs a network "
                          "namespace of the container's own (linux.namespaces has no `network` "
                          "entry, so the rules would apply to the host)");
  if (net->path == NULL || net->path[0] == '\0')
    return 0;
  if (stat (net->path, &joined) < 0)
    return sbx_error_sys (err, "linux.namespaces: network path `%s`", net->path);
  if (stat ("/proc/self/ns/net", &own) == 0 && own.st_dev == joined.st_dev && own.st_ino == joined.st_ino)
    return sbx_error_set (err, EINVAL,
                          "annotations " SBX_NET_PREFIX "*: an egress policy needs a network "
                          "namespace of the container's own, but `%s` is the runtime's (host) "
                          "network namespace",
                          net->path);
  return 0;
}

/* Syscalls with which a process reaches into another one of its uid
   (PTRACE_MODE_ATTACH, no capability needed): injecting system calls,
   writing its memory, taking its sockets.  */
static const char *const reach_syscalls[]
    = { "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd" };

static bool
denying (const char *action)
{
  return action
         && (strncmp (action, "SCMP_ACT_ERRNO", 14) == 0 || strncmp (action, "SCMP_ACT_KILL", 13) == 0
             || strcmp (action, "SCMP_ACT_TRAP") == 0);
}

/* Does the profile refuse `name` whatever its arguments?  */
static bool
seccomp_denies (const oci_seccomp *s, const char *name)
{
  bool named = false, conditional = false;
  if (s == NULL)
    return false;
  for (size_t i = 0; i < s->syscalls_len; i++)
    for (size_t j = 0; j < s->syscalls[i]->names_len; j++)
      if (strcmp (s->syscalls[i]->names[j], name) == 0)
        {
          if (!denying (s->syscalls[i]->action))
            return false;
          named = true;
          conditional = conditional || s->syscalls[i]->args_len > 0;
        }
  return (named && !conditional) || denying (s->default_action);
}

/* A pid namespace shared with processes outside the policy (the host's,
   a pod's, another container's) lets a process of the same uid ptrace
   one of them and send through it: refused unless linux.seccomp denies
   the ways in.  */
static int
check_pidns (const oci_config *c, sbx_error **err)
{
  const oci_namespace *pid = NULL;
  const oci_seccomp *s = c->linux ? c->linux->seccomp : NULL;
  for (size_t i = 0; c->linux && i < c->linux->namespaces_len; i++)
    if (strcmp (c->linux->namespaces[i]->type, "pid") == 0)
      pid = c->linux->namespaces[i];
  if (pid && (pid->path == NULL || pid->path[0] == '\0'))
    return 0;
  for (size_t i = 0; i < sizeof reach_syscalls / sizeof *reach_syscalls; i++)
    if (!seccomp_denies (s, reach_syscalls[i]))
      return sbx_error_set (err, EPERM,
                            "annotations " SBX_NET_PREFIX "*: the container shares a pid namespace (%s) "
                            "and linux.seccomp does not deny `%s`: a process could ptrace a process "
                            "outside the egress policy running as the same uid and make it send on "
                            "its behalf; give the container a pid namespace of its own, or deny "
                            "ptrace, process_vm_readv, process_vm_writev and pidfd_getfd in "
                            "linux.seccomp",
                            pid ? pid->path : "the host's: linux.namespaces has no `pid` entry",
                            reach_syscalls[i]);
  return 0;
}

int
sbx_net_policy_parse (const oci_config *c, const char *bundle, const char *rootfs, sbx_net_policy *pod,
                      sbx_net_policy **out, sbx_error **err)
{
  sbx_net_policy *p = NULL;

  *out = NULL;
  if (sbx_net_policy_from_annotations (c, bundle, rootfs, &p, err) < 0)
    goto fail;
  if (pod)
    {
      const char *eg
          = ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len, SBX_NET_EGRESS);
      cleanup_free char *v = eg ? sbx_net_trimmed (eg) : NULL;
      if (v && strcmp (v, "open") == 0)
        {
          sbx_error_set (err, EPERM,
                         "annotation %s: `open` would widen the policy of pod sandbox \"%s\": a "
                         "container of a pod under a policy may only narrow it",
                         SBX_NET_EGRESS, pod->pod_id);
          goto fail;
        }
      if (p && sbx_net_check_narrows (p, pod, err) < 0)
        goto fail;
      if (p && !sbx_net_policy_within (pod, p))
        {
          p->pod_id = steal_ptr (pod->pod_id);
          p->pod_cgroup2 = steal_ptr (pod->pod_cgroup2);
          p->pod_netns = steal_ptr (pod->pod_netns);
          sbx_net_policy_free (pod);
        }
      else /* none of its own, or the pod's own destinations (engines copy
              the pod's annotation into every container): the pod's */
        {
          sbx_net_policy_free (p);
          p = pod;
          p->inherited = true;
        }
      pod = NULL;
    }
  if (p == NULL)
    return 0;
  p->sandbox = !p->inherited && p->pod_id == NULL && sbx_net_is_sandbox (c);
  if (check_netns (c, err) < 0 || sbx_net_check_caps (c->process, "process", err) < 0
      || check_pidns (c, err) < 0)
    goto fail;
  *out = p;
  return 0;

fail:
  sbx_net_policy_free (pod);
  sbx_net_policy_free (p);
  return -1;
}

int
sbx_net_exec_check (const oci_config *c, int state_dirfd, const oci_process *p, bool *governed,
                    sbx_error **err)
{
  struct stat st;
  *governed
      = sbx_net_config_has_policy (c)
        || (state_dirfd >= 0 && fstatat (state_dirfd, SBX_NET_STATE_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0);
  if (!*governed)
    return 0;
  return sbx_net_check_caps (p, "exec: process", err);
}
