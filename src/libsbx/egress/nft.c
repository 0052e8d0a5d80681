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
#include "egress/egress.h"

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
#include "egress/egress_internal.h"

#define NFT_NAME_MAX 255 /* NFT_NAME_MAXLEN without the NUL */
#define BASE_CHAIN "output"
#define COUNTER "dropped"
#define NL_TIMEOUT_S 10

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

/* ---------------------------------------------------------------- netlink */

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
} nl_ctx;

static void
nl_ctx_release (nl_ctx *x)
{
  if (x->b)
    mnl_nlmsg_batch_stop (x->b);
  if (x->nl)
    mnl_socket_close (x->nl);
  free (x->buf);
  for (size_t i = 0; i < x->nwhat; i++)
    free (x->what[i]);
  free (x->what);
}

/* A netfilter netlink socket of the namespace netns_fd.  */
static int
nl_open (nl_ctx *x, int netns_fd, sbx_error **err)
{
  cleanup_close int self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
  int one = 1, saved;

  if (self < 0)
    return sbx_error_sys (err, "open the runtime's network namespace");
  if (setns (netns_fd, CLONE_NEWNET) < 0)
    return sbx_error_sys (err, "enter the container's network namespace");
  x->nl = mnl_socket_open2 (NETLINK_NETFILTER, SOCK_CLOEXEC);
  saved = errno;
  if (setns (self, CLONE_NEWNET) < 0)
    return sbx_error_sys (err, "return to the runtime's network namespace");
  if (x->nl == NULL)
    return sbx_error_set (err, saved, "open a netfilter netlink socket");
  if (mnl_socket_bind (x->nl, 0, MNL_SOCKET_AUTOPID) < 0)
    return sbx_error_sys (err, "bind the netfilter netlink socket");
  setsockopt (mnl_socket_get_fd (x->nl), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt (mnl_socket_get_fd (x->nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt (mnl_socket_get_fd (x->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  x->seq0 = x->seq = (uint32_t)time (NULL);
  return 0;
}

static void
batch_start (nl_ctx *x, size_t nmsgs)
{
  /* A message is well under 2 KiB even with 255-byte table and chain
     names and an IPv6 CIDR with a port range.  */
  x->cap = 4096 + 2048 * nmsgs;
  /* mnl batches may overrun their limit by one message.  */
  x->buf = xmalloc0 (x->cap + MNL_SOCKET_BUFFER_SIZE);
  x->b = mnl_nlmsg_batch_start (x->buf, x->cap);
  nftnl_batch_begin (mnl_nlmsg_batch_current (x->b), x->seq++);
  mnl_nlmsg_batch_next (x->b);
}

/* The header of the next message of the batch; `what` describes it for
   errors (taken).  */
static struct nlmsghdr *
batch_msg (nl_ctx *x, uint16_t type, uint16_t flags, char *what)
{
  uint32_t i = x->seq - x->seq0;
  if (i >= x->nwhat)
    {
      x->what = xrealloc (x->what, (i + 1) * sizeof *x->what);
      while (x->nwhat <= i)
        x->what[x->nwhat++] = NULL;
    }
  x->what[i] = what;
  return nftnl_nlmsg_build_hdr (mnl_nlmsg_batch_current (x->b), type, NFPROTO_INET, flags, x->seq++);
}

static void
batch_done_msg (nl_ctx *x)
{
  if (!mnl_nlmsg_batch_next (x->b))
    x->overflow = true;
}

/* The text of an extended ack (NLMSGERR_ATTR_MSG), or NULL.  */
static const char *
extack_msg (const struct nlmsghdr *nlh)
{
  const struct nlmsgerr *e = mnl_nlmsg_get_payload (nlh);
  const char *p = (const char *)(e + 1), *end = (const char *)nlh + nlh->nlmsg_len;

  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
    return NULL;
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
    p += e->msg.nlmsg_len - sizeof (struct nlmsghdr);
  while (p + sizeof (struct nlattr) <= end)
    {
      const struct nlattr *a = (const struct nlattr *)p;
      if (a->nla_len < sizeof *a || p + a->nla_len > end)
        break;
      if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a->nla_len > sizeof *a)
        return (const char *)(a + 1);
      p += NLA_ALIGN (a->nla_len);
    }
  return NULL;
}

typedef int (*nl_reply_cb) (const struct nlmsghdr *nlh, void *data);

/* Send len bytes of buf, then read replies until the ack of message
   `last` (sent with NLM_F_ACK).  The first error reported for any message
   becomes *err; cb sees every other reply.  */
static int
nl_talk (nl_ctx *x, const void *buf, size_t len, uint32_t last, nl_reply_cb cb, void *data, sbx_error **err)
{
  int fd = mnl_socket_get_fd (x->nl);
  cleanup_free char *rbuf = xmalloc0 (MNL_SOCKET_BUFFER_SIZE * 4);
  cleanup_error sbx_error *first = NULL;

  if (mnl_socket_sendto (x->nl, buf, len) < 0)
    return sbx_error_sys (err, "send to netfilter");
  for (;;)
    {
      ssize_t n = recv (fd, rbuf, MNL_SOCKET_BUFFER_SIZE * 4, 0);
      int left;
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            return sbx_error_set (err, ETIMEDOUT, "no answer from netfilter");
          return sbx_error_sys (err, "receive from netfilter");
        }
      left = (int)n;
      for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)rbuf; mnl_nlmsg_ok (nlh, left);
           nlh = mnl_nlmsg_next (nlh, &left))
        {
          if (nlh->nlmsg_type == NLMSG_ERROR)
            {
              const struct nlmsgerr *e = mnl_nlmsg_get_payload (nlh);
              uint32_t seq = e->msg.nlmsg_seq;
              if (e->error != 0 && first == NULL)
                {
                  const char *ext = extack_msg (nlh);
                  uint32_t i = seq - x->seq0;
                  const char *what = i < x->nwhat && x->what[i] ? x->what[i] : "netfilter request";
                  sbx_error_set (&first, -e->error, "%s%s%s", what, ext ? ": " : "", ext ? ext : "");
                }
              if (seq == last)
                {
                  if (first)
                    {
                      *err = steal_ptr (first);
                      return -1;
                    }
                  return 0;
                }
              continue;
            }
          if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_NOOP)
            continue;
          if (cb && cb (nlh, data) < 0)
            return sbx_error_set (err, EPROTO, "malformed reply from netfilter");
        }
    }
}

