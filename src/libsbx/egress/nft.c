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
#include <sys/resource.h>
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
#define DENIED4 "denied4"
#define DENIED6 "denied6"

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

/* The key of a packet into registers 32_00...: destination address,
   meta l4proto[, transport port at offset 2 (th dport), or 0].  */
static void
x_key (struct nftnl_rule *r, int v6, int ports, bool port_zero)
{
  uint32_t alen = v6 ? 16 : 4, reg = NFT_REG32_00 + alen / 4;
  egr_x_payload_to (r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, alen, NFT_REG32_00);
  egr_x_meta_to (r, NFT_META_L4PROTO, reg);
  if (!ports)
    return;
  if (port_zero)
    {
      struct nftnl_expr *e = egr_expr_new (r, "immediate");
      uint32_t zero = 0;
      nftnl_expr_set_u32 (e, NFTNL_EXPR_IMM_DREG, reg + 1);
      nftnl_expr_set (e, NFTNL_EXPR_IMM_DATA, &zero, sizeof zero);
    }
  else
    egr_x_payload_to (r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg + 1);
}

/* ip[6] daddr [& /L mask] [. meta l4proto [. th dport]] @set accept  */
static void
rule_lookup (const rule_ctx *rc, const egr_sets *s, int v6, int kind)
{
  struct nftnl_rule *r = rule_new (rc, NULL);
  struct nftnl_expr *e;
  int fields = egr_set_fields (kind);
  uint32_t alen = v6 ? 16 : 4;
  egr_x_u8_eq (r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
  /* NFT_REG_1 is the storage of NFT_REG32_00..03 */
  if (fields == 1)
    egr_x_payload_to (r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, alen, NFT_REG32_00);
  else
    x_key (r, v6, fields == 3, false);
  if (kind >= EGR_PFX)
    {
      uint8_t mask[16];
      egr_prefix_mask (mask, alen, s->prefix[v6][kind]);
      egr_x_mask (r, mask, alen);
    }
  e = egr_expr_new (r, "lookup");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG32_00);
  nftnl_expr_set_str (e, NFTNL_EXPR_LOOKUP_SET, egr_set_name (s, v6, kind));
  egr_x_verdict (r, NF_ACCEPT, NULL);
  rule_add (rc, r, xasprintf ("nftables rule looking up set `%s`", egr_set_name (s, v6, kind)));
}

/* Protocols whose transport header starts with the ports.  */
static const uint8_t port_protos[]
    = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_SCTP, IPPROTO_DCCP };

/* update @deniedN { daddr . l4proto . dport-or-0 }: its own rules, since a
   full set ends the rule that tries to add to it.  */
