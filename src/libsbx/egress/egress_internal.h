/* egress/egress_internal.h - shared by the egress files: the netfilter
 * netlink context (nl.c) and the libnftnl expression helpers.  */
#ifndef SBX_EGRESS_INTERNAL_H
#define SBX_EGRESS_INTERNAL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "egress/egress.h"

/* One netfilter netlink socket in a container's namespace and the batch
   being built.  */
typedef struct
{
  struct mnl_socket *nl;
  char *buf; /* the batch */
  size_t cap;
  struct mnl_nlmsg_batch *b;
  uint32_t seq0, seq;
  char **what; /* description of each message, by seq - seq0 */
  size_t nwhat;
  bool overflow;
  uint32_t set_ids;
  bool deleted; /* the batch deletes something: see egr_nl_ctx_release */
} nl_ctx;

/* The name (comm) of the short-lived process that closes a socket whose
   batch deleted something (nl.c).  */
#define EGR_NL_CLOSER_COMM "sbxrun-nlclose"

typedef int (*nl_reply_cb) (const struct nlmsghdr *nlh, void *data);

/* Free x and close its socket: when its batch deleted something, the
   last close (which waits for an RCU grace period) is a detached
   child's.  */
void egr_nl_ctx_release (nl_ctx *x);
/* A netfilter netlink socket of the namespace netns_fd (setns there and
   straight back).  */
int egr_nl_open (nl_ctx *x, int netns_fd, sbx_error **err);
/* A batch with room for about nmsgs messages.  */
void egr_batch_start (nl_ctx *x, size_t nmsgs, size_t extra_bytes);
/* The header of the next message; `what` describes it for errors (taken). */
struct nlmsghdr *egr_batch_msg (nl_ctx *x, uint16_t type, uint16_t flags, char *what);
void egr_batch_done_msg (nl_ctx *x);
/* Send len bytes, read replies until the ack of `last`; cb sees the rest. */
int egr_nl_talk (nl_ctx *x, const void *buf, size_t len, uint32_t last, nl_reply_cb cb, void *data,
                 sbx_error **err);
/* Send the batch and wait until the kernel has applied it (or not).  */
int egr_batch_commit (nl_ctx *x, sbx_error **err);

/* Expressions appended to r; values go through register 1.  */
struct nftnl_expr *egr_expr_new (struct nftnl_rule *r, const char *name);
void egr_x_meta (struct nftnl_rule *r, uint32_t key);
void egr_x_cmp (struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len);
void egr_x_payload (struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len);
void egr_x_mask (struct nftnl_rule *r, const void *mask, uint32_t len);
void egr_x_range (struct nftnl_rule *r, const void *from, const void *to, uint32_t len);
void egr_x_verdict (struct nftnl_rule *r, int verdict, const char *chain);
void egr_x_u8_eq (struct nftnl_rule *r, uint32_t meta_key, uint8_t v);
/* The len-byte network mask of a prefix length.  */
void egr_prefix_mask (uint8_t *mask, uint32_t len, int prefix);
/* meta nfproto, then the destination address masked to d's prefix.  */
void egr_x_daddr (struct nftnl_rule *r, const sbx_net_rule *d);
void egr_x_dport (struct nftnl_rule *r, uint16_t lo, uint16_t hi);

/* With an explicit destination register (NFT_REG_1, NFT_REG32_xx).  */
void egr_x_meta_to (struct nftnl_rule *r, uint32_t key, uint32_t dreg);
void egr_x_payload_to (struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);

/* ---- sets.c: the allowed destinations as sets */

/* The kinds of allow set, per family (N = 4 or 6):
     EGR_ALLOW      allowN      address . protocol           interval (pipapo)
     EGR_PORTS      portsN      address . protocol . port    interval (pipapo)
     EGR_HOSTS      hostsN      address (any protocol)       hash
     EGR_HOSTPORTS  hostportsN  address . protocol . port    hash
     EGR_NETS       netsN       address range (any protocol) interval (rbtree)
     EGR_PFX + i    netsN_L     address & /L mask (any       hash
                                protocol), up to EGR_PFX_MAX prefix lengths
   Elements that are one address (and one protocol and port) go to the
   hash sets, whose inserts cost the same at any size; address ranges
   with every protocol are split into CIDR blocks, and the prefix lengths
   that many blocks share get a hash set each (looked up with the address
   masked to that length: a fraction of an interval insert, which is two
   rbtree elements a range); the other ranges go to the one-field interval
   set, whose inserts cost little more as it grows; only ranges of several
   fields go to the concatenated interval sets, where an insert costs more
   as the set grows.  */