/* Send the batch, then a generation request with an ack: its answer comes
   after every error of the batch.  */
static int
batch_commit (nl_ctx *x, sbx_error **err)
{
  char req[256];
  uint32_t gen_seq;
  struct nlmsghdr *nlh;

  nftnl_batch_end (mnl_nlmsg_batch_current (x->b), x->seq++);
  if (!mnl_nlmsg_batch_next (x->b) || x->overflow)
    return sbx_error_set (err, E2BIG, "too many nftables rules for one batch");
  {
    size_t len = mnl_nlmsg_batch_size (x->b);
    if (len > 128 * 1024)
      {
        int sz = (int)len + 65536;
        setsockopt (mnl_socket_get_fd (x->nl), SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
      }
    if (mnl_socket_sendto (x->nl, mnl_nlmsg_batch_head (x->b), len) < 0)
      return sbx_error_sys (err, "send the nftables batch");
  }
  gen_seq = x->seq++;
  nlh = nftnl_nlmsg_build_hdr (req, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, gen_seq);
  return nl_talk (x, nlh, nlh->nlmsg_len, gen_seq, NULL, NULL, err);
}

/* ---------------------------------------------------------------- rules */

static struct nftnl_expr *
expr_new (struct nftnl_rule *r, const char *name)
{
  struct nftnl_expr *e = nftnl_expr_alloc (name);
  if (e == NULL)
    abort ();
  nftnl_rule_add_expr (r, e);
  return e;
}

static void
x_meta (struct nftnl_rule *r, uint32_t key)
{
  struct nftnl_expr *e = expr_new (r, "meta");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_META_DREG, NFT_REG_1);
}

