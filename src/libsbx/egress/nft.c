/* egress/nft.c - the egress policy in nftables (see egress.h): netlink
 * with libmnl + libnftnl, run from the runtime against the container's
 * network namespace, and the record of it in the state directory.
 *
 * One table per container, family inet (IPv4 and IPv6):
 *
 *   table inet sbxrun-<id>
 *     counter dropped
 *     chain output { type filter hook output priority 0; policy accept;
 *       socket cgroupv2 level N "<container cgroup>" jump <id>   (scoped)
 *       jump <id>                                                (unscoped) }
 *     chain <id> {
 *       oif lo accept
 *       ct state established,related accept
 *       [unscoped: ICMPv6 neighbour discovery and MLD, IGMP accept]
 *       <each allowed destination> accept
 *       <each resolver> udp/tcp dport 53 accept
 *       counter name dropped
 *       meta l4proto tcp reject with tcp reset
 *       meta l4proto ipv6-icmp reject with icmpx admin-prohibited
 *       drop }
 *
 * A TCP connect to a blocked destination gets the reset and fails with
 * ECONNREFUSED at once; anything else is dropped in the output hook, which
 * makes sendmsg fail with EPERM at once -- except an ICMPv6 ping socket,
 * whose sendmsg ignores that verdict: the admin-prohibited error is the
 * only way to tell it (EACCES, if it is connected or has IPV6_RECVERR).
 * Nothing waits for a timeout.
 *
 * The netlink socket is opened inside the container's namespace (setns
 * there and straight back), so the runtime never runs anything else in it;
 * every change goes in one batch, which the kernel applies atomically.  */
#include <config.h>
#include "egress/egress_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/core.h"

#define NFT_NAME_MAX 255 /* NFT_NAME_MAXLEN without the NUL */
#define BASE_CHAIN "output"
#define COUNTER "dropped"

/* conntrack state bits as the ct expression reports them
   (NF_CT_STATE_BIT of IP_CT_ESTABLISHED and IP_CT_RELATED).  */
#define CT_STATE_ESTABLISHED (1u << 1)
#define CT_STATE_RELATED (1u << 2)
/* ---------------------------------------------------------------- names */

