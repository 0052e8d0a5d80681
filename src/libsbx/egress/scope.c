/* egress/scope.c - pods: which container is a sandbox, which sandbox a
 * member belongs to, the sandbox's policy rebuilt from its net.json, and
 * the rule that a member may only narrow it (see egress.h,
 * docs/annotations.md "Pods").  */
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
  if (sbx_read_fd (fd, SBX_NET_RECORD_MAX, &text, NULL, err) < 0)
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
int
sbx_net_check_narrows (const sbx_net_policy *own, const sbx_net_policy *pod, sbx_error **err)
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
