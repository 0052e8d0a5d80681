/* egress/policy.c - the org.sbxrun.net.* annotations: parsing, name
 * resolution, resolv.conf, and the checks that refuse a policy the
 * container could escape (see egress.h, docs/annotations.md).
 * Nothing here touches the system beyond reading files and resolving
 * names, so it all runs before create makes anything.  */
#include <config.h>
#include "egress/egress.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"
#include "egress/egress_internal.h"

const sbx_net_annotation sbx_net_annotations[] = {
  { SBX_NET_ALLOW, "egress allowlist: [tcp:|udp:]HOST[:PORT[-PORT]] entries (IPv4, IPv4 CIDR, "
                   "[IPv6], [IPv6 CIDR] or DNS name resolved at create), comma/space separated" },
  { SBX_NET_EGRESS, "open (default without allow), allowlist (implied by allow) or deny (loopback "
                    "only)" },
  { SBX_NET_DNS, "resolv (default: port 53 to the nameservers of the resolv.conf the engine "
                 "bind-mounts at /etc/resolv.conf, else of the host's), image (the image's own "
                 "/etc/resolv.conf), none, or resolver addresses" },
  { NULL, NULL },
};

/* ---------------------------------------------------------------- entries */

static bool
all_of (const char *s, size_t n, const char *set)
{
  for (size_t i = 0; i < n; i++)
    if (!strchr (set, s[i]) || s[i] == '\0')
      return false;
  return n > 0;
}

static bool
all_alpha (const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isalpha ((unsigned char)s[i]))
      return false;
  return n > 0;
}

/* A decimal number of at most 6 digits (so no overflow); -1 otherwise.  */
static long
small_number (const char *s, size_t n)
{
  long v = 0;
  if (n == 0 || n > 6 || !all_of (s, n, "0123456789"))
    return -1;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (s[i] - '0');
  return v;
}

static int
parse_port (const char *s, size_t n, uint16_t *out, char **why)
{
  long v = small_number (s, n);
  if (n == 0)
    {
      *why = xasprintf ("missing port number");
      return -1;
    }
  if (v < 0 && all_of (s, n, "0123456789"))
    v = 1000000; /* many digits: out of range, not malformed */
  if (v < 0)
    {
      *why = xasprintf ("invalid port `%.*s`", (int)n, s);
      return -1;
    }
  if (v < 1 || v > 65535)
    {
      *why = xasprintf ("port %.*s out of range (1-65535)", (int)n, s);
      return -1;
    }
  *out = (uint16_t)v;
  return 0;
}

static int
parse_ports (const char *s, sbx_net_rule *r, char **why)
{
  const char *dash = strchr (s, '-');
  if (*s == '\0')
    {
      *why = xasprintf ("missing port after `:`");
      return -1;
    }
  if (dash == NULL)
    {
      if (parse_port (s, strlen (s), &r->port_min, why) < 0)
        return -1;
      r->port_max = r->port_min;
      return 0;
    }
  if (parse_port (s, dash - s, &r->port_min, why) < 0
      || parse_port (dash + 1, strlen (dash + 1), &r->port_max, why) < 0)
    return -1;
  if (r->port_min > r->port_max)
    {
      *why = xasprintf ("port range %s is reversed", s);
      return -1;
    }
  return 0;
}

static int
parse_prefix (const char *s, int max, uint8_t *out, char **why)
{
  long v = small_number (s, strlen (s));
  if (v < 0)
    {
      *why = xasprintf ("invalid prefix length `%s`", s);
      return -1;
    }
  if (v > max)
    {
      *why = xasprintf ("prefix length %ld out of range (0-%d)", v, max);
      return -1;
    }
  *out = (uint8_t)v;
  return 0;
}

static void
mask_rule (sbx_net_rule *r)
{
  int bytes = r->family == AF_INET ? 4 : 16;
  for (int i = 0; i < bytes; i++)
    {
      int bits = r->prefix - i * 8;
      uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
      r->addr[i] &= m;
    }
}

/* RFC 1123 host names (plus `_`, as in service names); one trailing dot
   is allowed.  */
