/* egress/nl.c - netfilter netlink for the egress policy (see egress.h):
 * a socket opened in the container's network namespace, one atomic batch
 * per change with a description of each message for errors, and the
 * libnftnl expression helpers the rule and set builders share.  */
#include <config.h>
#include "egress/egress_internal.h"
#include "process/process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NL_TIMEOUT_S 10

/* ---------------------------------------------------------------- netlink */

/* Closing a netfilter netlink socket flushes nf_tables' destroy work of
   the namespace (nft_rcv_nl_event): what a committed batch deleted is
   freed after an RCU grace period, 10-15 ms of waiting and no work.  The
   deletion itself is done and visible by then (the commit was
   acknowledged), so after such a batch the last reference is dropped by
   a child nobody waits for: exit signal 0 (no SIGCHLD, and waitpid (-1)
   without __WALL does not see it); at our exit it is reparented like any
   orphan.  It keeps nothing of ours but the socket, and we go on only
   once it has closed the rest (`done` ends): a pipe our caller reads to
   its end (Go's exec, a test's capture) must not wait for it.  It closes
   the socket once ours is closed (`go` ends), so that its close is the
   last.  If the clone fails, we wait for the close.  */
static void
nl_close_detached (struct mnl_socket *nl)
{
  int fd = mnl_socket_get_fd (nl), done[2] = { -1, -1 }, go[2] = { -1, -1 };
  pid_t pid = -1;
  char c;

  if (pipe2 (done, O_CLOEXEC) == 0 && pipe2 (go, O_CLOEXEC) == 0)
    pid = (pid_t)syscall (SYS_clone, 0UL, NULL, NULL, NULL, NULL);
  if (pid == 0)
    {
      /* system calls only: a raw clone of a process that may have threads */
      int keep[2] = { fd < go[0] ? fd : go[0], fd < go[0] ? go[0] : fd };
      prctl (PR_SET_NAME, EGR_NL_CLOSER_COMM, 0, 0, 0);
      if (syscall (SYS_close_range, (unsigned int)keep[1] + 1, ~0U, 0U) == 0)
        {
          if (keep[0] > 0)
            syscall (SYS_close_range, 0U, (unsigned int)keep[0] - 1, 0U);
          if (keep[1] > keep[0] + 1)
            syscall (SYS_close_range, (unsigned int)keep[0] + 1, (unsigned int)keep[1] - 1, 0U);
        }
      else /* before Linux 5.9 */
        for (long i = 0, max = sysconf (_SC_OPEN_MAX); i < (max > 0 && max < (1 << 20) ? max : 1 << 20); i++)
          if (i != fd && i != go[0])
            close ((int)i);
      while (read (go[0], &c, 1) < 0 && errno == EINTR)
        ;
      close (fd);
      _exit (0);
    }
  if (pid > 0)
    {
      close (done[1]);
      done[1] = -1;
      while (read (done[0], &c, 1) < 0 && errno == EINTR)
        ;
    }
  mnl_socket_close (nl); /* not the last reference when the clone worked */
  for (int i = 0; i < 2; i++)
    {
      if (done[i] >= 0)
        close (done[i]);
      if (go[i] >= 0)
        close (go[i]); /* the child's turn */
    }
}

void
egr_nl_ctx_release (nl_ctx *x)
{
  if (x->b)
    mnl_nlmsg_batch_stop (x->b);
  if (x->nl && x->deleted)
    nl_close_detached (x->nl);
  else if (x->nl)
    mnl_socket_close (x->nl);
  free (x->buf);
  for (size_t i = 0; i < x->nwhat; i++)
    free (x->what[i]);
  free (x->what);
  memset (x, 0, sizeof *x); /* released twice is fine */
}

/* A runtime that may not come back to its own network namespace (uid 0
   of a user's namespace: rootless podman calls us there) or may not enter
   the container's (an ordinary user: setns needs CAP_SYS_ADMIN in its own
   user namespace too) opens the socket in a child instead.  An ordinary
   user owns the container's user namespace and so has every capability
   there: the child joins it first.  The kernel checks CAP_NET_ADMIN over
   the network namespace against the socket's opener and against us at
   each message, and both hold it (docs/rootless.md).  Returns the
   socket.  */