static void
rules_record_denied (const rule_ctx *rc)
{
  for (int v6 = 0; v6 < 2; v6++)
    for (int with_port = 1; with_port >= 0; with_port--)
      {
        size_t np = with_port ? 1 : sizeof port_protos;
        for (size_t i = 0; i < (with_port ? sizeof port_protos : 1); i++)
          {
            struct nftnl_rule *r = rule_new (rc, NULL);
            struct nftnl_expr *e;
            egr_x_u8_eq (r, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
            egr_x_meta (r, NFT_META_L4PROTO);
            for (size_t j = 0; j < np; j++)
              {
                uint8_t v = with_port ? port_protos[i] : port_protos[j];
                egr_x_cmp (r, with_port ? NFT_CMP_EQ : NFT_CMP_NEQ, &v, 1);
              }
            x_key (r, v6, 1, !with_port);
            e = egr_expr_new (r, "dynset");
            nftnl_expr_set_u32 (e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG32_00);
            nftnl_expr_set_u32 (e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
            nftnl_expr_set_str (e, NFTNL_EXPR_DYNSET_SET_NAME, v6 ? DENIED6 : DENIED4);
            rule_add (
                rc, r,
                xasprintf ("nftables rule recording denied destinations in `%s`", v6 ? DENIED6 : DENIED4));
          }
      }
}

/* The kernel's own multicast listener reports carry the groups a process
   joined: 28 (IGMP) or 112 (MLD) bits of its choosing per packet.  They
   belong to no socket, so the scoped jump never sees them: drop them in
   the base chain unless an allowed destination is multicast.  */
static void
rules_drop_reports (const rule_ctx *rc, const egr_sets *s)
{
  struct nftnl_rule *r;
  if (!s->multicast[0])
    {
      r = rule_new (rc, BASE_CHAIN);
      egr_x_u8_eq (r, NFT_META_NFPROTO, NFPROTO_IPV4);
      egr_x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_IGMP);
      egr_x_verdict (r, NF_DROP, NULL);
      rule_add (rc, r, xstrdup ("nftables rule dropping IGMP reports"));
    }
  if (!s->multicast[1])
    {
      /* MLDv1 report (131) and done (132), MLDv2 report (143) */
      static const uint8_t types[][2] = { { 131, 132 }, { 143, 143 } };
      for (size_t i = 0; i < 2; i++)
        {
          r = rule_new (rc, BASE_CHAIN);
          egr_x_u8_eq (r, NFT_META_NFPROTO, NFPROTO_IPV6);
          egr_x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
          egr_x_payload (r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
          if (types[i][0] == types[i][1])
            egr_x_cmp (r, NFT_CMP_EQ, &types[i][0], 1);
          else
            egr_x_range (r, &types[i][0], &types[i][1], 1);
          egr_x_verdict (r, NF_DROP, NULL);
          rule_add (rc, r, xstrdup ("nftables rule dropping MLD reports"));
        }
    }
}

static void
build_policy_rules (const rule_ctx *rc, const egr_sets *s, bool scoped)
{
  struct nftnl_rule *r;

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
      /* The kernel's own neighbour discovery (and, when the base chain
         let them through, multicast listener reports) go through this
         hook too when the whole namespace is filtered; without neighbour
         discovery IPv6 breaks on the link.  */
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

  /* the allowed destinations and resolvers: the sets that have elements */
  for (int v6 = 0; v6 < 2; v6++)
    for (int kind = 0; kind < EGR_KINDS; kind++)
      if (s->n[v6][kind])
        rule_lookup (rc, s, v6, kind);

  /* counter name dropped; record; meta l4proto tcp reject with tcp reset; drop  */
  r = rule_new (rc, NULL);
  {
    struct nftnl_expr *e = egr_expr_new (r, "objref");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
    nftnl_expr_set_str (e, NFTNL_EXPR_OBJREF_IMM_NAME, COUNTER);
  }
  rule_add (rc, r, xstrdup ("nftables rule counting drops"));
  rules_record_denied (rc);
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
  x->deleted = true;
  table_msg (x, table, NFT_MSG_NEWTABLE, NLM_F_CREATE, xasprintf ("nftables table `%s`", table));
  table_msg (x, table, NFT_MSG_DELTABLE, 0, xasprintf ("delete nftables table `%s`", table));
}

/* Is there a table of that name?  1, 0, or -1 with *err.  */
static int
table_exists (nl_ctx *x, const char *table, sbx_error **err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  cleanup_error sbx_error *e = NULL;
  struct nftnl_table *t = nftnl_table_alloc ();
  struct nlmsghdr *nlh;
  uint32_t seq = x->seq++;

  if (t == NULL)
    abort ();
  nftnl_table_set_str (t, NFTNL_TABLE_NAME, table);
  nlh = nftnl_nlmsg_build_hdr (buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, seq);
  nftnl_table_nlmsg_build_payload (nlh, t);
  nftnl_table_free (t);
  if (egr_nl_talk (x, nlh, nlh->nlmsg_len, seq, NULL, NULL, &e) == 0)
    return 1;
  if (e->errno_ == ENOENT)
    return 0;
  *err = steal_ptr (e);
  return -1;
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

static double
ms_between (const struct timespec *a, const struct timespec *b)
{
  return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* What the thread has waited so far, runnable, for a CPU (ns; schedstat's
   run_delay), and its voluntary context switches (it blocked): together
   with the CPU time they tell another load's preemptions from waits of
   our own.  0 where the kernel has no schedstat, or without --debug.  */
typedef struct
{
  unsigned long long run_delay_ns;
  long nvcsw;
} thread_waits;

static void
thread_waits_now (thread_waits *w)
{
  struct rusage ru;
  FILE *f;
  unsigned long long run = 0, delay = 0;
  w->run_delay_ns = 0;
  w->nvcsw = 0;
  if (!sbx_log_debugging ())
    return;
  f = fopen ("/proc/thread-self/schedstat", "re");
  if (f && fscanf (f, "%llu %llu", &run, &delay) == 2)
    w->run_delay_ns = delay;
  if (f)
    fclose (f);
  w->nvcsw = getrusage (RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : 0;
}

int
sbx_net_policy_apply (const sbx_net_policy *p, int netns_fd, const char *id, const char *cgroup2_dir,
                      int cgroup2_level, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id), *chain = sbx_net_chain_name (id);
  rule_ctx rc = { &x, table, chain };
  egr_sets sets = { 0 };
  struct timespec t0, t1, c0;
  thread_waits w0, w2;
  uint64_t cgid = 0;
  int r = -1, exists;

  if (cgroup2_dir)
    {
      struct stat st;
      /* The cgroup ID the socket expression compares is the inode number
         of the cgroup's directory (kernfs node id).  */
      if (stat (cgroup2_dir, &st) < 0)
        return sbx_error_sys (err, "cgroup `%s`", cgroup2_dir);
      cgid = st.st_ino;
    }
  thread_waits_now (&w0);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &c0);
  egr_sets_build (&sets, p);
  if (egr_nl_open (&x, netns_fd, err) < 0)
    goto out;
  /* Only a table that exists is deleted: a batch that deletes anything
     leaves destroy work behind (freed after an RCU grace period), and
     closing a netfilter socket waits for it -- 10-15 ms.  */
  exists = table_exists (&x, table, err);
  if (exists < 0)
    goto out;
  egr_batch_start (&x, 64, egr_sets_batch_bytes (&sets));
  if (exists)
    table_drop (&x, table);
  table_msg (&x, table, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL,
             xasprintf ("nftables table `%s`", table));
  counter_msg (&x, table);
  for (int v6 = 0; v6 < 2; v6++)
    {
      struct nftnl_expr *ctr = nftnl_expr_alloc ("counter");
      if (ctr == NULL)
        abort ();
      egr_set_msg (&x, table, v6 ? DENIED6 : DENIED4, v6, 3, NFT_SET_EVAL | NFT_SET_TIMEOUT,
                   SBX_NET_DENIED_MAX, SBX_NET_DENIED_TIMEOUT_S * 1000ULL, ctr);
    }
  egr_sets_msgs (&x, table, &sets);
  chain_msg (&x, table, BASE_CHAIN, true);
  chain_msg (&x, table, chain, false);
  rules_drop_reports (&rc, &sets);
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
  build_policy_rules (&rc, &sets, cgroup2_dir != NULL);
  if (egr_batch_commit (&x, err) < 0)
    {
      sbx_error_wrap (err, "install the egress policy");
      goto out;
    }
  {
    size_t bytes = mnl_nlmsg_batch_size (x.b);
    struct timespec t2, c2;
    clock_gettime (CLOCK_MONOTONIC, &t1);
    egr_nl_ctx_release (&x); /* closing the socket is part of the cost */
    clock_gettime (CLOCK_MONOTONIC, &t2);
    /* The kernel applies the batch within our sendto: CPU time counts it.  */
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &c2);
    thread_waits_now (&w2);
    sbx_debug ("egress policy: %zu set elements, %zu bytes of netlink batch, installed in %.2f ms "
               "(%.2f ms of CPU, %.2f ms runnable waiting for a CPU, %ld voluntary context switches; "
               "socket closed in %.2f ms)",
               egr_sets_count (&sets), bytes, ms_between (&t0, &t2), ms_between (&c0, &c2),
               (double)(w2.run_delay_ns - w0.run_delay_ns) / 1e6, w2.nvcsw - w0.nvcsw, ms_between (&t1, &t2));
  }
  r = 0;
out:
  egr_sets_free (&sets);
  egr_nl_ctx_release (&x);
  return r;
}

int
sbx_net_policy_remove (int netns_fd, const char *id, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id);
  struct timespec t0, t1, t2;
  int r = -1, exists;

  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (egr_nl_open (&x, netns_fd, err) < 0)
    goto out;
  /* A batch that deletes nothing leaves no destroy work: no detached
     close when there is no table.  */
  exists = table_exists (&x, table, err);
  if (exists < 0)
    goto out;
  if (exists)
    {
      egr_batch_start (&x, 4, 0);
      table_drop (&x, table);
      if (egr_batch_commit (&x, err) < 0)
        {
          sbx_error_wrap (err, "remove the egress policy");
          goto out;
        }
    }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  egr_nl_ctx_release (&x);
  clock_gettime (CLOCK_MONOTONIC, &t2);
  sbx_debug ("egress policy of container \"%s\": %s in %.2f ms (socket closed in %.2f ms%s)", id,
             exists ? "removed" : "not in place", ms_between (&t0, &t2), ms_between (&t1, &t2),
             exists ? ", the last close left to a detached process" : "");
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

/* ---------------------------------------------------------------- denied */

typedef struct
{
  int v6;
  uint8_t key[24];
  uint64_t packets, bytes, ago_ms;
} denied_elem;

typedef struct
{
  int v6;
  denied_elem *v;
  size_t n;
  bool bad;
} denied_reply;

static int
on_denied_expr (struct nftnl_expr *e, void *data)
{
  denied_elem *d = data;
  const char *name = nftnl_expr_get_str (e, NFTNL_EXPR_NAME);
  if (name && strcmp (name, "counter") == 0)
    {
      d->packets = nftnl_expr_get_u64 (e, NFTNL_EXPR_CTR_PACKETS);
      d->bytes = nftnl_expr_get_u64 (e, NFTNL_EXPR_CTR_BYTES);
    }
  return 0;
}

static int
on_denied (const struct nlmsghdr *nlh, void *data)
{
  denied_reply *d = data;
  struct nftnl_set *s;
  struct nftnl_set_elems_iter *it;
  struct nftnl_set_elem *e;

  if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWSETELEM)
    return 0;
  s = nftnl_set_alloc ();
  if (s == NULL)
    abort ();
  if (nftnl_set_elems_nlmsg_parse (nlh, s) < 0)
    {
      nftnl_set_free (s);
      return -1;
    }
  it = nftnl_set_elems_iter_create (s);
  while (it && (e = nftnl_set_elems_iter_next (it)))
    {
      uint32_t len = 0;
      const void *key = nftnl_set_elem_get (e, NFTNL_SET_ELEM_KEY, &len);
      uint64_t timeout = SBX_NET_DENIED_TIMEOUT_S * 1000ULL, left;
      denied_elem *de;
      if (key == NULL || len != egr_key_len (d->v6, 3))
        continue;
      d->v = xrealloc (d->v, (d->n + 1) * sizeof *d->v);
      de = memset (&d->v[d->n++], 0, sizeof *de);
      de->v6 = d->v6;
      memcpy (de->key, key, len);
      if (nftnl_set_elem_is_set (e, NFTNL_SET_ELEM_TIMEOUT))
        timeout = nftnl_set_elem_get_u64 (e, NFTNL_SET_ELEM_TIMEOUT);
      left = nftnl_set_elem_get_u64 (e, NFTNL_SET_ELEM_EXPIRATION);
      de->ago_ms = left < timeout ? timeout - left : 0;
      nftnl_set_elem_expr_foreach (e, on_denied_expr, de);
    }
  nftnl_set_elems_iter_destroy (it);
  nftnl_set_free (s);
  return 0;
}

static int
by_recent (const void *a, const void *b)
{
  const denied_elem *x = a, *y = b;
  return x->ago_ms < y->ago_ms ? -1 : x->ago_ms > y->ago_ms;
}

static const char *
proto_name (uint8_t p, char *buf, size_t len)
{
  switch (p)
    {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_UDPLITE:
      return "udplite";
    case IPPROTO_SCTP:
      return "sctp";
    case IPPROTO_DCCP:
      return "dccp";
    case IPPROTO_ICMP:
      return "icmp";
    case IPPROTO_ICMPV6:
      return "ipv6-icmp";
    default:
      snprintf (buf, len, "%u", p);
      return buf;
    }
}

int
sbx_net_policy_denied (int netns_fd, const char *id, char **json, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id);
  denied_reply d = { 0 };
  int r = -1;

  if (egr_nl_open (&x, netns_fd, err) < 0)
    goto out;
  for (int v6 = 0; v6 < 2; v6++)
    {
      char buf[MNL_SOCKET_BUFFER_SIZE];
      struct nftnl_set *s = nftnl_set_alloc ();
      struct nlmsghdr *nlh;
      uint32_t seq = x.seq++;
      if (s == NULL)
        abort ();
      nftnl_set_set_str (s, NFTNL_SET_TABLE, table);
      nftnl_set_set_str (s, NFTNL_SET_NAME, v6 ? DENIED6 : DENIED4);
      nlh = nftnl_nlmsg_build_hdr (buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq);
      nftnl_set_elems_nlmsg_build_payload (nlh, s);
      nftnl_set_free (s);
      d.v6 = v6;
      if (egr_nl_talk (&x, nlh, nlh->nlmsg_len, seq, on_denied, &d, err) < 0)
        {
          sbx_error_wrap (err, "container \"%s\": read the denied destinations", id);
          goto out;
        }
    }
  qsort (d.v, d.n, sizeof *d.v, by_recent);
  {
    oj_writer *w = oj_writer_new (false);
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    oj_w_begin_array (w);
    for (size_t i = 0; i < d.n; i++)
      {
        const denied_elem *e = &d.v[i];
        int alen = e->v6 ? 16 : 4;
        char addr[INET6_ADDRSTRLEN], pbuf[8], when[32];
        uint8_t proto = e->key[alen];
        uint16_t port = (uint16_t)(e->key[alen + 4] << 8 | e->key[alen + 5]);
        time_t t = now.tv_sec - (time_t)((e->ago_ms + 500) / 1000);
        struct tm tm;
        inet_ntop (e->v6 ? AF_INET6 : AF_INET, e->key, addr, sizeof addr);
        gmtime_r (&t, &tm);
        strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        oj_w_begin_object (w);
        oj_w_key (w, "family");
        oj_w_string (w, e->v6 ? "ipv6" : "ipv4");
        oj_w_key (w, "address");
        oj_w_string (w, addr);
        oj_w_key (w, "protocol");
        oj_w_string (w, proto_name (proto, pbuf, sizeof pbuf));
        oj_w_key (w, "port");
        oj_w_uint (w, port);
        oj_w_key (w, "count");
        oj_w_uint (w, e->packets);
        oj_w_key (w, "bytes");
        oj_w_uint (w, e->bytes);
        oj_w_key (w, "last");
        oj_w_string (w, when);
        oj_w_end_object (w);
      }
    oj_w_end_array (w);
    *json = oj_writer_finish (w, NULL);
  }
  r = 0;
out:
  free (d.v);
  egr_nl_ctx_release (&x);
  return r;
}
