/* egress/egress_internal.h - what policy.c, scope.c and nft.c share.  */
#ifndef SBX_EGRESS_INTERNAL_H
#define SBX_EGRESS_INTERNAL_H

#include "egress/egress.h"

struct sbx_net_policy
{
  sbx_net_egress_mode egress;
  sbx_net_dns_mode dns;
  sbx_net_rule *rules;
  size_t nrules;
  sbx_net_rule *resolvers;
  size_t nresolvers;
  char *resolved; /* JSON object text, or NULL */
  /* Pods (scope.c): */
  bool sandbox;      /* a pod sandbox's: scoped to the pod's cgroup */
  bool inherited;    /* the pod's own policy, applied to a member without annotations */
  char *pod_id;      /* the sandbox whose policy governs this container, or NULL */
  char *pod_cgroup2; /* that policy's scope (a cgroup v2 directory), or NULL */
};

struct oj_writer;
/* Add the policy's keys to net.json (inside its object): scope, pod,
   egress, rules, resolvers, so that a pod member can rebuild it.  */
void sbx_net_record_policy (struct oj_writer *w, const sbx_net_policy *p);

/* s without leading and trailing white space, malloc'd.  */
char *sbx_net_trimmed (const char *s);
/* linux.namespaces' network path, NULL for a new namespace or none.  */
const char *sbx_net_joined_netns (const oci_config *c);
struct oj_value;
/* Is v the JSON number want?  */
bool sbx_net_json_uint_is (const struct oj_value *v, unsigned long long want);

/* The pod's cgroup of a sandbox's cgroup directory: its parent
   (malloc'd), NULL at the root.  */
char *sbx_net_pod_scope (const char *sandbox_cgroup2);
/* Is cgroup directory dir scope itself or below it?  */
bool sbx_net_cgroup_within (const char *dir, const char *scope);

#endif
