/* egress/egress.h - the egress allowlist: org.sbxrun.net.* annotations turned
 * into nftables rules (libmnl + libnftnl, one atomic netlink batch) inside
 * the container's network namespace, never the host's.
 *
 * Create: sbx_net_policy_parse() validates the annotations and resolves
 * names before anything exists; sbx_net_policy_install() puts the rules in
 * place once the namespaces exist and before any container code or
 * createContainer hook runs.  Delete: sbx_net_teardown_prepare() before the
 * container is killed, sbx_net_teardown_finish() after.
 *
 * Parsing (annotations, entries, resolv.conf) lives in egress/policy.c;
 * the capability and namespace checks in egress/checks.c; pod sandboxes
 * and their members in egress/scope.c; the netlink socket and batches in egress/nl.c; the
 * table, chains, sets and rules in egress/nft.c; the state-directory
 * record (net.json), install and teardown in egress/lifecycle.c.  User documentation: docs/annotations.md. */
#ifndef SBX_EGRESS_EGRESS_H
#define SBX_EGRESS_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "core/core.h"
#include "ocispec.h"

#define SBX_NET_PREFIX "org.sbxrun.net."
#define SBX_NET_ALLOW SBX_NET_PREFIX "allow"
#define SBX_NET_EGRESS SBX_NET_PREFIX "egress"
#define SBX_NET_DNS SBX_NET_PREFIX "dns"
/* Written by sbxrun into the saved config (so the state shows it), never
   accepted from a bundle.  */
#define SBX_NET_RESOLVED SBX_NET_PREFIX "resolved"
/* The record of the installed rules in the state directory.  */
#define SBX_NET_STATE_FILE "net.json"
/* More allowed destinations than this (after resolving names) is
   refused.  They are nftables set elements (egress/sets.c).  */
#define SBX_NET_MAX_RULES 65536
/* The record of denied destinations: at most this many per family, each
   forgotten this long after its last drop.  */
#define SBX_NET_DENIED_MAX 64
#define SBX_NET_DENIED_TIMEOUT_S 3600

typedef enum
{
  SBX_NET_EGRESS_OPEN = 0, /* no rules at all */
  SBX_NET_EGRESS_ALLOWLIST,
  SBX_NET_EGRESS_DENY
} sbx_net_egress_mode;

typedef enum
{
  SBX_NET_DNS_RESOLV = 0, /* the engine's bind at /etc/resolv.conf, else the host's file */
  SBX_NET_DNS_IMAGE,      /* the container's view: a bind's source, else the image's file */
  SBX_NET_DNS_NONE,
  SBX_NET_DNS_LIST
} sbx_net_dns_mode;

/* One allowed destination.  */
typedef struct
{
  int family;        /* AF_INET or AF_INET6 */
  uint8_t addr[16];  /* network byte order, host bits cleared */
  uint8_t prefix;    /* 0..32 or 0..128 */
  uint8_t proto;     /* 0 = every protocol, else IPPROTO_TCP or IPPROTO_UDP */
  uint16_t port_min; /* host order; 0 = every port (then port_max is 0 too) */
  uint16_t port_max;
} sbx_net_rule;

/* One parsed entry of org.sbxrun.net.allow: name is NULL for an address
   (rule complete) and the DNS name otherwise (rule.family 0: the address
   part is filled per resolved address).  */
typedef struct
{
  sbx_net_rule rule;
  char *name;
} sbx_net_entry;

typedef struct sbx_net_policy sbx_net_policy;

/* Parse one entry `[tcp:|udp:]HOST[:PORT[-PORT]]`.  On error returns -1
   and *why (malloc'd) says what is wrong, without the entry itself.  */
int sbx_net_entry_parse (const char *text, sbx_net_entry *out, char **why);
void sbx_net_entry_clear (sbx_net_entry *e);
/* Canonical text of a rule ("tcp:10.0.0.7:8000-8100", "[fd00::/64]",
   "udp:[fd00::53]:53"), malloc'd.  */
char *sbx_net_rule_format (const sbx_net_rule *r);

/* The annotations only: NULL in *out when there is no org.sbxrun.net.*
   annotation or egress is open.  Errors name the annotation and the entry.
   bundle (for relative mount sources) and rootfs locate the container's
   /etc/resolv.conf for dns=resolv; either may be NULL.  */
int sbx_net_policy_from_annotations (const oci_config *c, const char *bundle, const char *rootfs,
                                     sbx_net_policy **out, sbx_error **err);
/* Pods.  A policy on a pod sandbox (CRI or CRI-O annotation) governs the
   whole pod: scoped to the pod's cgroup (the sandbox cgroup's parent).  */