static bool
valid_dns_name (const char *s)
{
  size_t n = strlen (s), start = 0;
  if (n && s[n - 1] == '.')
    n--;
  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i <= n; i++)
    {
      if (i == n || s[i] == '.')
        {
          size_t len = i - start;
          if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
            return false;
          start = i + 1;
        }
      else if (!isalnum ((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
        return false;
    }
  return true;
}

/* HOST part without brackets: IPv4 address, IPv4 CIDR or name.  */
static int
parse_plain_host (char *host, sbx_net_entry *e, char **why)
{
  char *slash = strchr (host, '/');
  if (slash)
    *slash = '\0';
  if (*host == '\0')
    {
      *why = xasprintf ("missing host");
      return -1;
    }
  if (all_of (host, strlen (host), "0123456789."))
    {
      if (inet_pton (AF_INET, host, e->rule.addr) != 1)
        {
          *why = xasprintf ("invalid IPv4 address `%s`", host);
          return -1;
        }
      e->rule.family = AF_INET;
      e->rule.prefix = 32;
      if (slash && parse_prefix (slash + 1, 32, &e->rule.prefix, why) < 0)
        return -1;
      mask_rule (&e->rule);
      return 0;
    }
  if (!valid_dns_name (host))
    {
      *why = xasprintf ("invalid host name `%s`", host);
      return -1;
    }
  if (slash)
    {
      *why = xasprintf ("a prefix length needs an IP address, not the name `%s`", host);
      return -1;
    }
  e->name = xstrdup (host);
  return 0;
}

int
sbx_net_entry_parse (const char *text, sbx_net_entry *out, char **why)
{
  cleanup_free char *buf = xstrdup (text);
  char *rest = buf, *colon;
  sbx_net_entry e = { { 0 }, NULL };

  *why = NULL;
  /* Protocol prefix: a word of letters before the first colon, unless what
     follows is a port (then it was a host name: `db:5432`).  */
  colon = strchr (rest, ':');
  if (rest[0] != '[' && colon && all_alpha (rest, colon - rest)
      && !all_of (colon + 1, strlen (colon + 1), "0123456789-"))
    {
      *colon = '\0';
      if (strcasecmp (rest, "tcp") == 0)
        e.rule.proto = IPPROTO_TCP;
      else if (strcasecmp (rest, "udp") == 0)
        e.rule.proto = IPPROTO_UDP;
      else
        {
          *why = xasprintf ("unknown protocol `%s` (expected tcp: or udp:)", rest);
          return -1;
        }
      rest = colon + 1;
    }
  if (rest[0] == '[')
    {
      char *end = strchr (rest, ']'), *slash;
      if (end == NULL)
        {
          *why = xasprintf ("missing `]` after the IPv6 address");
          goto fail;
        }
      *end = '\0';
      slash = strchr (rest + 1, '/');
      if (slash)
        *slash = '\0';
      if (inet_pton (AF_INET6, rest + 1, e.rule.addr) != 1)
        {
          *why = xasprintf ("invalid IPv6 address `%s`", rest + 1);
          goto fail;
        }
      e.rule.family = AF_INET6;
      e.rule.prefix = 128;
      if (slash && parse_prefix (slash + 1, 128, &e.rule.prefix, why) < 0)
        goto fail;
      if (IN6_IS_ADDR_V4MAPPED ((struct in6_addr *)e.rule.addr) && e.rule.prefix >= 96)
        {
          /* ::ffff:a.b.c.d is IPv4 on the wire.  */
          memmove (e.rule.addr, e.rule.addr + 12, 4);
          memset (e.rule.addr + 4, 0, 12);
          e.rule.family = AF_INET;
          e.rule.prefix -= 96;
        }
      mask_rule (&e.rule);
      rest = end + 1;
      if (*rest != '\0' && *rest != ':')
        {
          *why = xasprintf ("unexpected `%s` after `]`", rest);
          goto fail;
        }
      if (*rest == ':' && parse_ports (rest + 1, &e.rule, why) < 0)
        goto fail;
    }
  else
    {
      colon = strchr (rest, ':');
      if (colon && strchr (colon + 1, ':'))
        {
          *why = xasprintf ("an IPv6 address must be in brackets, as in `[fd00::1]:443`");
          goto fail;
        }
      if (colon)
        *colon = '\0';
      if (parse_plain_host (rest, &e, why) < 0)
        goto fail;
      if (colon && parse_ports (colon + 1, &e.rule, why) < 0)
        goto fail;
    }
  /* A port without a protocol means TCP.  */
  if (e.rule.port_min && e.rule.proto == 0)
    e.rule.proto = IPPROTO_TCP;
  *out = e;
  return 0;

fail:
  free (e.name);
  return -1;
}

void
sbx_net_entry_clear (sbx_net_entry *e)
{
  free (e->name);
  e->name = NULL;
}

static void
addr_text (const sbx_net_rule *r, char *buf, size_t len)
{
  if (inet_ntop (r->family, r->addr, buf, len) == NULL)
    snprintf (buf, len, "?");
}

char *
sbx_net_rule_format (const sbx_net_rule *r)
{
  char a[INET6_ADDRSTRLEN], host[INET6_ADDRSTRLEN + 8], ports[16] = "";
  const char *proto = r->proto == IPPROTO_TCP ? "tcp:" : r->proto == IPPROTO_UDP ? "udp:" : "";
  int full = r->family == AF_INET ? 32 : 128;

  addr_text (r, a, sizeof a);
  if (r->prefix == full)
    snprintf (host, sizeof host, r->family == AF_INET6 ? "[%s]" : "%s", a);
  else
    snprintf (host, sizeof host, r->family == AF_INET6 ? "[%s/%d]" : "%s/%d", a, r->prefix);
  if (r->port_min && r->port_min == r->port_max)
    snprintf (ports, sizeof ports, ":%u", r->port_min);
  else if (r->port_min)
    snprintf (ports, sizeof ports, ":%u-%u", r->port_min, r->port_max);
  return xasprintf ("%s%s%s", proto, host, ports);
}

/* ---------------------------------------------------------------- names */

static bool
same_rule (const sbx_net_rule *a, const sbx_net_rule *b)
{
  return a->family == b->family && a->prefix == b->prefix && a->proto == b->proto
         && a->port_min == b->port_min && a->port_max == b->port_max
         && memcmp (a->addr, b->addr, sizeof a->addr) == 0;
}

/* Names through getaddrinfo (which honours /etc/hosts): fill *addrs
   (malloc'd rules, full prefix) or return -1 with *why (malloc'd).  The
   unit tests replace getaddrinfo at link time (--wrap).  */
static int
resolve_name (const char *name, sbx_net_rule **addrs, size_t *n, char **why)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL;
  sbx_net_rule *v = NULL;
  size_t k = 0;
  int r = getaddrinfo (name, NULL, &hints, &res);

  if (r != 0)
    {
      *why = xasprintf ("cannot resolve `%s`: %s", name,
                        r == EAI_SYSTEM ? strerror (errno) : gai_strerror (r));
      return -1;
    }
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    {
      sbx_net_rule x = { 0 };
      if (ai->ai_family == AF_INET)
        {
          x.family = AF_INET;
          x.prefix = 32;
          memcpy (x.addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        }
      else if (ai->ai_family == AF_INET6)
        {
          x.family = AF_INET6;
          x.prefix = 128;
          memcpy (x.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        }
      else
        continue;
      for (size_t i = 0; i < k && x.family; i++)
        if (same_rule (&v[i], &x))
          x.family = 0;
      if (x.family == 0)
        continue;
      v = xrealloc (v, (k + 1) * sizeof *v);
      v[k++] = x;
    }
  freeaddrinfo (res);
  if (k == 0)
    {
      *why = xasprintf ("cannot resolve `%s`: no IPv4 or IPv6 address", name);
      return -1;
    }
  *addrs = v;
  *n = k;
  return 0;
}

/* ---------------------------------------------------------------- policy */

static int
rule_cmp_idx (const void *a, const void *b, void *base)
{
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  const sbx_net_rule *x = (const sbx_net_rule *)base + i, *y = (const sbx_net_rule *)base + j;
  int c = memcmp (x->addr, y->addr, sizeof x->addr);
  if (c == 0)
    c = x->family - y->family;
  if (c == 0)
    c = x->prefix - y->prefix;
  if (c == 0)
    c = x->proto - y->proto;
  if (c == 0)
    c = x->port_min - y->port_min;
  if (c == 0)
    c = x->port_max - y->port_max;
  return c ? c : (i > j) - (i < j);
}

/* Drop repeated rules, keeping the first of each in order (n log n), then
   enforce the limit.  */
static int
rules_dedup (sbx_net_rule *v, size_t *n, sbx_error **err)
{
  size_t *idx = xmalloc0 ((*n + 1) * sizeof *idx), k = 0;
  bool *drop = xmalloc0 (*n + 1);
  for (size_t i = 0; i < *n; i++)
    idx[i] = i;
  qsort_r (idx, *n, sizeof *idx, rule_cmp_idx, v);
  for (size_t i = 1; i < *n; i++)
    if (same_rule (&v[idx[i - 1]], &v[idx[i]]))
      drop[idx[i]] = true;
  for (size_t i = 0; i < *n; i++)
    if (!drop[i])
      v[k++] = v[i];
  *n = k;
  free (idx);
  free (drop);
  if (k > SBX_NET_MAX_RULES)
    return sbx_error_set (err, E2BIG, "annotation %s: more than %d destinations", SBX_NET_ALLOW,
                          SBX_NET_MAX_RULES);
  return 0;
}

static int
add_rule (sbx_net_rule **v, size_t *n, const sbx_net_rule *r, sbx_error **err)
{
  /* Only the previous entry: a list of 65,536 must not take n^2 here;
     rules_dedup drops the other duplicates.  */
  if (*n && same_rule (&(*v)[*n - 1], r))
    return 0;
  if (*n >= 4 * SBX_NET_MAX_RULES) /* before duplicates go (rules_dedup) */
    return sbx_error_set (err, E2BIG, "annotation %s: more than %d destinations", SBX_NET_ALLOW,
                          SBX_NET_MAX_RULES);
  if ((*n & (*n - 1)) == 0) /* grow by doubling */
    *v = xrealloc (*v, (*n ? 2 * *n : 1) * sizeof **v);
  (*v)[(*n)++] = *r;
  return 0;
}

/* Split on commas and white space; empty pieces are skipped.  */
static char **
split_entries (const char *s)
{
  char **v = xmalloc0 (sizeof *v);
  size_t n = 0;
  while (*s)
    {
      size_t len;
      s += strspn (s, ", \t\r\n");
      len = strcspn (s, ", \t\r\n");
      if (len == 0)
        break;
      v = xrealloc (v, (n + 2) * sizeof *v);
      v[n++] = strndup (s, len);
      v[n] = NULL;
      s += len;
    }
  return v;
}

char *
sbx_net_trimmed (const char *s)
{
  size_t len;
  s += strspn (s, " \t\r\n");
  len = strlen (s);
  while (len && strchr (" \t\r\n", s[len - 1]))
    len--;
  return strndup (s, len);
}

/* An address for org.sbxrun.net.dns or a nameserver line: IPv4 or IPv6,
   brackets optional, an IPv6 zone (`%eth0`) ignored.  */
static bool
parse_resolver (const char *text, sbx_net_rule *r)
{
  cleanup_free char *s = xstrdup (text);
  char *a = s, *pct;
  size_t len = strlen (s);

  memset (r, 0, sizeof *r);
  if (a[0] == '[' && len > 2 && a[len - 1] == ']')
    {
      a[len - 1] = '\0';
      a++;
    }
  pct = strchr (a, '%');
  if (pct)
    *pct = '\0';
  if (inet_pton (AF_INET, a, r->addr) == 1)
    r->family = AF_INET, r->prefix = 32;
  else if (inet_pton (AF_INET6, a, r->addr) == 1)
    r->family = AF_INET6, r->prefix = 128;
  return r->family != 0;
}

/* Open etc/resolv.conf below rootfd, following symlinks as if rootfd were
   "/" (openat2 RESOLVE_IN_ROOT).  Where the kernel (or valgrind) has no
   openat2, no symlink is followed at all (ELOOP).  */
static int
open_resolv_conf_in (int rootfd)
{
  struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
  cleanup_close int etc = -1;
  int fd = syscall (SYS_openat2, rootfd, "etc/resolv.conf", &how, sizeof how);

  if (fd >= 0 || errno != ENOSYS)
    return fd;
  etc = openat (rootfd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (etc < 0)
    return -1;
  return openat (etc, "resolv.conf", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static bool
is_bind (const oci_mount *m)
{
  if (m->type && strcmp (m->type, "bind") == 0)
    return true;
  for (size_t i = 0; i < m->options_len; i++)
    if (strcmp (m->options[i], "bind") == 0 || strcmp (m->options[i], "rbind") == 0)
      return true;
  return false;
}

/* The resolv.conf whose nameservers get port 53: the source of the
   engine's bind mount at /etc/resolv.conf if the config has one, else the
   host's own (the runtime's view).  The image's file only with IMAGE
   (dns=image): otherwise the image would choose which hosts get port 53.
   NULL (no error) when there is no such file.  */
static int
read_resolv_conf (const oci_config *c, const char *bundle, const char *rootfs, bool image, char **out,
                  sbx_error **err)
{
  cleanup_close int rootfd = -1, fd = -1;
  cleanup_free char *src = NULL;

  *out = NULL;
  for (size_t i = c->mounts_len; i-- > 0;)
    {
      const oci_mount *m = c->mounts[i];
      if (m->source && strcmp (m->destination, "/etc/resolv.conf") == 0 && is_bind (m))
        {
          src = m->source[0] == '/' || bundle == NULL ? xstrdup (m->source)
                                                      : xasprintf ("%s/%s", bundle, m->source);
          break;
        }
    }
  if (src)
    fd = open (src, O_RDONLY | O_CLOEXEC);
  else if (!image)
    fd = open ((src = xstrdup ("/etc/resolv.conf")), O_RDONLY | O_CLOEXEC);
  else if (rootfs)
    {
      rootfd = open (rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        return sbx_error_sys (err, "rootfs `%s`", rootfs);
      fd = open_resolv_conf_in (rootfd);
    }
  else
    return 0;
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return 0;
      return sbx_error_sys (err, "%s", src ? src : "the image's /etc/resolv.conf");
    }
  if (sbx_read_fd (fd, 1 << 20, out, NULL, err) < 0)
    return sbx_error_wrap (err, "%s", src ? src : "the image's /etc/resolv.conf");
  return 0;
}

static int
resolvers_from_resolv_conf (sbx_net_policy *p, const oci_config *c, const char *bundle, const char *rootfs,
                            bool image, sbx_error **err)
{
  cleanup_free char *text = NULL;
  char *save = NULL;

  if (read_resolv_conf (c, bundle, rootfs, image, &text, err) < 0)
    return sbx_error_wrap (err, "annotation %s=%s", SBX_NET_DNS, image ? "image" : "resolv");
  if (text == NULL)
    return 0;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *w = line + strspn (line, " \t");
      sbx_net_rule r;
      if (strncmp (w, "nameserver", 10) != 0 || !strchr (" \t", w[10]) || w[10] == '\0')
        continue;
      w += 10 + strspn (w + 10, " \t");
      w[strcspn (w, " \t\r#;")] = '\0';
      if (parse_resolver (w, &r) && add_rule (&p->resolvers, &p->nresolvers, &r, err) < 0)
        return -1;
    }
  return rules_dedup (p->resolvers, &p->nresolvers, err);
}

static int
parse_dns (sbx_net_policy *p, const char *value, bool validate_only, const oci_config *c, const char *bundle,
           const char *rootfs, sbx_error **err)
{
  cleanup_free char *v = value ? sbx_net_trimmed (value) : xstrdup ("resolv");
  cleanup_strv char **items = NULL;

  if (strcmp (v, "resolv") == 0 || strcmp (v, "image") == 0)
    {
      bool image = v[0] == 'i';
      p->dns = image ? SBX_NET_DNS_IMAGE : SBX_NET_DNS_RESOLV;
      return validate_only ? 0 : resolvers_from_resolv_conf (p, c, bundle, rootfs, image, err);
    }
  if (strcmp (v, "none") == 0)
    {
      p->dns = SBX_NET_DNS_NONE;
      return 0;
    }
  p->dns = SBX_NET_DNS_LIST;
  items = split_entries (v);
  if (items[0] == NULL)
    return sbx_error_set (err, EINVAL,
                          "annotation %s: empty (expected resolv, image, none or resolver addresses)",
                          SBX_NET_DNS);
  for (char **it = items; *it; it++)
    {
      sbx_net_rule r;
      if (!parse_resolver (*it, &r))
        return sbx_error_set (err, EINVAL,
                              "annotation %s: entry `%s`: not an IP address (expected resolv, "
                              "image, none or resolver addresses)",
                              SBX_NET_DNS, *it);
      if (add_rule (&p->resolvers, &p->nresolvers, &r, err) < 0)
        return -1;
    }
  return rules_dedup (p->resolvers, &p->nresolvers, err);
}

/* Append `"name": ["a", ...]` for one resolved name.  */
static void
resolved_add (oj_writer *w, const char *name, const sbx_net_rule *addrs, size_t n)
{
  oj_w_key (w, name);
  oj_w_begin_array (w);
  for (size_t i = 0; i < n; i++)
    {
      char a[INET6_ADDRSTRLEN];
      addr_text (&addrs[i], a, sizeof a);
      oj_w_string (w, a);
    }
  oj_w_end_array (w);
}

static int
parse_allow (sbx_net_policy *p, const char *value, sbx_error **err)
{
  cleanup_strv char **items = split_entries (value);
  cleanup_strv char **names = xmalloc0 (sizeof *names);
  size_t nnames = 0;
  oj_writer *w = oj_writer_new (false);
  int r = -1;

  oj_w_begin_object (w);
  for (char **it = items; *it; it++)
    {
      sbx_net_entry e;
      cleanup_free char *why = NULL;
      cleanup_free sbx_net_rule *addrs = NULL;
      size_t n = 0;
      bool seen = false;

      if (sbx_net_entry_parse (*it, &e, &why) < 0)
        {
          sbx_error_set (err, EINVAL, "annotation %s: entry `%s`: %s", SBX_NET_ALLOW, *it, why);
          goto out;
        }
      if (e.name == NULL)
        {
          if (add_rule (&p->rules, &p->nrules, &e.rule, err) < 0)
            goto out;
          continue;
        }
      if (resolve_name (e.name, &addrs, &n, &why) < 0)
        {
          sbx_error_set (err, 0, "annotation %s: entry `%s`: %s", SBX_NET_ALLOW, *it, why);
          sbx_net_entry_clear (&e);
          goto out;
        }
      for (size_t i = 0; i < n; i++)
        {
          sbx_net_rule x = e.rule;
          x.family = addrs[i].family;
          x.prefix = addrs[i].family == AF_INET ? 32 : 128;
          memcpy (x.addr, addrs[i].addr, sizeof x.addr);
          if (add_rule (&p->rules, &p->nrules, &x, err) < 0)
            {
              sbx_net_entry_clear (&e);
              goto out;
            }
        }
      for (size_t i = 0; i < nnames; i++)
        seen = seen || strcmp (names[i], e.name) == 0;
      if (!seen)
        {
          resolved_add (w, e.name, addrs, n);
          names = xrealloc (names, (nnames + 2) * sizeof *names);
          names[nnames++] = steal_ptr (e.name);
          names[nnames] = NULL;
        }
      sbx_net_entry_clear (&e);
    }
  if (rules_dedup (p->rules, &p->nrules, err) < 0)
    goto out;
  r = 0;
out:
  oj_w_end_object (w);
  {
    char *json = oj_writer_finish (w, NULL);
    if (r == 0 && nnames)
      p->resolved = json;
    else
      free (json);
  }
  return r;
}

static sbx_net_policy *
policy_new (void)
{
  return xmalloc0 (sizeof (sbx_net_policy));
}

int
sbx_net_policy_from_annotations (const oci_config *c, const char *bundle, const char *rootfs,
                                 sbx_net_policy **out, sbx_error **err)
{
  const char *allow = NULL, *egress = NULL, *dns = NULL;
  cleanup_free char *eg = NULL;
  sbx_net_policy *p = NULL;
  bool any = false;

  *out = NULL;
  for (size_t i = 0; i < c->annotations_len; i++)
    {
      const char *k = c->annotations_keys[i], *v = c->annotations_values[i];
      if (!sbx_has_prefix (k, SBX_NET_PREFIX))
        continue;
      any = true;
      if (strcmp (k, SBX_NET_ALLOW) == 0)
        allow = v;
      else if (strcmp (k, SBX_NET_EGRESS) == 0)
        egress = v;
      else if (strcmp (k, SBX_NET_DNS) == 0)
        dns = v;
      else if (strcmp (k, SBX_NET_RESOLVED) == 0 || strcmp (k, SBX_NET_DENIED) == 0)
        return sbx_error_set (err, EINVAL,
                              "annotation `%s`: written by sbxrun into the container's state, not "
                              "accepted from a bundle",
                              k);
      else
        return sbx_error_set (err, EINVAL,
                              "annotation `%s`: unknown key under `" SBX_NET_PREFIX "` (known: %s, "
                              "%s, %s)",
                              k, SBX_NET_ALLOW, SBX_NET_EGRESS, SBX_NET_DNS);
    }
  if (!any)
    return 0;

  p = policy_new ();
  eg = egress ? sbx_net_trimmed (egress) : xstrdup (allow ? "allowlist" : "open");
  if (strcmp (eg, "open") == 0)
    p->egress = SBX_NET_EGRESS_OPEN;
  else if (strcmp (eg, "allowlist") == 0)
    p->egress = SBX_NET_EGRESS_ALLOWLIST;
  else if (strcmp (eg, "deny") == 0)
    p->egress = SBX_NET_EGRESS_DENY;
  else
    {
      sbx_error_set (err, EINVAL, "annotation %s: `%s`: expected open, allowlist or deny", SBX_NET_EGRESS,
                     eg);
      goto fail;
    }
  if (allow && p->egress != SBX_NET_EGRESS_ALLOWLIST)
    {
      sbx_error_set (err, EINVAL, "annotation %s: conflicts with %s=%s (remove one of them)", SBX_NET_ALLOW,
                     SBX_NET_EGRESS, eg);
      goto fail;
    }
  if (p->egress == SBX_NET_EGRESS_OPEN)
    {
      /* Nothing to install; still reject a malformed dns value.  */
      if (parse_dns (p, dns, true, c, bundle, rootfs, err) < 0)
        goto fail;
      sbx_net_policy_free (p);
      return 0;
    }
  if (p->egress == SBX_NET_EGRESS_DENY)
    {
      if (parse_dns (p, dns ? dns : "none", true, c, bundle, rootfs, err) < 0)
        goto fail;
      if (p->dns != SBX_NET_DNS_NONE)
        {
          sbx_error_set (err, EINVAL,
                         "annotation %s: conflicts with %s=deny, which allows nothing but "
                         "loopback (use none)",
                         SBX_NET_DNS, SBX_NET_EGRESS);
          goto fail;
        }
      p->nresolvers = 0;
      *out = p;
      return 0;
    }
  if (allow && parse_allow (p, allow, err) < 0)
    goto fail;
  if (parse_dns (p, dns, false, c, bundle, rootfs, err) < 0)
    goto fail;
  *out = p;
  return 0;

fail:
  sbx_net_policy_free (p);
  return -1;
}

bool
sbx_net_config_has_policy (const oci_config *c)
{
  const char *allow
      = ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len, SBX_NET_ALLOW);
  const char *egress
      = ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len, SBX_NET_EGRESS);
  cleanup_free char *eg = egress ? sbx_net_trimmed (egress) : NULL;
  if (eg)
    return strcmp (eg, "open") != 0;
  return allow != NULL;
}

/* ---------------------------------------------------------------- access */

const sbx_net_rule *
sbx_net_policy_rules (const sbx_net_policy *p, size_t *n)
{
  *n = p->nrules;
  return p->rules;
}

const sbx_net_rule *
sbx_net_policy_resolvers (const sbx_net_policy *p, size_t *n)
{
  *n = p->nresolvers;
  return p->resolvers;
}

char *
sbx_net_policy_resolved (const sbx_net_policy *p)
{
  return p && p->resolved ? xstrdup (p->resolved) : NULL;
}

void
sbx_net_policy_annotate (const sbx_net_policy *p, oci_config *c)
{
  if (p && p->resolved)
    sbx_config_annotate (c, SBX_NET_RESOLVED, p->resolved);
}

void
sbx_net_policy_free (sbx_net_policy *p)
{
  if (p == NULL)
    return;
  free (p->rules);
  free (p->resolvers);
  free (p->resolved);
  free (p->pod_id);
  free (p->pod_cgroup2);
  free (p->pod_netns);
  free (p);
}

void
sbx_net_policy_freep (sbx_net_policy **p)
{
  sbx_net_policy_free (*p);
  *p = NULL;
}