static int
nl_socket_from_child (int netns_fd, sbx_error **err)
{
  int sp[2], fd = -1;
  pid_t pid;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    return sbx_error_sys (err, "socketpair");
  pid = fork ();
  if (pid == 0)
    {
      sbx_error *e = NULL;
      int s = -1, userns = -1, r;
      close (sp[0]);
      /* It is about to join the container's user namespace: nothing there
         may ptrace it (and hand back another socket).  */
      prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
      r = setns (netns_fd, CLONE_NEWNET);
      if (r < 0 && errno != EPERM)
        sbx_error_sys (&e, "enter the container's network namespace");
      else if (r < 0 && (userns = ioctl (netns_fd, NS_GET_USERNS)) < 0)
        sbx_error_sys (&e, "enter the container's network namespace: not permitted, and the user "
                           "namespace owning it cannot be found");
      else if (userns >= 0 && setns (userns, CLONE_NEWUSER) < 0)
        sbx_error_sys (&e, "enter the container's network namespace: not permitted, nor to enter the "
                           "user namespace owning it (an unprivileged caller may enter only one it owns)");
      else if (userns >= 0 && setns (netns_fd, CLONE_NEWNET) < 0)
        sbx_error_sys (&e, "enter the container's network namespace from its user namespace");
      else if ((s = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) < 0)
        sbx_error_sys (&e, "open a netfilter netlink socket in the container's network namespace");
      if (e)
        sbx_process_sync_send_error (sp[1], e);
      else
        sbx_process_sync_send (sp[1], SYNC_GO, s, NULL);
      _exit (0);
    }
  close (sp[1]);
  if (pid < 0)
    sbx_error_sys (err, "fork");
  else
    sbx_process_sync_expect (sp[0], SYNC_GO, &fd, err);
  close (sp[0]);
  if (pid > 0)
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
      ;
  if (fd >= 0)
    {
      int dom = 0, proto = 0;
      socklen_t l1 = sizeof dom, l2 = sizeof proto;
      if (getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &dom, &l1) < 0
          || getsockopt (fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l2) < 0 || dom != AF_NETLINK
          || proto != NETLINK_NETFILTER)
        {
          close (fd);
          return sbx_error_set (err, EPROTO,
                                "the egress socket from the container's user namespace is not "
                                "a netfilter netlink socket");
        }
    }
  return fd;
}