#define SBX_CRI_CONTAINER_TYPE "io.kubernetes.cri.container-type"
#define SBX_CRIO_CONTAINER_TYPE "io.kubernetes.cri-o.ContainerType"
#define SBX_CRI_SANDBOX_ID "io.kubernetes.cri.sandbox-id"
#define SBX_CRIO_SANDBOX_ID "io.kubernetes.cri-o.SandboxID"
bool sbx_net_is_sandbox (const oci_config *c);
/* podman (io.container.manager=libpod): a pod member names its pod's
   infra container in io.kubernetes.cri-o.SandboxID and carries
   ContainerType=container; the infra container carries no type at all, so
   it cannot be told from a lone container at its own create.  */
#define SBX_CONTAINER_MANAGER "io.container.manager"
bool sbx_net_is_podman_infra (const oci_config *c);
bool sbx_net_is_podman_member (const oci_config *c);
/* The sandbox ID a pod member names (CRI / CRI-O annotation), NULL for a
   sandbox or a container outside any pod.  */
const char *sbx_net_sandbox_id (const oci_config *c);
/* Does the container join a network namespace by path?  */
bool sbx_net_joins_netns (const oci_config *c);
/* The policy of sandbox `sandbox_id` from its state directory, when it
   has one and `member` joins its network namespace (by path, same device
   and inode as recorded), and with pod_scope_only when it is a pod
   sandbox's (scoped to the pod): *out NULL otherwise.  */
int sbx_net_pod_load (int sandbox_dirfd, const char *sandbox_id, const oci_config *member,
                      bool pod_scope_only, sbx_net_policy **out, sbx_error **err);

/* A podman pod member (policy p, its pod's or a narrowing one, from
   sbx_net_policy_parse) whose infra container (sandbox_dirfd) has a policy
   scoped to the infra's own cgroup, when the infra's cgroup and the
   member's cgroup cg share their parent (the pod's cgroup, podman's
   `<parent>/<pod id>`): the infra's rules are re-scoped to that parent in
   one batch and its net.json says scope "pod", so that every member is
   covered by the one table, as in a CRI pod.  Call after the member's
   cgroup exists and before sbx_net_policy_install.  */
int sbx_net_pod_share (sbx_net_policy *p, int sandbox_dirfd, const oci_config *c, sbx_cgroup *cg,
                       sbx_error **err);
/* sbx_net_policy_from_annotations, then refuse a policy without a network
   namespace of the container's own (new, or joined by a path that is not
   the runtime's own namespace), and a process that could lift it
   (CAP_NET_ADMIN, ... in any capability set).  pod (taken over, may be
   NULL): the policy of the pod the container belongs to (sbx_net_pod_load);
   the container's own annotations may then only narrow it, and without
   any *out is the pod's.  */
int sbx_net_policy_parse (const oci_config *c, const char *bundle, const char *rootfs, sbx_net_policy *pod,
                          sbx_net_policy **out, sbx_error **err);
/* Refuse CAP_NET_ADMIN in any set of p (what = "process" or "exec").  */
int sbx_net_check_caps (const oci_process *p, const char *what, sbx_error **err);
/* Does the config carry a policy (egress allowlist or deny)?  A cheap look
   at the annotations, for exec on a saved config.  */
bool sbx_net_config_has_policy (const oci_config *c);
/* exec: is the container under a policy (its own, or its pod's: net.json
   in state_dirfd)?  Then refuse the capabilities that lift it, and
   *governed is true (the exec'd process gets the packet-socket filter).  */
int sbx_net_exec_check (const oci_config *c, int state_dirfd, const oci_process *p, bool *governed,
                        sbx_error **err);

/* Allowed destinations, names resolved.  */
const sbx_net_rule *sbx_net_policy_rules (const sbx_net_policy *p, size_t *n);
/* DNS resolvers (UDP and TCP port 53 allowed to each).  */
const sbx_net_rule *sbx_net_policy_resolvers (const sbx_net_policy *p, size_t *n);
/* The resolved names as a JSON object {"name": ["addr", ...]} (for the
   state's org.sbxrun.net.resolved), or NULL when nothing was resolved.
   malloc'd.  */
char *sbx_net_policy_resolved (const sbx_net_policy *p);
/* Add org.sbxrun.net.resolved (when names were resolved) to c's
   annotations, so that the saved config, the state and the hooks show it.  */
void sbx_net_policy_annotate (const sbx_net_policy *p, oci_config *c);
void sbx_net_policy_free (sbx_net_policy *p);
void sbx_net_policy_freep (sbx_net_policy **p);
#define cleanup_net_policy __attribute__ ((cleanup (sbx_net_policy_freep)))

/* ---- nftables (egress/nft.c) */

/* The table ("sbxrun-<id>") and chain ("<id>") names of container id,
   shortened with a hash when the ID is too long for nftables.  malloc'd. */
char *sbx_net_table_name (const char *id);
char *sbx_net_chain_name (const char *id);

/* Install the rules for container `id` in the network namespace netns_fd,
   replacing any left from an earlier container of that ID, in one atomic
   batch.  cgroup2_dir: the container's cgroup directory in the unified
   hierarchy and cgroup2_level its depth (root = 0): the rules then match
   only sockets of that cgroup (nft `socket cgroupv2 level N`); NULL: every
   packet of the namespace (only for a namespace of the container's own).  */
