/* egress/scope.c - who a policy applies to: the checks that refuse a
 * policy the container could escape (its network namespace, capabilities)
 * and the exec check (see egress.h, docs/annotations.md).  */
#include <config.h>
#include "egress/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "egress/egress_internal.h"

/* ---------------------------------------------------------------- checks */

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

/* ---------------------------------------------------------------- pods */

static const char *
annotation (const oci_config *c, const char *key)
{
  return ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len, key);
}

bool
sbx_net_is_sandbox (const oci_config *c)
{
  const char *cri = annotation (c, SBX_CRI_CONTAINER_TYPE), *crio = annotation (c, SBX_CRIO_CONTAINER_TYPE);
  return (cri && strcmp (cri, "sandbox") == 0) || (crio && strcmp (crio, "sandbox") == 0);
}

const char *
sbx_net_sandbox_id (const oci_config *c)
{
  const char *id;
  if (sbx_net_is_sandbox (c))
    return NULL;
  id = annotation (c, SBX_CRI_SANDBOX_ID);
  return id ? id : annotation (c, SBX_CRIO_SANDBOX_ID);
}

const char *
sbx_net_joined_netns (const oci_config *c)
{
  for (size_t i = 0; c->linux && i < c->linux->namespaces_len; i++)
    {
      const oci_namespace *ns = c->linux->namespaces[i];
      if (strcmp (ns->type, "network") == 0)
        return ns->path && ns->path[0] ? ns->path : NULL;
    }
  return NULL;
}

bool
sbx_net_joins_netns (const oci_config *c)
{
  return sbx_net_joined_netns (c) != NULL;
}

bool
sbx_net_json_uint_is (const oj_value *v, unsigned long long want)
{
  return v && v->type == OJ_NUMBER && strtoull (v->text, NULL, 10) == want;
}

/* Rules saved as their canonical text (sbx_net_rule_format) back.  */
static int
load_rules (const oj_value *a, const char *what, sbx_net_rule **out, size_t *n, sbx_error **err)
{
  if (a == NULL || a->type != OJ_ARRAY)
    return sbx_error_set (err, EINVAL, "net.json: `%s` is not an array", what);
  *out = xmalloc0 ((a->len + 1) * sizeof **out);
  *n = 0;
  for (size_t i = 0; i < a->len; i++)
    {
      sbx_net_entry e = { 0 };
      cleanup_free char *why = NULL;
      if (a->items[i]->type != OJ_STRING || sbx_net_entry_parse (a->items[i]->text, &e, &why) < 0 || e.name)
        {
          sbx_net_entry_clear (&e);
          return sbx_error_set (err, EINVAL, "net.json: `%s[%zu]`: %s", what, i,
                                why ? why : "not an address");
        }
      (*out)[(*n)++] = e.rule;
    }
  return 0;
}