#define EGR_PFX_MAX 8
enum
{
  EGR_ALLOW,
  EGR_PORTS,
  EGR_HOSTS,
  EGR_HOSTPORTS,
  EGR_NETS,
  EGR_PFX,
  EGR_KINDS = EGR_PFX + EGR_PFX_MAX
};

/* Per family (0: IPv4, 1: IPv6) and kind: disjoint elements.  */
typedef struct
{
  void *raw[2][2], *elems[2][EGR_KINDS];
  size_t n[2][EGR_KINDS];
  /* the prefix length of an EGR_PFX kind's set */
  uint8_t prefix[2][EGR_KINDS];
  char names[2][EGR_KINDS][24];
  /* some entry meets the family's multicast range: reports go out */
  bool multicast[2];
} egr_sets;

void egr_sets_build (egr_sets *s, const sbx_net_policy *p);
void egr_sets_free (egr_sets *s);
/* Elements of all allow sets.  */
size_t egr_sets_count (const egr_sets *s);
const char *egr_set_name (const egr_sets *s, int v6, int kind);
/* Fields of a kind's key: 1 address, 2 address . protocol, 3 address .
   protocol . port.  */
int egr_set_fields (int kind);
/* Bytes of key: address[, protocol (4 with padding)[, port (4)]].  */
uint32_t egr_key_len (int v6, int fields);
/* A NEWSET of that key; expr (taken) is a per-element template.  */
void egr_set_msg (nl_ctx *x, const char *table, const char *name, int v6, int fields, uint32_t flags,
                  uint32_t size, uint64_t timeout_ms, struct nftnl_expr *expr);
/* NEWSET and NEWSETELEM messages of the allow sets that have elements.  */
void egr_sets_msgs (nl_ctx *x, const char *table, const egr_sets *s);
/* Batch room they need.  */
size_t egr_sets_batch_bytes (const egr_sets *s);

/* ---- policy.c, scope.c: the policy itself and pods */

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
  char *pod_netns;   /* that sandbox's recorded namespace path, or NULL */
};

/* The most net.json may hold: it lists every allowed destination (up to
   SBX_NET_MAX_RULES, ~50 bytes each as text).  */
#define SBX_NET_RECORD_MAX (16u << 20)
/* s without leading and trailing white space, malloc'd.  */
char *sbx_net_trimmed (const char *s);
struct oj_writer;
struct oj_value;
/* Add the policy's keys to net.json (inside its object): scope, pod,
   egress, rules, resolvers, so that a pod member can rebuild it.  */
void sbx_net_record_policy (struct oj_writer *w, const sbx_net_policy *p);
/* A pod member's own policy p within the pod's (scope.c); else an error
   naming the entry.  */
int sbx_net_check_narrows (const sbx_net_policy *p, const sbx_net_policy *pod, sbx_error **err);
/* Does q allow every destination p does (q's entries taken together:
   10.0.0.0/25 and 10.0.0.128/25 allow 10.0.0.0/24)?  */
bool sbx_net_policy_within (const sbx_net_policy *p, const sbx_net_policy *q);
/* linux.namespaces' network path, NULL for a new namespace or none.  */
const char *sbx_net_joined_netns (const oci_config *c);
/* Is v the JSON number want?  */
bool sbx_net_json_uint_is (const struct oj_value *v, unsigned long long want);
/* The pod's cgroup of a sandbox's cgroup directory: its parent
   (malloc'd), NULL at the root.  */
char *sbx_net_pod_scope (const char *sandbox_cgroup2);
/* Is cgroup directory dir scope itself or below it?  */
bool sbx_net_cgroup_within (const char *dir, const char *scope);

#endif