int sbx_net_policy_apply (const sbx_net_policy *p, int netns_fd, const char *id, const char *cgroup2_dir,
                          int cgroup2_level, sbx_error **err);
/* Remove container `id`'s rules from netns_fd; absent rules are fine.  */
int sbx_net_policy_remove (int netns_fd, const char *id, sbx_error **err);
/* Packets and bytes dropped by container `id`'s policy so far.  */
int sbx_net_policy_counters (int netns_fd, const char *id, uint64_t *packets, uint64_t *bytes,
                             sbx_error **err);

/* The destinations container `id`'s policy refused lately, most recent
   first, as a JSON array of {"family", "address", "protocol", "port",
   "count", "bytes", "last"} (malloc'd in *json).  */
int sbx_net_policy_denied (int netns_fd, const char *id, char **json, sbx_error **err);

/* ---- lifecycle glue (egress/lifecycle.c) */

/* create, after the init has its network namespace (netns_fd, its
   /proc/PID/ns/net, borrowed) and before any hook: record net.json in
   state_dirfd, then install the rules in that namespace, scoped to the
   container's cgroup v2 when the host has one (required when the namespace
   was joined by path, unless rootless: a caller without privileges can
   only have joined a namespace of its own user namespaces, whose
   processes are all its own, and the rules then cover the whole
   namespace, with a warning).  */
int sbx_net_policy_install (const sbx_net_policy *p, const oci_config *c, int netns_fd, const char *id,
                            sbx_cgroup *cg, bool rootless, int state_dirfd, sbx_error **err);
/* The network namespace of a container with a policy, for removing its
   rules: the joined path from net.json (if it is still the same
   namespace), else live_pid's namespace (pass 0 once the init is gone).
   NULL when there is nothing to remove.  Call before killing the init.  */
typedef struct sbx_net_teardown sbx_net_teardown;
sbx_net_teardown *sbx_net_teardown_prepare (int state_dirfd, const char *id, pid_t live_pid);
/* Remove the rules (a failure is a warning) and free; NULL is fine.  */
void sbx_net_teardown_finish (sbx_net_teardown *t);
/* Pods: a pod sandbox's table is the pod's, so it stays while members of
   the pod remain, and goes with the last of them (docs/annotations.md
   "Pods").  The pod of a teardown: its own ID for a pod sandbox
   (*sandbox true), the sandbox's for a member, NULL otherwise.  */
const char *sbx_net_teardown_pod (const sbx_net_teardown *t, bool *sandbox);
/* Is the container whose state directory is dirfd a member of t's pod,
   in the same namespace (its net.json)?  */
bool sbx_net_teardown_member (const sbx_net_teardown *t, int dirfd);
/* For a member's t: does dirfd (the sandbox's state directory) still hold
   the pod's table (its net.json, scope pod, the same namespace)?  */
bool sbx_net_teardown_holder (const sbx_net_teardown *t, int dirfd);
/* What finish does with the pod's table: a sandbox keeps it when members
   are left; a member removes it too when none is (its sandbox gone).  */
void sbx_net_teardown_pod_table (sbx_net_teardown *t, bool members_left);
/* Forget the record (net.json): the container no longer counts for its
   pod.  */
void sbx_net_record_drop (int state_dirfd);
/* The sandbox whose policy governs p (a pod member's), or NULL.  */
const char *sbx_net_policy_pod (const sbx_net_policy *p);
/* create, under the root's lock (sbx_state_lock_root) and right before
   sbx_net_policy_install: is p's pod sandbox (its state directory
   sandbox_dirfd, -1 when gone) still holding the pod's rules in
   netns_fd?  0 when it is or p is no member; an error otherwise (the
   sandbox was deleted after the member found it).  */
int sbx_net_pod_held (const sbx_net_policy *p, int sandbox_dirfd, int netns_fd, sbx_error **err);
/* Dropped-packet counters of a container from its state directory
   (for `events --stats`): -1 with ENOENT when it has no policy or its
   namespace is gone.  */
int sbx_net_container_counters (int state_dirfd, const char *id, pid_t live_pid, uint64_t *packets,
                                uint64_t *bytes, sbx_error **err);

/* sbx_net_policy_denied for a container from its state directory: NULL
   when it has no policy or its namespace is gone.  */
char *sbx_net_container_denied (int state_dirfd, const char *id, pid_t live_pid);
/* Shown by `state` (computed, never accepted from a bundle).  */
#define SBX_NET_DENIED SBX_NET_PREFIX "denied"

/* The annotations we understand, for `features`: name and a short
   description; ends with { NULL, NULL }.  */
typedef struct
{
  const char *name;
  const char *description;
} sbx_net_annotation;
extern const sbx_net_annotation sbx_net_annotations[];

#endif
