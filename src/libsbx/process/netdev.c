/* netdev.c - rtnetlink for the container's network namespace (see
 * process.h): its loopback brought up, and linux.netDevices moved in (with
 * their permanent addresses, and renamed in the same message) and back out
 * at delete.  No `ip`: one netlink socket per namespace.  */
#include <config.h>
#include "process/process.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define NL_TIMEOUT_S 5

typedef struct
{
  struct mnl_socket *nl;
  uint32_t seq;
} rtnl;

static void
rtnl_close (rtnl *r)
{
  if (r->nl)
    mnl_socket_close (r->nl);
  r->nl = NULL;
}

/* A route netlink socket of netns_fd's namespace (-1: ours).  A socket
   stays in the namespace it was made in.  */
static int
rtnl_open (rtnl *r, int netns_fd, sbx_error **err)
{
  struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
  int one = 1, saved;
  cleanup_close int self = -1;

  *r = (rtnl){ .seq = (uint32_t)time (NULL) };
  if (netns_fd >= 0)
    {
      self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (self < 0)
        return sbx_error_sys (err, "open the runtime's network namespace");
      if (setns (netns_fd, CLONE_NEWNET) < 0)
        return sbx_error_sys (err, "enter the container's network namespace");
    }
  r->nl = mnl_socket_open2 (NETLINK_ROUTE, SOCK_CLOEXEC);
  saved = errno;
  if (self >= 0 && setns (self, CLONE_NEWNET) < 0)
    return sbx_error_sys (err, "return to the runtime's network namespace");
  if (r->nl == NULL)
    return sbx_error_set (err, saved, "open a route netlink socket");
  if (mnl_socket_bind (r->nl, 0, MNL_SOCKET_AUTOPID) < 0)
    {
      rtnl_close (r);
      return sbx_error_sys (err, "bind the route netlink socket");
    }
  setsockopt (mnl_socket_get_fd (r->nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt (mnl_socket_get_fd (r->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return 0;
}

static struct nlmsghdr *
rtnl_msg (rtnl *r, char *buf, uint16_t type, uint16_t flags)
{
  struct nlmsghdr *h = mnl_nlmsg_put_header (buf);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  h->nlmsg_seq = ++r->seq;
  return h;
}

/* Send h and read until its answer is complete; cb sees each message of
   a dump.  Returns -1 with errno.  */
static int
rtnl_talk (rtnl *r, struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  uint32_t portid = mnl_socket_get_portid (r->nl);
  ssize_t n;
  int ret;

  if (mnl_socket_sendto (r->nl, h, h->nlmsg_len) < 0)
    return -1;
  do
    {
      n = mnl_socket_recvfrom (r->nl, buf, sizeof buf);
      if (n < 0)
        return -1;
      ret = mnl_cb_run (buf, (size_t)n, h->nlmsg_seq, portid, cb, data);
    }
  while (ret > 0 && (h->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
  return ret < 0 ? -1 : 0;
}

/* RTM_NEWLINK on ifindex: flags under change, and optionally a target
   namespace and a new name.  */
static int
link_set (rtnl *r, int ifindex, unsigned flags, unsigned change, int netns_fd, const char *name)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *h = rtnl_msg (r, buf, RTM_NEWLINK, NLM_F_ACK);
  struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header (h, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = flags;
  ifi->ifi_change = change;
  if (netns_fd >= 0)
    mnl_attr_put_u32 (h, IFLA_NET_NS_FD, (uint32_t)netns_fd);
  if (name)
    mnl_attr_put_strz (h, IFLA_IFNAME, name);
  return rtnl_talk (r, h, NULL, NULL);
}

/* The index of a link by name, in r's namespace; 0 when absent.  */
struct link_query
{
  int index;
};

static int
link_cb (const struct nlmsghdr *h, void *data)
{
  struct ifinfomsg *ifi = mnl_nlmsg_get_payload (h);
  ((struct link_query *)data)->index = ifi->ifi_index;
  return MNL_CB_OK;
}

static int
link_index (rtnl *r, const char *name)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *h = rtnl_msg (r, buf, RTM_GETLINK, 0);
  struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header (h, sizeof *ifi);
  struct link_query q = { 0 };
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz (h, IFLA_IFNAME, name);
  if (rtnl_talk (r, h, link_cb, &q) < 0)
    return 0;
  return q.index;
}

int
sbx_process_netns_loopback_up (sbx_error **err)
{
  rtnl r;
  int rc = 0;
  if (rtnl_open (&r, -1, err) < 0)
    return -1;
  /* The loopback of a new network namespace is always index 1.  */
  if (link_set (&r, 1, IFF_UP, IFF_UP, -1, NULL) < 0)
    rc = sbx_error_sys (err, "bring up the loopback interface of the network namespace");
  rtnl_close (&r);
  return rc;
}

/* ---------------------------------------------------------------- addresses */

/* The permanent addresses of a link, kept as whole RTM_NEWADDR payloads
   to be replayed in the other namespace.  Kernel-made IPv6 link-local
   addresses are made again there.  */
typedef struct
{
  int ifindex;
  char **msgs;
  size_t *lens;
  size_t n;
} addr_list;

static void
addr_list_release (addr_list *a)
{
  for (size_t i = 0; i < a->n; i++)
    free (a->msgs[i]);
  free (a->msgs);
  free (a->lens);
  a->n = 0;
}

static int
addr_cb (const struct nlmsghdr *h, void *data)
{
  addr_list *a = data;
  struct ifaddrmsg *ifa = mnl_nlmsg_get_payload (h);
  uint32_t flags = ifa->ifa_flags;
  struct nlattr *at;
  const unsigned char *addr = NULL;

  if (h->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != a->ifindex)
    return MNL_CB_OK;
  mnl_attr_for_each (at, h, sizeof *ifa)
  {
    if (mnl_attr_get_type (at) == IFA_FLAGS && mnl_attr_get_payload_len (at) >= 4)
      flags = mnl_attr_get_u32 (at);
    if (mnl_attr_get_type (at) == IFA_ADDRESS)
      addr = mnl_attr_get_payload (at);
  }
  if (!(flags & IFA_F_PERMANENT))
    return MNL_CB_OK;
  if (ifa->ifa_family == AF_INET6 && addr && addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80)
    return MNL_CB_OK;
  a->msgs = xrealloc (a->msgs, (a->n + 1) * sizeof *a->msgs);
  a->lens = xrealloc (a->lens, (a->n + 1) * sizeof *a->lens);
  a->lens[a->n] = mnl_nlmsg_get_payload_len (h);
  a->msgs[a->n] = xmalloc0 (a->lens[a->n]);
  memcpy (a->msgs[a->n], ifa, a->lens[a->n]);
  a->n++;
  return MNL_CB_OK;
}

static int
addrs_save (rtnl *r, int ifindex, addr_list *a)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *h = rtnl_msg (r, buf, RTM_GETADDR, NLM_F_DUMP);
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header (h, sizeof *ifa);
  ifa->ifa_family = AF_UNSPEC;
  *a = (addr_list){ .ifindex = ifindex };
  return rtnl_talk (r, h, addr_cb, a);
}

static int
addrs_restore (rtnl *r, int ifindex, const addr_list *a, const char *dev, sbx_error **err)
{
  for (size_t i = 0; i < a->n; i++)
    {
      char buf[MNL_SOCKET_BUFFER_SIZE];
      struct nlmsghdr *h = rtnl_msg (r, buf, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
      struct ifaddrmsg *ifa;
      struct nlattr *at;
      if (a->lens[i] < sizeof *ifa || a->lens[i] > sizeof buf - 2 * sizeof *h)
        continue;
      ifa = mnl_nlmsg_put_extra_header (h, sizeof *ifa);
      memcpy (ifa, a->msgs[i], sizeof *ifa);
      ifa->ifa_index = (uint32_t)ifindex;
      /* The addresses and flags; not the label (it carries the old name)
         nor the cache info (lifetimes of a permanent address).  */
      for (at = (struct nlattr *)(a->msgs[i] + MNL_ALIGN (sizeof *ifa));
           mnl_attr_ok (at, (int)((char *)a->msgs[i] + a->lens[i] - (char *)at)); at = mnl_attr_next (at))
        {
          uint16_t t = mnl_attr_get_type (at);
          if (t == IFA_ADDRESS || t == IFA_LOCAL || t == IFA_BROADCAST || t == IFA_FLAGS)
            mnl_attr_put (h, t, mnl_attr_get_payload_len (at), mnl_attr_get_payload (at));
        }
      if (rtnl_talk (r, h, NULL, NULL) < 0)
        return sbx_error_sys (err, "linux.netDevices: restore an address of `%s`", dev);
    }
  return 0;
}

/* ---------------------------------------------------------------- netDevices */

static bool
valid_ifname (const char *s)
{
  size_t n = strlen (s);
  if (n == 0 || n >= IFNAMSIZ || strcmp (s, ".") == 0 || strcmp (s, "..") == 0)
    return false;
  for (const char *p = s; *p; p++)
    if (*p == '/' || *p == ':' || *p == ' ' || *p == '\t' || *p == '\n' || (unsigned char)*p < 0x20)
      return false;
  return true;
}

static const char *
target_name (const oci_linux *l, size_t i)
{
  const oci_net_device *d = l->net_devices_values[i];
  return d && d->name && *d->name ? d->name : l->net_devices_keys[i];
}

int
sbx_process_netdev_validate (const oci_linux *l, bool own_netns, sbx_error **err)
{
  if (l == NULL || l->net_devices_len == 0)
    return 0;
  if (!own_netns)
    return sbx_error_set (err, EINVAL,
                          "linux.netDevices: moving devices needs a network namespace of the container's own "
                          "in linux.namespaces (not the host's)");
  for (size_t i = 0; i < l->net_devices_len; i++)
    {
      const char *host = l->net_devices_keys[i], *name = target_name (l, i);
      if (!valid_ifname (host))
        return sbx_error_set (err, EINVAL, "linux.netDevices: `%s` is not an interface name", host);
      if (!valid_ifname (name))
        return sbx_error_set (err, EINVAL, "linux.netDevices[\"%s\"].name: `%s` is not an interface name",
                              host, name);
      if (strcmp (host, "lo") == 0)
        return sbx_error_set (err, EINVAL, "linux.netDevices: the loopback interface cannot be moved");
      if (if_nametoindex (host) == 0)
        return sbx_error_set (err, ENODEV, "linux.netDevices: no interface `%s` on the host", host);
      if (strcmp (name, "lo") == 0)
        return sbx_error_set (err, EEXIST, "linux.netDevices[\"%s\"].name: `lo` exists in every namespace",
                              host);
      for (size_t j = 0; j < i; j++)
        if (strcmp (target_name (l, j), name) == 0)
          return sbx_error_set (err, EEXIST,
                                "linux.netDevices: two devices would be named `%s` in the container", name);
    }
  return 0;
}

/* Move one link from r_from's namespace into to_fd's (r_to a socket
   there), named `to_name`, with its permanent addresses.  */
static int
move_link (rtnl *r_from, rtnl *r_to, int to_fd, const char *from_name, const char *to_name, sbx_error **err)
{
  cleanup_free char *what = xasprintf ("linux.netDevices[\"%s\"]", from_name);
  addr_list a = { 0 };
  int idx = link_index (r_from, from_name), r = -1;
  if (idx == 0)
    return sbx_error_set (err, ENODEV, "%s: no interface `%s` to move", what, from_name);
  if (addrs_save (r_from, idx, &a) < 0)
    {
      sbx_error_sys (err, "%s: read its addresses", what);
      goto out;
    }
  if (link_set (r_from, idx, 0, 0, to_fd, to_name) < 0)
    {
      sbx_error_sys (err, "%s: move it as `%s`", what, to_name);
      goto out;
    }
  idx = link_index (r_to, to_name);
  if (idx == 0)
    {
      sbx_error_set (err, ENODEV, "%s: `%s` is not there after the move", what, to_name);
      goto out;
    }
  r = addrs_restore (r_to, idx, &a, to_name, err);
out:
  addr_list_release (&a);
  return r;
}

int
sbx_process_netdev_move_in (const oci_linux *l, int netns_fd, sbx_error **err)
{
  rtnl host = { 0 }, ctr = { 0 };
  int r = 0;
  if (l == NULL || l->net_devices_len == 0)
    return 0;
  if (rtnl_open (&host, -1, err) < 0 || rtnl_open (&ctr, netns_fd, err) < 0)
    r = -1;
  for (size_t i = 0; r == 0 && i < l->net_devices_len; i++)
    r = move_link (&host, &ctr, netns_fd, l->net_devices_keys[i], target_name (l, i), err);
  rtnl_close (&host);
  rtnl_close (&ctr);
  return r;
}

void
sbx_process_netdev_move_out (const oci_linux *l, int netns_fd)
{
  rtnl host = { 0 }, ctr = { 0 };
  cleanup_close int self = -1;
  if (l == NULL || l->net_devices_len == 0 || netns_fd < 0)
    return;
  self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self >= 0 && rtnl_open (&host, -1, NULL) == 0 && rtnl_open (&ctr, netns_fd, NULL) == 0)
    for (size_t i = 0; i < l->net_devices_len; i++)
      {
        cleanup_error sbx_error *e = NULL;
        if (move_link (&ctr, &host, self, target_name (l, i), l->net_devices_keys[i], &e) < 0)
          sbx_warn ("%s", e->msg);
      }
  rtnl_close (&host);
  rtnl_close (&ctr);
}