static void
x_cmp (struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
  struct nftnl_expr *e = expr_new (r, "cmp");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set (e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void
x_payload (struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
  struct nftnl_expr *e = expr_new (r, "payload");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
}

static void
x_mask (struct nftnl_rule *r, const void *mask, uint32_t len)
{
  static const uint8_t zero[16];
  struct nftnl_expr *e = expr_new (r, "bitwise");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_BITWISE_LEN, len);
  nftnl_expr_set (e, NFTNL_EXPR_BITWISE_MASK, mask, len);
  nftnl_expr_set (e, NFTNL_EXPR_BITWISE_XOR, zero, len);
}

static void
x_range (struct nftnl_rule *r, const void *from, const void *to, uint32_t len)
{
  struct nftnl_expr *e = expr_new (r, "range");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
  nftnl_expr_set (e, NFTNL_EXPR_RANGE_FROM_DATA, from, len);
  nftnl_expr_set (e, NFTNL_EXPR_RANGE_TO_DATA, to, len);
}

static void
x_verdict (struct nftnl_rule *r, int verdict, const char *chain)
{
  struct nftnl_expr *e = expr_new (r, "immediate");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
  if (chain)
    nftnl_expr_set_str (e, NFTNL_EXPR_IMM_CHAIN, chain);
}

static void
x_u8_eq (struct nftnl_rule *r, uint32_t meta_key, uint8_t v)
{
  x_meta (r, meta_key);
  x_cmp (r, NFT_CMP_EQ, &v, 1);
}

/* meta nfproto, then the destination address (masked to the prefix).  */
static void
x_daddr (struct nftnl_rule *r, const sbx_net_rule *d)
{
  bool v4 = d->family == AF_INET;
  uint32_t len = v4 ? 4 : 16;
  int full = v4 ? 32 : 128;

  x_u8_eq (r, NFT_META_NFPROTO, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
  if (d->prefix == 0)
    return;
  x_payload (r, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 16 : 24, len);
  if (d->prefix < full)
    {
      uint8_t mask[16] = { 0 };
      for (int i = 0; i < (int)len; i++)
        {
          int bits = d->prefix - i * 8;
          mask[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
        }
      x_mask (r, mask, len);
    }
  x_cmp (r, NFT_CMP_EQ, d->addr, len);
}

static void
x_dport (struct nftnl_rule *r, uint16_t lo, uint16_t hi)
{
  uint16_t a = htons (lo), b = htons (hi);
  x_payload (r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  if (lo == hi)
    x_cmp (r, NFT_CMP_EQ, &a, 2);
  else
    x_range (r, &a, &b, 2);
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
  struct nlmsghdr *nlh = batch_msg (rc->x, NFT_MSG_NEWRULE, NLM_F_APPEND | NLM_F_CREATE, what);
  nftnl_rule_nlmsg_build_payload (nlh, r);
  nftnl_rule_free (r);
  batch_done_msg (rc->x);
}

/* The accept rule for one destination (proto/ports from d).  */
static void
rule_allow (const rule_ctx *rc, const sbx_net_rule *d, const char *kind)
{
  struct nftnl_rule *r = rule_new (rc, NULL);
  cleanup_free char *text = sbx_net_rule_format (d);
  x_daddr (r, d);
  if (d->proto)
    x_u8_eq (r, NFT_META_L4PROTO, d->proto);
  if (d->port_min)
    x_dport (r, d->port_min, d->port_max);
  x_verdict (r, NF_ACCEPT, NULL);
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
    x_meta (r, NFT_META_OIF);
    x_cmp (r, NFT_CMP_EQ, &lo, sizeof lo);
  }
  x_verdict (r, NF_ACCEPT, NULL);
  rule_add (rc, r, xstrdup ("nftables rule allowing loopback"));

  /* ct state established,related accept  */
  r = rule_new (rc, NULL);
  {
    struct nftnl_expr *e = expr_new (r, "ct");
    uint32_t mask = CT_STATE_ESTABLISHED | CT_STATE_RELATED, zero = 0;
    nftnl_expr_set_u32 (e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
    nftnl_expr_set_u32 (e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
    x_mask (r, &mask, sizeof mask);
    x_cmp (r, NFT_CMP_NEQ, &zero, sizeof zero);
  }
  x_verdict (r, NF_ACCEPT, NULL);
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
          x_u8_eq (r, NFT_META_NFPROTO, NFPROTO_IPV6);
          x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
          x_payload (r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
          if (icmp6[i].from == icmp6[i].to)
            x_cmp (r, NFT_CMP_EQ, &icmp6[i].from, 1);
          else
            x_range (r, &icmp6[i].from, &icmp6[i].to, 1);
          x_verdict (r, NF_ACCEPT, NULL);
          rule_add (rc, r, xstrdup ("nftables rule allowing IPv6 neighbour discovery and MLD"));
        }
      r = rule_new (rc, NULL);
      x_u8_eq (r, NFT_META_NFPROTO, NFPROTO_IPV4);
      x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_IGMP);
      x_verdict (r, NF_ACCEPT, NULL);
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
    struct nftnl_expr *e = expr_new (r, "objref");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
    nftnl_expr_set_str (e, NFTNL_EXPR_OBJREF_IMM_NAME, COUNTER);
  }
  rule_add (rc, r, xstrdup ("nftables rule counting drops"));
  r = rule_new (rc, NULL);
  x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_TCP);
  {
    struct nftnl_expr *e = expr_new (r, "reject");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
    nftnl_expr_set_u8 (e, NFTNL_EXPR_REJECT_CODE, 0);
  }
  rule_add (rc, r, xstrdup ("nftables rule rejecting TCP"));
  /* The drop alone is silent for ICMPv6: ping_v6_sendmsg does not return
     the output hook's verdict, so the echo "succeeds".  An
     admin-prohibited error sent back makes a connected or IPV6_RECVERR
     socket fail with EACCES at once.  */
  r = rule_new (rc, NULL);
  x_u8_eq (r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
  {
    struct nftnl_expr *e = expr_new (r, "reject");
    nftnl_expr_set_u32 (e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
    nftnl_expr_set_u8 (e, NFTNL_EXPR_REJECT_CODE, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
  }
  rule_add (rc, r, xstrdup ("nftables rule rejecting ICMPv6"));
  r = rule_new (rc, NULL);
  x_verdict (r, NF_DROP, NULL);
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
  nlh = batch_msg (x, type, flags, what);
  nftnl_table_nlmsg_build_payload (nlh, t);
  nftnl_table_free (t);
  batch_done_msg (x);
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
  nlh = batch_msg (x, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
                   xasprintf ("nftables chain `%s`%s", name, base ? " (output hook)" : ""));
  nftnl_chain_nlmsg_build_payload (nlh, c);
  nftnl_chain_free (c);
  batch_done_msg (x);
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
  nlh = batch_msg (x, NFT_MSG_NEWOBJ, NLM_F_CREATE, xstrdup ("nftables counter `" COUNTER "`"));
  nftnl_obj_nlmsg_build_payload (nlh, o);
  nftnl_obj_free (o);
  batch_done_msg (x);
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
  if (nl_open (&x, netns_fd, err) < 0)
    goto out;
  batch_start (&x, nrules + 2 * nres + 16);
  table_drop (&x, table);
  table_msg (&x, table, NFT_MSG_NEWTABLE, NLM_F_CREATE, xasprintf ("nftables table `%s`", table));
  counter_msg (&x, table);
  chain_msg (&x, table, BASE_CHAIN, true);
  chain_msg (&x, table, chain, false);
  {
    struct nftnl_rule *jr = rule_new (&rc, BASE_CHAIN);
    if (cgroup2_dir)
      {
        struct nftnl_expr *e = expr_new (jr, "socket");
        nftnl_expr_set_u32 (e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_CGROUPV2);
        nftnl_expr_set_u32 (e, NFTNL_EXPR_SOCKET_LEVEL, (uint32_t)cgroup2_level);
        nftnl_expr_set_u32 (e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
        x_cmp (jr, NFT_CMP_EQ, &cgid, sizeof cgid);
      }
    x_verdict (jr, NFT_JUMP, chain);
    rule_add (&rc, jr,
              cgroup2_dir ? xasprintf ("nftables rule matching the sockets of cgroup `%s`", cgroup2_dir)
                          : xstrdup ("nftables rule jumping to the policy"));
  }
  build_policy_rules (&rc, p, cgroup2_dir != NULL);
  if (batch_commit (&x, err) < 0)
    {
      sbx_error_wrap (err, "install the egress policy");
      goto out;
    }
  r = 0;
out:
  nl_ctx_release (&x);
  return r;
}

int
sbx_net_policy_remove (int netns_fd, const char *id, sbx_error **err)
{
  nl_ctx x = { 0 };
  cleanup_free char *table = sbx_net_table_name (id);
  int r = -1;

  if (nl_open (&x, netns_fd, err) < 0)
    goto out;
  batch_start (&x, 4);
  table_drop (&x, table);
  if (batch_commit (&x, err) < 0)
    {
      sbx_error_wrap (err, "remove the egress policy");
      goto out;
    }
  r = 0;
out:
  nl_ctx_release (&x);
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

  if (nl_open (&x, netns_fd, err) < 0)
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
  if (nl_talk (&x, nlh, nlh->nlmsg_len, seq, on_counter, &c, err) < 0)
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
  nl_ctx_release (&x);
  return r;
}

/* ---------------------------------------------------------------- lifecycle */

static char *
net_record (const sbx_net_policy *p, const char *id, const char *joined, const struct stat *st,
            const char *cgroup2_dir, bool has_table)
{
  oj_writer *w = oj_writer_new (true);
  cleanup_free char *table = sbx_net_table_name (id), *chain = sbx_net_chain_name (id);
  cleanup_free char *resolved = sbx_net_policy_resolved (p);

  oj_w_begin_object (w);
  oj_w_key (w, "table");
  if (has_table)
    oj_w_string (w, table);
  else
    oj_w_null (w); /* a pod member covered by the pod's rules */
  oj_w_key (w, "chain");
  oj_w_string (w, chain);
  oj_w_key (w, "netnsPath");
  if (joined)
    oj_w_string (w, joined);
  else
    oj_w_null (w);
  oj_w_key (w, "netnsDev");
  oj_w_uint (w, st->st_dev);
  oj_w_key (w, "netnsIno");
  oj_w_uint (w, st->st_ino);
  oj_w_key (w, "cgroup2");
  if (cgroup2_dir)
    oj_w_string (w, cgroup2_dir);
  else
    oj_w_null (w);
  oj_w_key (w, "resolved");
  if (resolved)
    {
      oj_value *v = oj_parse (resolved, strlen (resolved), NULL);
      oj_w_value (w, v);
      oj_free (v);
    }
  else
    oj_w_begin_object (w), oj_w_end_object (w);
  sbx_net_record_policy (w, p);
  oj_w_end_object (w);
  return oj_writer_finish (w, NULL);
}

int
sbx_net_policy_install (const sbx_net_policy *p, const oci_config *c, pid_t pid, const char *id,
                        sbx_cgroup *cg, int state_dirfd, sbx_error **err)
{
  char path[64];
  cleanup_close int fd = -1;
  cleanup_free char *record = NULL, *pod_dir = NULL;
  const char *joined = sbx_net_joined_netns (c);
  bool covered;
  const char *cg_dir = NULL;
  int level = 0;
  struct stat st;

  snprintf (path, sizeof path, "/proc/%d/ns/net", pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    return sbx_error_sys (err, "open the container's network namespace");
  if (cg)
    cg_dir = sbx_cgroup_unified_dir (cg, &level);
  if (cg_dir == NULL && joined)
    return sbx_error_set (err, ENOTSUP,
                          "annotations " SBX_NET_PREFIX "*: the network namespace `%s` is joined "
                          "by path, so the rules must match only this container's sockets, by "
                          "its cgroup v2, and this host has no unified cgroup hierarchy for it",
                          joined);
  if (cg_dir && p->sandbox)
    {
      /* The pod's cgroup: every container of the pod, the later ones too.  */
      pod_dir = sbx_net_pod_scope (cg_dir);
      if (pod_dir == NULL || level < 2)
        return sbx_error_set (err, EINVAL,
                              "annotations " SBX_NET_PREFIX "*: the pod sandbox's cgroup `%s` has "
                              "no parent of the pod's own to scope the policy to",
                              cg_dir);
      cg_dir = pod_dir;
      level--;
    }
  /* A member without a policy of its own, inside the pod's cgroup: the
     pod's rules cover it already.  */
  covered = p->inherited && cg_dir && sbx_net_cgroup_within (cg_dir, p->pod_cgroup2);
  record = net_record (p, id, joined, &st, cg_dir, !covered);
  /* Recorded first, so that a failure from here on is undone.  */
  if (sbx_write_file_atomic (state_dirfd, SBX_NET_STATE_FILE, record, strlen (record), 0600, err) < 0)
    return sbx_error_wrap (err, "save the egress policy record");
  if (covered)
    {
      sbx_debug ("container \"%s\": covered by the egress policy of pod sandbox \"%s\"", id, p->pod_id);
      return 0;
    }
  if (sbx_net_policy_apply (p, fd, id, cg_dir, level, err) < 0)
    return -1;
  sbx_debug ("container \"%s\": egress policy installed (%s)", id,
             cg_dir ? "scoped to its cgroup" : "whole network namespace");
  return 0;
}

struct sbx_net_teardown
{
  int fd;
  char *id;
};

static int
open_if_same (const char *path, const oj_value *rec)
{
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (fstat (fd, &st) < 0 || !sbx_net_json_uint_is (oj_object_get (rec, "netnsDev"), st.st_dev)
      || !sbx_net_json_uint_is (oj_object_get (rec, "netnsIno"), st.st_ino))
    {
      close (fd);
      return -1;
    }
  return fd;
}

sbx_net_teardown *
sbx_net_teardown_prepare (int state_dirfd, const char *id, pid_t live_pid)
{
  cleanup_close int rfd = openat (state_dirfd, SBX_NET_STATE_FILE, O_RDONLY | O_CLOEXEC);
  cleanup_free char *text = NULL;
  oj_value *rec;
  const oj_value *path;
  sbx_net_teardown *t;
  int fd = -1;

  if (rfd < 0 || sbx_read_fd (rfd, 1 << 20, &text, NULL, NULL) < 0)
    return NULL;
  rec = oj_parse (text, strlen (text), NULL);
  if (rec == NULL || rec->type != OJ_OBJECT)
    {
      oj_free (rec);
      return NULL;
    }
  path = oj_object_get (rec, "netnsPath");
  if (oj_object_get (rec, "table") == NULL || oj_object_get (rec, "table")->type != OJ_STRING)
    path = NULL, live_pid = 0; /* covered by its pod's rules: nothing of its own */
  if (path && path->type == OJ_STRING)
    fd = open_if_same (path->text, rec);
  if (fd < 0 && live_pid > 0)
    {
      char p[64];
      snprintf (p, sizeof p, "/proc/%d/ns/net", live_pid);
      fd = open_if_same (p, rec);
    }
  oj_free (rec);
  if (fd < 0)
    return NULL;
  t = xmalloc0 (sizeof *t);
  t->fd = fd;
  t->id = xstrdup (id);
  return t;
}

static void
teardown_free (sbx_net_teardown *t)
{
  close (t->fd);
  free (t->id);
  free (t);
}

void
sbx_net_teardown_finish (sbx_net_teardown *t)
{
  cleanup_error sbx_error *e = NULL;
  if (t == NULL)
    return;
  if (sbx_net_policy_remove (t->fd, t->id, &e) < 0)
    sbx_warn ("container \"%s\": %s", t->id, e->msg);
  teardown_free (t);
}

int
sbx_net_container_counters (int state_dirfd, const char *id, pid_t live_pid, uint64_t *packets,
                            uint64_t *bytes, sbx_error **err)
{
  sbx_net_teardown *t = sbx_net_teardown_prepare (state_dirfd, id, live_pid);
  int r;
  if (t == NULL)
    return sbx_error_set (err, ENOENT, "container \"%s\" has no egress policy in place", id);
  r = sbx_net_policy_counters (t->fd, id, packets, bytes, err);
  teardown_free (t);
  return r;
}