static uint64_t
fnv1a (const char *s)
{
  uint64_t h = 14695981039346656037ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static char *
nft_name (const char *prefix, const char *id)
{
  size_t room = NFT_NAME_MAX - strlen (prefix);
  if (strlen (id) <= room)
    return xasprintf ("%s%s", prefix, id);
  return xasprintf ("%s%.*s-%016llx", prefix, (int)(room - 17), id, (unsigned long long)fnv1a (id));
}

char *
sbx_net_table_name (const char *id)
{
  return nft_name ("sbxrun-", id);
}

char *
sbx_net_chain_name (const char *id)
{
  return nft_name ("", id);
}

typedef struct
{
  nl_ctx *x;
  const char *table, *chain;
} rule_ctx;

static struct nftnl_rule *
rule_new (const rule_ctx *rc, const char *chain)
{
  struct nftnl_rule *r = nftnl_rule_alloc ();
  if (r == NULL)
    abort ();
  nftnl_rule_set_u32 (r, NFTNL_RULE_FAMILY, NFPROTO_INET);
  nftnl_rule_set_str (r, NFTNL_RULE_TABLE, rc->table);
  nftnl_rule_set_str (r, NFTNL_RULE_CHAIN, chain ? chain : rc->chain);
  return r;
}

static void
rule_add (const rule_ctx *rc, struct nftnl_rule *r, char *what)
{
  struct nlmsghdr *nlh = egr_batch_msg (rc->x, NFT_MSG_NEWRULE, NLM_F_APPEND | NLM_F_CREATE, what);
  nftnl_rule_nlmsg_build_payload (nlh, r);
  nftnl_rule_free (r);
  egr_batch_done_msg (rc->x);
}

/* The accept rule for one destination (proto/ports from d).  */
static void
rule_allow (const rule_ctx *rc, const sbx_net_rule *d, const char *kind)
{
  struct nftnl_rule *r = rule_new (rc, NULL);
  cleanup_free char *text = sbx_net_rule_format (d);
  egr_x_daddr (r, d);
  if (d->proto)
    egr_x_u8_eq (r, NFT_META_L4PROTO, d->proto);
  if (d->port_min)
    egr_x_dport (r, d->port_min, d->port_max);
  egr_x_verdict (r, NF_ACCEPT, NULL);
  rule_add (rc, r, xasprintf ("nftables rule allowing %s %s", kind, text));
}

static void
build_policy_rules (const rule_ctx *rc, const sbx_net_policy *p, bool scoped)
{
  struct nftnl_rule *r;
  size_t n;
  const sbx_net_rule *v;

  /* oif lo accept: loopback, and every local address (routed via lo).  */
  r = rule_new (rc, NULL);
  {
    uint32_t lo = 1; /* the loopback device is ifindex 1 in every namespace */
    egr_x_meta (r, NFT_META_OIF);
    egr_x_cmp (r, NFT_CMP_EQ, &lo, sizeof lo);
  }
  egr_x_verdict (r, NF_ACCEPT, NULL);
  rule_add (rc, r, xstrdup ("nftables rule allowing loopback"));

  /* ct state established,related accept  */
  r = rule_new (rc, NULL);
  {
    struct nftnl_expr *e = egr_expr_new (r, "ct");
    uint32_t mask = CT_STATE_ESTABLISHED | CT_STATE_RELATED, zero = 0;
    nftnl_expr_set_u32 (e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
    nftnl_expr_set_u32 (e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
    egr_x_mask (r, &mask, sizeof mask);
    egr_x_cmp (r, NFT_CMP_NEQ, &zero, sizeof zero);
  }
  egr_x_verdict (r, NF_ACCEPT, NULL);
  rule_add (rc, r, xstrdup ("nftables rule allowing established connections"));

  if (!scoped)
    {
      /* The kernel's own neighbour discovery and multicast listener
         reports (MLD, IGMP) go through this hook too when the whole
         namespace is filtered; without them IPv6 breaks on the link.  */
      static const struct
      {
        uint8_t from, to;
      } icmp6[] = { { 130, 137 }, { 143, 143 } };
      for (size_t i = 0; i < sizeof icmp6 / sizeof *icmp6; i++)
        {
          r = rule_new (rc, NULL);
          egr_x_u8_eq (r, NFT_META_NFPROTO, NFPROTO_IPV6);
          egr_x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
          egr_x_payload (r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
          if (icmp6[i].from == icmp6[i].to)
            egr_x_cmp (r, NFT_CMP_EQ, &icmp6[i].from, 1);
          else
            egr_x_range (r, &icmp6[i].from, &icmp6[i].to, 1);
          egr_x_verdict (r, NF_ACCEPT, NULL);
          rule_add (rc, r, xstrdup ("nftables rule allowing IPv6 neighbour discovery and MLD"));
        }
      r = rule_new (rc, NULL);
      egr_x_u8_eq (r, NFT_META_NFPROTO, NFPROTO_IPV4);
      egr_x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_IGMP);
      egr_x_verdict (r, NF_ACCEPT, NULL);
      rule_add (rc, r, xstrdup ("nftables rule allowing IGMP"));
    }

  v = sbx_net_policy_rules (p, &n);
  for (size_t i = 0; i < n; i++)
    rule_allow (rc, &v[i], "destination");
  v = sbx_net_policy_resolvers (p, &n);
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 2; k++)
      {
        sbx_net_rule d = v[i];
        d.proto = k ? IPPROTO_TCP : IPPROTO_UDP;
        d.port_min = d.port_max = 53;
        rule_allow (rc, &d, "resolver");
      }

  /* counter name dropped; meta l4proto tcp reject with tcp reset; drop  */
  r = rule_new (rc, NULL);
  {
    struct nftnl_expr *e = egr_expr_new (r, "objref");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
    nftnl_expr_set_str (e, NFTNL_EXPR_OBJREF_IMM_NAME, COUNTER);
  }
  rule_add (rc, r, xstrdup ("nftables rule counting drops"));
  r = rule_new (rc, NULL);
  egr_x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_TCP);
  {
    struct nftnl_expr *e = egr_expr_new (r, "reject");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
    nftnl_expr_set_u8 (e, NFTNL_EXPR_REJECT_CODE, 0);
  }
  rule_add (rc, r, xstrdup ("nftables rule rejecting TCP"));
  /* The drop alone is silent for ICMPv6: ping_v6_sendmsg does not return
     the output hook's verdict, so the echo "succeeds".  An
     admin-prohibited error sent back makes a connected or IPV6_RECVERR
     socket fail with EACCES at once.  */
  r = rule_new (rc, NULL);
  egr_x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
  {
    struct nftnl_expr *e = egr_expr_new (r, "reject");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
    nftnl_expr_set_u8 (e, NFTNL_EXPR_REJECT_CODE, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
  }
  rule_add (rc, r, xstrdup ("nftables rule rejecting ICMPv6"));
  r = rule_new (rc, NULL);
  egr_x_verdict (r, NF_DROP, NULL);
  rule_add (rc, r, xstrdup ("nftables rule dropping the rest"));
}

static void
table_msg (nl_ctx *x, const char *table, uint16_t type, uint16_t flags, char *what)
{
  struct nftnl_table *t = nftnl_table_alloc ();
  struct nlmsghdr *nlh;
  if (t == NULL)
    abort ();
  nftnl_table_set_u32 (t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_str (t, NFTNL_TABLE_NAME, table);
  nlh = egr_batch_msg (x, type, flags, what);
  nftnl_table_nlmsg_build_payload (nlh, t);
  nftnl_table_free (t);
  egr_batch_done_msg (x);
}

/* Add then delete the table: removes it whether it existed or not.  */
static void
table_drop (nl_ctx *x, const char *table)
{
  table_msg (x, table, NFT_MSG_NEWTABLE, NLM_F_CREATE, xasprintf ("nftables table `%s`", table));
  table_msg (x, table, NFT_MSG_DELTABLE, 0, xasprintf ("delete nftables table `%s`", table));
}

static void
chain_msg (nl_ctx *x, const char *table, const char *name, bool base)
{
  struct nftnl_chain *c = nftnl_chain_alloc ();
  struct nlmsghdr *nlh;
  if (c == NULL)
    abort ();
  nftnl_chain_set_u32 (c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str (c, NFTNL_CHAIN_TABLE, table);
  nftnl_chain_set_str (c, NFTNL_CHAIN_NAME, name);
  if (base)
    {
      nftnl_chain_set_u32 (c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_OUT);
      nftnl_chain_set_s32 (c, NFTNL_CHAIN_PRIO, 0);
      nftnl_chain_set_str (c, NFTNL_CHAIN_TYPE, "filter");
      nftnl_chain_set_u32 (c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    }
  nlh = egr_batch_msg (x, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
                       xasprintf ("nftables chain `%s`%s", name, base ? " (output hook)" : ""));
  nftnl_chain_nlmsg_build_payload (nlh, c);
  nftnl_chain_free (c);
  egr_batch_done_msg (x);
}

static void
counter_msg (nl_ctx *x, const char *table)
{
  struct nftnl_obj *o = nftnl_obj_alloc ();
  struct nlmsghdr *nlh;
  if (o == NULL)
    abort ();
  nftnl_obj_set_u32 (o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
  nftnl_obj_set_str (o, NFTNL_OBJ_TABLE, table);
  nftnl_obj_set_str (o, NFTNL_OBJ_NAME, COUNTER);
  nftnl_obj_set_u32 (o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
  nftnl_obj_set_u64 (o, NFTNL_OBJ_CTR_PKTS, 0);
  nftnl_obj_set_u64 (o, NFTNL_OBJ_CTR_BYTES, 0);
  nlh = egr_batch_msg (x, NFT_MSG_NEWOBJ, NLM_F_CREATE, xstrdup ("nftables counter `" COUNTER "`"));
  nftnl_obj_nlmsg_build_payload (nlh, o);
  nftnl_obj_free (o);
  egr_batch_done_msg (x);
}

int
sbx_net_policy_apply (const sbx_net_policy *p, int netns_fd, const char *id, const char *cgroup2_dir,
                      int cgroup2_level, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id), *chain = sbx_net_chain_name (id);
  rule_ctx rc = { &x, table, chain };
  size_t nrules, nres;
  uint64_t cgid = 0;
  int r = -1;

  if (cgroup2_dir)
    {
      struct stat st;
      /* The cgroup ID the socket expression compares is the inode number
         of the cgroup's directory (kernfs node id).  */
      if (stat (cgroup2_dir, &st) < 0)
        return sbx_error_sys (err, "cgroup `%s`", cgroup2_dir);
      cgid = st.st_ino;
    }
  sbx_net_policy_rules (p, &nrules);
  sbx_net_policy_resolvers (p, &nres);
  if (egr_nl_open (&x, netns_fd, err) < 0)
    goto out;
  egr_batch_start (&x, nrules + 2 * nres + 16);
  table_drop (&x, table);
  table_msg (&x, table, NFT_MSG_NEWTABLE, NLM_F_CREATE, xasprintf ("nftables table `%s`", table));
  counter_msg (&x, table);
  chain_msg (&x, table, BASE_CHAIN, true);
  chain_msg (&x, table, chain, false);
  {
    struct nftnl_rule *jr = rule_new (&rc, BASE_CHAIN);
    if (cgroup2_dir)
      {
        struct nftnl_expr *e = egr_expr_new (jr, "socket");
        nftnl_expr_set_u32 (e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_CGROUPV2);
        nftnl_expr_set_u32 (e, NFTNL_EXPR_SOCKET_LEVEL, (uint32_t)cgroup2_level);
        nftnl_expr_set_u32 (e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
        egr_x_cmp (jr, NFT_CMP_EQ, &cgid, sizeof cgid);
      }
    egr_x_verdict (jr, NFT_JUMP, chain);
    rule_add (&rc, jr,
              cgroup2_dir ? xasprintf ("nftables rule matching the sockets of cgroup `%s`", cgroup2_dir)
                          : xstrdup ("nftables rule jumping to the policy"));
  }
  build_policy_rules (&rc, p, cgroup2_dir != NULL);
  if (egr_batch_commit (&x, err) < 0)
    {
      sbx_error_wrap (err, "install the egress policy");
      goto out;
    }
  egr_nl_park (&x);
  r = 0;
out:
  egr_nl_ctx_release (&x);
  return r;
}

int
sbx_net_policy_remove (int netns_fd, const char *id, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id);
  int r = -1;

  if (egr_nl_open (&x, netns_fd, err) < 0)
    goto out;
  egr_batch_start (&x, 4);
  table_drop (&x, table);
  if (egr_batch_commit (&x, err) < 0)
    {
      sbx_error_wrap (err, "remove the egress policy");
      goto out;
    }
  r = 0;
out:
  egr_nl_ctx_release (&x);
  return r;
}

struct counter_reply
{
  uint64_t packets, bytes;
  bool seen;
};

static int
on_counter (const struct nlmsghdr *nlh, void *data)
{
  struct counter_reply *c = data;
  struct nftnl_obj *o;

  if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWOBJ)
    return 0;
  o = nftnl_obj_alloc ();
  if (o == NULL)
    abort ();
  if (nftnl_obj_nlmsg_parse (nlh, o) < 0)
    {
      nftnl_obj_free (o);
      return -1;
    }
  c->packets = nftnl_obj_get_u64 (o, NFTNL_OBJ_CTR_PKTS);
  c->bytes = nftnl_obj_get_u64 (o, NFTNL_OBJ_CTR_BYTES);
  c->seen = true;
  nftnl_obj_free (o);
  return 0;
}

int
sbx_net_policy_counters (int netns_fd, const char *id, uint64_t *packets, uint64_t *bytes, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id);
  struct counter_reply c = { 0 };
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nftnl_obj *o;
  struct nlmsghdr *nlh;
  uint32_t seq;
  int r = -1;

  if (egr_nl_open (&x, netns_fd, err) < 0)
    goto out;
  o = nftnl_obj_alloc ();
  if (o == NULL)
    abort ();
  nftnl_obj_set_str (o, NFTNL_OBJ_TABLE, table);
  nftnl_obj_set_str (o, NFTNL_OBJ_NAME, COUNTER);
  nftnl_obj_set_u32 (o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
  seq = x.seq++;
  nlh = nftnl_nlmsg_build_hdr (buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_ACK, seq);
  nftnl_obj_nlmsg_build_payload (nlh, o);
  nftnl_obj_free (o);
  if (egr_nl_talk (&x, nlh, nlh->nlmsg_len, seq, on_counter, &c, err) < 0)
    {
      sbx_error_wrap (err, "container \"%s\": read the egress drop counter", id);
      goto out;
    }
  if (!c.seen)
    {
      sbx_error_set (err, ENOENT, "container \"%s\": no egress drop counter", id);
      goto out;
    }
  *packets = c.packets;
  *bytes = c.bytes;
  r = 0;
out:
  egr_nl_ctx_release (&x);
  return r;
}
