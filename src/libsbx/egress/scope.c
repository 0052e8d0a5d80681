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

/* podman: the infra container of a pod carries no container type (only
   its members do, with the infra's ID as SandboxID).  */
bool
sbx_net_is_podman_infra (const oci_config *c)
{
  const char *m = annotation (c, SBX_CONTAINER_MANAGER);
  return m && strcmp (m, "libpod") == 0 && annotation (c, SBX_CRIO_CONTAINER_TYPE) == NULL
         && annotation (c, SBX_CRI_CONTAINER_TYPE) == NULL;
}

bool
sbx_net_is_podman_member (const oci_config *c)
{
  const char *m = annotation (c, SBX_CONTAINER_MANAGER), *t = annotation (c, SBX_CRIO_CONTAINER_TYPE);
  return m && strcmp (m, "libpod") == 0 && t && strcmp (t, "container") == 0
         && annotation (c, SBX_CRIO_SANDBOX_ID) != NULL;
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
  cg = oj_object_get (rec, "scope");
  p->sandbox = cg && cg->type == OJ_STRING && strcmp (cg->text, "pod") == 0;
  cg = oj_object_get (rec, "cgroup2");
  p->pod_cgroup2 = cg && cg->type == OJ_STRING ? xstrdup (cg->text) : NULL;
  cg = oj_object_get (rec, "netnsPath");
  p->pod_netns = cg && cg->type == OJ_STRING ? xstrdup (cg->text) : NULL;
  cg = oj_object_get (rec, "resolved");
  if (cg && cg->type == OJ_OBJECT && cg->len)
    {
      oj_writer *w = oj_writer_new (false);
      oj_w_value (w, cg);
      p->resolved = oj_writer_finish (w, NULL);
    }
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

/* ---------------------------------------------------------------- narrowing */

/* What a rule allows as a box: addresses lo..hi (as numbers) times
   values vlo..vhi of protocol << 16 | port, the way the sets match
   (egress/sets.c): an entry without a port allows every port of its
   protocol(s), and one without a protocol every protocol.  */
typedef unsigned __int128 u128;
typedef struct
{
  int family;
  u128 lo, hi;
  uint32_t vlo, vhi;
} cbox;

static cbox
rule_box (const sbx_net_rule *r)
{
  int len = r->family == AF_INET6 ? 16 : 4, host = len * 8 - r->prefix;
  u128 a = 0, m = host >= 128 ? ~(u128)0 : (((u128)1 << host) - 1);
  cbox b = { .family = r->family };
  for (int i = 0; i < len; i++)
    a = a << 8 | r->addr[i];
  b.lo = a & ~m;
  b.hi = a | m;
  if (r->port_min == 0)
    {
      b.vlo = (uint32_t)r->proto << 16;
      b.vhi = r->proto ? (uint32_t)r->proto << 16 | 0xffff : 0xffffff;
    }
  else
    {
      b.vlo = (uint32_t)r->proto << 16 | r->port_min;
      b.vhi = (uint32_t)r->proto << 16 | r->port_max;
    }
  return b;
}

/* A resolver's rule for proto: port 53.  */
static sbx_net_rule
resolver_rule (const sbx_net_rule *r, uint8_t proto)
{
  sbx_net_rule d = *r;
  d.proto = proto;
  d.port_min = d.port_max = 53;
  return d;
}

/* Everything a policy allows: its rules, and UDP and TCP port 53 of its
   resolvers.  *n boxes, malloc'd.  */
static cbox *
policy_boxes (const sbx_net_policy *p, size_t *n)
{
  cbox *v = xmalloc0 ((p->nrules + 2 * p->nresolvers + 1) * sizeof *v);
  *n = 0;
  for (size_t i = 0; i < p->nrules; i++)
    v[(*n)++] = rule_box (&p->rules[i]);
  for (size_t i = 0; i < p->nresolvers; i++)
    for (int k = 0; k < 2; k++)
      {
        sbx_net_rule d = resolver_rule (&p->resolvers[i], k ? IPPROTO_TCP : IPPROTO_UDP);
        v[(*n)++] = rule_box (&d);
      }
  return v;
}

static int
u128_cmp (const void *a, const void *b)
{
  u128 x = *(const u128 *)a, y = *(const u128 *)b;
  return x < y ? -1 : x > y;
}

static int
by_vlo (const void *a, const void *b)
{
  const cbox *x = a, *y = b;
  return x->vlo < y->vlo ? -1 : x->vlo > y->vlo;
}

/* Is box r within the union of v[0..n)?  The boxes meeting r, clipped to
   it, cut its addresses into segments at their edges; over each segment
   the same boxes hold, and their value ranges must cover r's.  */
static bool
union_covers (const cbox *v, size_t n, const cbox *r)
{
  cbox *c = xmalloc0 ((n + 1) * sizeof *c), *on = xmalloc0 ((n + 1) * sizeof *on);
  u128 *bound = xmalloc0 ((2 * n + 1) * sizeof *bound);
  size_t k = 0, nb = 0;
  bool ok = true;

  for (size_t i = 0; i < n; i++)
    {
      cbox b = v[i];
      if (b.family != r->family || b.hi < r->lo || b.lo > r->hi || b.vhi < r->vlo || b.vlo > r->vhi)
        continue;
      b.lo = b.lo < r->lo ? r->lo : b.lo;
      b.hi = b.hi > r->hi ? r->hi : b.hi;
      b.vlo = b.vlo < r->vlo ? r->vlo : b.vlo;
      b.vhi = b.vhi > r->vhi ? r->vhi : b.vhi;
      c[k++] = b;
    }
  bound[nb++] = r->lo;
  for (size_t i = 0; i < k; i++)
    {
      if (c[i].lo > r->lo)
        bound[nb++] = c[i].lo;
      if (c[i].hi < r->hi)
        bound[nb++] = c[i].hi + 1;
    }
  qsort (bound, nb, sizeof *bound, u128_cmp);
  for (size_t j = 0; j < nb && ok; j++)
    {
      uint64_t need = r->vlo;
      size_t non = 0;
      if (j && bound[j] == bound[j - 1])
        continue;
      for (size_t i = 0; i < k; i++)
        if (c[i].lo <= bound[j] && c[i].hi >= bound[j])
          on[non++] = c[i];
      qsort (on, non, sizeof *on, by_vlo);
      for (size_t i = 0; i < non && need <= r->vhi; i++)
        {
          if (on[i].vlo > need)
            break;
          if ((uint64_t)on[i].vhi + 1 > need)
            need = (uint64_t)on[i].vhi + 1;
        }
      ok = need > r->vhi;
    }
  free (c);
  free (on);
  free (bound);
  return ok;
}

/* The first destination (a rule, or a resolver: then *resolver) of `own`
   that `in` does not allow, all of `in`'s entries together; NULL when
   own is within in.  */
static const sbx_net_rule *
first_outside (const sbx_net_policy *own, const sbx_net_policy *in, bool *resolver)
{
  size_t n;
  cleanup_free cbox *v = policy_boxes (in, &n);
  for (int k = 0; k < 2; k++)
    {
      const sbx_net_rule *rv = k ? own->resolvers : own->rules;
      size_t nr = k ? own->nresolvers : own->nrules;
      for (size_t i = 0; i < nr; i++)
        {
          bool ok;
          *resolver = k;
          if (k) /* a resolver: UDP and TCP port 53 */
            {
              sbx_net_rule u = resolver_rule (&rv[i], IPPROTO_UDP), t = resolver_rule (&rv[i], IPPROTO_TCP);
              cbox bu = rule_box (&u), bt = rule_box (&t);
              ok = union_covers (v, n, &bu) && union_covers (v, n, &bt);
            }
          else
            {
              cbox b = rule_box (&rv[i]);
              ok = union_covers (v, n, &b);
            }
          if (!ok)
            return &rv[i];
        }
    }
  return NULL;
}

bool
sbx_net_policy_within (const sbx_net_policy *p, const sbx_net_policy *q)
{
  bool resolver;
  return first_outside (p, q, &resolver) == NULL;
}

/* A pod member's own policy may only narrow the pod's.  */
int
sbx_net_check_narrows (const sbx_net_policy *own, const sbx_net_policy *pod, sbx_error **err)
{
  bool resolver = false;
  const sbx_net_rule *r = first_outside (own, pod, &resolver);
  cleanup_free char *t = NULL;
  if (r == NULL)
    return 0;
  t = sbx_net_rule_format (r);
  return sbx_error_set (err, EPERM,
                        "annotation %s: %s `%s` is not allowed by the policy of pod "
                        "sandbox \"%s\": a container of a pod under a policy may only "
                        "narrow it (each destination must be allowed by the pod's entries)",
                        resolver ? SBX_NET_DNS : SBX_NET_ALLOW, resolver ? "resolver" : "destination", t,
                        pod->pod_id);
}