/* A netfilter netlink socket of the namespace netns_fd.  */
int
egr_nl_open (nl_ctx *x, int netns_fd, sbx_error **err)
{
  cleanup_close int self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
  int one = 1, saved;

  if (self < 0)
    return sbx_error_sys (err, "open the runtime's network namespace");
  /* Entering our own namespace is allowed exactly when coming back is.  */
  if (setns (self, CLONE_NEWNET) < 0 || setns (netns_fd, CLONE_NEWNET) < 0)
    {
      int fd;
      if (errno != EPERM)
        return sbx_error_sys (err, "enter the container's network namespace");
      fd = nl_socket_from_child (netns_fd, err);
      if (fd < 0)
        return -1;
      x->nl = mnl_socket_fdopen (fd);
      if (x->nl == NULL)
        {
          saved = errno;
          close (fd);
          return sbx_error_set (err, saved, "the netfilter netlink socket");
        }
    }
  else
    {
      x->nl = mnl_socket_open2 (NETLINK_NETFILTER, SOCK_CLOEXEC);
      saved = errno;
      if (setns (self, CLONE_NEWNET) < 0)
        return sbx_error_sys (err, "return to the runtime's network namespace");
      if (x->nl == NULL)
        return sbx_error_set (err, saved, "open a netfilter netlink socket");
    }
  if (mnl_socket_bind (x->nl, 0, MNL_SOCKET_AUTOPID) < 0)
    return sbx_error_sys (err, "bind the netfilter netlink socket");
  setsockopt (mnl_socket_get_fd (x->nl), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt (mnl_socket_get_fd (x->nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt (mnl_socket_get_fd (x->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  x->seq0 = x->seq = (uint32_t)time (NULL);
  return 0;
}

void
egr_batch_start (nl_ctx *x, size_t nmsgs, size_t extra_bytes)
{
  /* A message is well under 2 KiB even with 255-byte table and chain
     names and an IPv6 CIDR with a port range.  */
  x->cap = 4096 + 2048 * nmsgs + extra_bytes;
  /* mnl batches may overrun their limit by one message.  */
  x->buf = xmalloc0 (x->cap + MNL_SOCKET_BUFFER_SIZE);
  x->b = mnl_nlmsg_batch_start (x->buf, x->cap);
  nftnl_batch_begin (mnl_nlmsg_batch_current (x->b), x->seq++);
  mnl_nlmsg_batch_next (x->b);
}

/* The header of the next message of the batch; `what` describes it for
   errors (taken).  */
struct nlmsghdr *
egr_batch_msg (nl_ctx *x, uint16_t type, uint16_t flags, char *what)
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

void
egr_batch_done_msg (nl_ctx *x)
{
  if (!mnl_nlmsg_batch_next (x->b))
    x->overflow = true;
}

/* The text of an extended ack (NLMSGERR_ATTR_MSG), or NULL.  */
static const char *
egr_extack_msg (const struct nlmsghdr *nlh)
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

/* Send len bytes of buf, then read replies until the ack of message
   `last` (sent with NLM_F_ACK).  The first error reported for any message
   becomes *err; cb sees every other reply.  */
int
egr_nl_talk (nl_ctx *x, const void *buf, size_t len, uint32_t last, nl_reply_cb cb, void *data,
             sbx_error **err)
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
                  const char *ext = egr_extack_msg (nlh);
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
          if (nlh->nlmsg_type == NLMSG_DONE && nlh->nlmsg_seq == last) /* end of a dump */
            {
              if (first)
                {
                  *err = steal_ptr (first);
                  return -1;
                }
              return 0;
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
int
egr_batch_commit (nl_ctx *x, sbx_error **err)
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
  return egr_nl_talk (x, nlh, nlh->nlmsg_len, gen_seq, NULL, NULL, err);
}

/* ---------------------------------------------------------------- rules */

struct nftnl_expr *
egr_expr_new (struct nftnl_rule *r, const char *name)
{
  struct nftnl_expr *e = nftnl_expr_alloc (name);
  if (e == NULL)
    abort ();
  nftnl_rule_add_expr (r, e);
  return e;
}

void
egr_x_meta_to (struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
  struct nftnl_expr *e = egr_expr_new (r, "meta");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_META_DREG, dreg);
}

void
egr_x_meta (struct nftnl_rule *r, uint32_t key)
{
  egr_x_meta_to (r, key, NFT_REG_1);
}

void
egr_x_cmp (struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
  struct nftnl_expr *e = egr_expr_new (r, "cmp");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set (e, NFTNL_EXPR_CMP_DATA, data, len);
}

void
egr_x_payload_to (struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg)
{
  struct nftnl_expr *e = egr_expr_new (r, "payload");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}

void
egr_x_payload (struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
  egr_x_payload_to (r, base, offset, len, NFT_REG_1);
}

void
egr_x_mask (struct nftnl_rule *r, const void *mask, uint32_t len)
{
  static const uint8_t zero[16];
  struct nftnl_expr *e = egr_expr_new (r, "bitwise");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_BITWISE_LEN, len);
  nftnl_expr_set (e, NFTNL_EXPR_BITWISE_MASK, mask, len);
  nftnl_expr_set (e, NFTNL_EXPR_BITWISE_XOR, zero, len);
}

void
egr_x_range (struct nftnl_rule *r, const void *from, const void *to, uint32_t len)
{
  struct nftnl_expr *e = egr_expr_new (r, "range");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
  nftnl_expr_set (e, NFTNL_EXPR_RANGE_FROM_DATA, from, len);
  nftnl_expr_set (e, NFTNL_EXPR_RANGE_TO_DATA, to, len);
}

void
egr_x_verdict (struct nftnl_rule *r, int verdict, const char *chain)
{
  struct nftnl_expr *e = egr_expr_new (r, "immediate");
  nftnl_expr_set_u32 (e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32 (e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
  if (chain)
    nftnl_expr_set_str (e, NFTNL_EXPR_IMM_CHAIN, chain);
}

void
egr_x_u8_eq (struct nftnl_rule *r, uint32_t meta_key, uint8_t v)
{
  egr_x_meta (r, meta_key);
  egr_x_cmp (r, NFT_CMP_EQ, &v, 1);
}

void
egr_prefix_mask (uint8_t *mask, uint32_t len, int prefix)
{
  for (int i = 0; i < (int)len; i++)
    {
      int bits = prefix - i * 8;
      mask[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
    }
}

/* meta nfproto, then the destination address (masked to the prefix).  */
void
egr_x_daddr (struct nftnl_rule *r, const sbx_net_rule *d)
{
  bool v4 = d->family == AF_INET;
  uint32_t len = v4 ? 4 : 16;
  int full = v4 ? 32 : 128;

  egr_x_u8_eq (r, NFT_META_NFPROTO, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
  if (d->prefix == 0)
    return;
  egr_x_payload (r, NFT_PAYLOAD_NETWORK_HEADER, v4 ? 16 : 24, len);
  if (d->prefix < full)
    {
      uint8_t mask[16];
      egr_prefix_mask (mask, len, d->prefix);
      egr_x_mask (r, mask, len);
    }
  egr_x_cmp (r, NFT_CMP_EQ, d->addr, len);
}

void
egr_x_dport (struct nftnl_rule *r, uint16_t lo, uint16_t hi)
{
  uint16_t a = htons (lo), b = htons (hi);
  egr_x_payload (r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
  if (lo == hi)
    egr_x_cmp (r, NFT_CMP_EQ, &a, 2);
  else
    egr_x_range (r, &a, &b, 2);
}