int
sbx_net_pod_load (int sandbox_dirfd, const char *sandbox_id, const oci_config *member, bool pod_scope_only,
                  sbx_net_policy **out, sbx_error **err)
{
  cleanup_close int fd = openat (sandbox_dirfd, SBX_NET_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  cleanup_free char *text = NULL;
  const char *path = sbx_net_joined_netns (member);
  const oj_value *eg, *cg;
  oj_value *rec = NULL;
  sbx_net_policy *p = NULL;
  struct stat st;

  *out = NULL;
  if (fd < 0 || path == NULL || stat (path, &st) < 0)
    return 0; /* no policy, or not in the sandbox's namespace */
  if (sbx_read_fd (fd, 1 << 20, &text, NULL, err) < 0)
    return sbx_error_wrap (err, "sandbox \"%s\": net.json", sandbox_id);
  rec = oj_parse (text, strlen (text), NULL);
  if (rec == NULL || rec->type != OJ_OBJECT)
    {
      oj_free (rec);
      return sbx_error_set (err, EINVAL, "sandbox \"%s\": net.json is not a JSON object", sandbox_id);
    }
  cg = oj_object_get (rec, "scope");
  if (!sbx_net_json_uint_is (oj_object_get (rec, "netnsDev"), st.st_dev)
      || !sbx_net_json_uint_is (oj_object_get (rec, "netnsIno"), st.st_ino)
      || (pod_scope_only && !(cg && cg->type == OJ_STRING && strcmp (cg->text, "pod") == 0)))
    {
      oj_free (rec);
      return 0;
    }
  p = xmalloc0 (sizeof *p);
  eg = oj_object_get (rec, "egress");
  p->egress = eg && eg->type == OJ_STRING && strcmp (eg->text, "deny") == 0 ? SBX_NET_EGRESS_DENY
                                                                            : SBX_NET_EGRESS_ALLOWLIST;
  p->dns = SBX_NET_DNS_LIST;
  if (load_rules (oj_object_get (rec, "rules"), "rules", &p->rules, &p->nrules, err) < 0
      || load_rules (oj_object_get (rec, "resolvers"), "resolvers", &p->resolvers, &p->nresolvers, err) < 0)
    {
      oj_free (rec);
      sbx_net_policy_free (p);
      return sbx_error_wrap (err, "sandbox \"%s\"", sandbox_id);
    }
  cg = oj_object_get (rec, "cgroup2");
  p->pod_cgroup2 = cg && cg->type == OJ_STRING ? xstrdup (cg->text) : NULL;
  p->pod_id = xstrdup (sandbox_id);
  oj_free (rec);
  *out = p;
  return 0;
}

char *
sbx_net_pod_scope (const char *dir)
{
  const char *slash = strrchr (dir, '/');
  if (slash == NULL || slash == dir)
    return NULL;
  return strndup (dir, (size_t)(slash - dir));
}

bool
sbx_net_cgroup_within (const char *dir, const char *scope)
{
  size_t n = scope ? strlen (scope) : 0;
  return n && strncmp (dir, scope, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

void
sbx_net_record_policy (oj_writer *w, const sbx_net_policy *p)
{
  size_t n;
  const sbx_net_rule *v;

  oj_w_key (w, "scope");
  oj_w_string (w, p->sandbox ? "pod" : "container");
  oj_w_key (w, "pod");
  if (p->pod_id)
    oj_w_string (w, p->pod_id);
  else
    oj_w_null (w);
  oj_w_key (w, "egress");
  oj_w_string (w, p->egress == SBX_NET_EGRESS_DENY ? "deny" : "allowlist");
  for (int k = 0; k < 2; k++)
    {
      v = k ? sbx_net_policy_resolvers (p, &n) : sbx_net_policy_rules (p, &n);
      oj_w_key (w, k ? "resolvers" : "rules");
      oj_w_begin_array (w);
      for (size_t i = 0; i < n; i++)
        {
          cleanup_free char *t = sbx_net_rule_format (&v[i]);
          oj_w_string (w, t);
        }
      oj_w_end_array (w);
    }
}

/* Does q allow everything r does?  */
static bool
rule_covers (const sbx_net_rule *q, const sbx_net_rule *r)
{
  size_t full = q->prefix / 8;
  if (q->family != r->family || q->prefix > r->prefix || memcmp (q->addr, r->addr, full) != 0)
    return false;
  if (q->prefix % 8)
    {
      uint8_t m = (uint8_t)(0xff << (8 - q->prefix % 8));
      if ((q->addr[full] & m) != (r->addr[full] & m))
        return false;
    }
  if (q->proto && q->proto != r->proto)
    return false;
  if (q->port_min && (r->port_min == 0 || r->port_min < q->port_min || r->port_max > q->port_max))
    return false;
  return true;
}

/* Is r within the pod's policy: one of its rules, or port 53 of one of
   its resolvers?  */
static bool
pod_allows (const sbx_net_policy *pod, const sbx_net_rule *r)
{
  for (size_t i = 0; i < pod->nrules; i++)
    if (rule_covers (&pod->rules[i], r))
      return true;
  for (size_t i = 0; i < pod->nresolvers; i++)
    {
      sbx_net_rule d = pod->resolvers[i];
      d.proto = r->proto;
      d.port_min = d.port_max = 53;
      if (r->proto && rule_covers (&d, r))
        return true;
    }
  return false;
}

/* A pod member's own policy may only narrow the pod's.  */
static int
check_narrows (const sbx_net_policy *own, const sbx_net_policy *pod, sbx_error **err)
{
  for (int k = 0; k < 2; k++)
    {
      const sbx_net_rule *v = k ? own->resolvers : own->rules;
      size_t n = k ? own->nresolvers : own->nrules;
      for (size_t i = 0; i < n; i++)
        {
          sbx_net_rule r = v[i];
          bool ok;
          if (k) /* a resolver: UDP and TCP port 53 */
            {
              r.port_min = r.port_max = 53;
              r.proto = IPPROTO_UDP;
              ok = pod_allows (pod, &r);
              r.proto = IPPROTO_TCP;
              ok = ok && pod_allows (pod, &r);
              r = v[i];
            }
          else
            ok = pod_allows (pod, &r);
          if (!ok)
            {
              cleanup_free char *t = sbx_net_rule_format (&r);
              return sbx_error_set (err, EPERM,
                                    "annotation %s: %s `%s` is not allowed by the policy of pod "
                                    "sandbox \"%s\": a container of a pod under a policy may only "
                                    "narrow it (each destination must be allowed by both)",
                                    k ? SBX_NET_DNS : SBX_NET_ALLOW, k ? "resolver" : "destination", t,
                                    pod->pod_id);
            }
        }
    }
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
      const char *eg = annotation (c, SBX_NET_EGRESS);
      cleanup_free char *v = eg ? sbx_net_trimmed (eg) : NULL;
      if (v && strcmp (v, "open") == 0)
        {
          sbx_error_set (err, EPERM,
                         "annotation %s: `open` would widen the policy of pod sandbox \"%s\": a "
                         "container of a pod under a policy may only narrow it",
                         SBX_NET_EGRESS, pod->pod_id);
          goto fail;
        }
      if (p)
        {
          if (check_narrows (p, pod, err) < 0)
            goto fail;
          p->pod_id = steal_ptr (pod->pod_id);
          p->pod_cgroup2 = steal_ptr (pod->pod_cgroup2);
          sbx_net_policy_free (pod);
        }
      else
        {
          p = pod;
          p->inherited = true;
        }
      pod = NULL;
    }
  if (p == NULL)
    return 0;
  p->sandbox = !p->inherited && p->pod_id == NULL && sbx_net_is_sandbox (c);
  if (check_netns (c, err) < 0 || sbx_net_check_caps (c->process, "process", err) < 0)
    goto fail;
  *out = p;
  return 0;

fail:
  sbx_net_policy_free (pod);
  sbx_net_policy_free (p);
  return -1;
}

bool
sbx_net_config_has_policy (const oci_config *c)
{
  const char *allow = annotation (c, SBX_NET_ALLOW);
  const char *egress = annotation (c, SBX_NET_EGRESS);
  cleanup_free char *eg = egress ? sbx_net_trimmed (egress) : NULL;
  if (eg)
    return strcmp (eg, "open") != 0;
  return allow != NULL;
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
