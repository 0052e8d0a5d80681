/* test_netfilter.c - the org.sbxrun.net.* annotation parser (entries,
 * modes, DNS, resolution through a fake resolver, the checks that refuse a
 * policy the container could escape) and the nftables names, with a fake
 * resolver.  As root, test_live_apply also installs, counts and removes
 * rules in a network namespace of its own (sbxtu<pid>); the container
 * side is covered by tests/integration/test_netfilter.py.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/core.h"
#include "egress/egress.h"
#include "egress/egress_internal.h"

/* ---------------------------------------------------------------- helpers */

/* A fake getaddrinfo, linked in place of libc's (-Wl,--wrap): *.internal
   names from a fixed table, every other name unknown, so no test ever
   asks a real resolver.  */
static char fake_mark[] = "fake";

int __wrap_getaddrinfo (const char *name, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res);
void __wrap_freeaddrinfo (struct addrinfo *res);
void __real_freeaddrinfo (struct addrinfo *res);

int
__wrap_getaddrinfo (const char *name, const char *service, const struct addrinfo *hints,
                    struct addrinfo **res)
{
  static const struct
  {
    const char *name;
    const char *addrs[3];
  } table[] = {
    { "db.internal", { "10.0.0.5", "fd00::5", NULL } },
    { "api.internal", { "10.0.0.6", NULL } },
    { "v6.internal", { "fd00::6", NULL } },
  };
  (void)service, (void)hints;
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    {
      struct addrinfo **tail = res;
      if (strcmp (table[i].name, name) != 0)
        continue;
      *res = NULL;
      for (size_t k = 0; table[i].addrs[k]; k++)
        {
          struct
          {
            struct addrinfo ai;
            struct sockaddr_in6 sa;
          } *x = xmalloc0 (sizeof *x);
          struct sockaddr_in *sin = (struct sockaddr_in *)&x->sa;
          x->ai.ai_canonname = fake_mark;
          x->ai.ai_addr = (struct sockaddr *)&x->sa;
          if (inet_pton (AF_INET, table[i].addrs[k], &sin->sin_addr) == 1)
            x->ai.ai_family = sin->sin_family = AF_INET;
          else if (inet_pton (AF_INET6, table[i].addrs[k], &x->sa.sin6_addr) == 1)
            x->ai.ai_family = x->sa.sin6_family = AF_INET6;
          *tail = &x->ai;
          tail = &x->ai.ai_next;
        }
      return 0;
    }
  return EAI_NONAME;
}

void
__wrap_freeaddrinfo (struct addrinfo *res)
{
  if (res == NULL || res->ai_canonname != fake_mark)
    {
      __real_freeaddrinfo (res);
      return;
    }
  while (res)
    {
      struct addrinfo *next = res->ai_next;
      free (res);
      res = next;
    }
}

/* Set: config() adds no pid namespace (the container shares the host's). */
static bool host_pid;

/* A config from JSON text with a network namespace unless extra says
   otherwise: extra is spliced into the top-level object.  */
static oci_config *
config (const char *annotations, const char *namespaces, const char *process)
{
  char *msg = NULL;
  /* a pid namespace of its own unless the test says otherwise */
  bool pid = !host_pid && (namespaces == NULL || strstr (namespaces, "\"pid\"") == NULL);
  cleanup_free char *json = xasprintf (
      "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, \"annotations\": {%s},"
      " \"linux\": {\"namespaces\": [%s%s]}%s%s}",
      annotations, namespaces ? namespaces : "{\"type\": \"network\"}, {\"type\": \"mount\"}",
      pid ? ", {\"type\": \"pid\"}" : "", process ? ", \"process\": " : "", process ? process : "");
  oci_config *c = ocispec_parse (&oci_config_type, json, strlen (json), &msg);
  if (c == NULL)
    fail_msg ("bad test config: %s\n%s", msg, json);
  return c;
}

/* Parse and expect success; returns the policy (may be NULL).  */
static sbx_net_policy *
parse_ok (const char *annotations, const char *rootfs)
{
  oci_config *c = config (annotations, NULL, NULL);
  sbx_net_policy *p = NULL;
  sbx_error *err = NULL;
  if (sbx_net_policy_parse (c, NULL, rootfs, NULL, &p, &err) < 0)
    fail_msg ("unexpected error for {%s}: %s", annotations, err->msg);
  oci_config_free (c);
  return p;
}

static void
expect_error (const char *annotations, const char *namespaces, const char *process, const char *msg)
{
  oci_config *c = config (annotations, namespaces, process);
  sbx_net_policy *p = NULL;
  sbx_error *err = NULL;
  int r = sbx_net_policy_parse (c, NULL, NULL, NULL, &p, &err);
  oci_config_free (c);
  if (r == 0)
    {
      sbx_net_policy_free (p);
      fail_msg ("no error for {%s}", annotations);
    }
  assert_null (p);
  assert_non_null (err);
  assert_string_equal (err->msg, msg);
  sbx_error_free (err);
}

/* The rules of a policy as "a b c" in canonical form.  */
static char *
rules_text (const sbx_net_rule *v, size_t n)
{
  char *out = xstrdup ("");
  for (size_t i = 0; i < n; i++)
    {
      char *r = sbx_net_rule_format (&v[i]), *t;
      t = xasprintf ("%s%s%s", out, i ? " " : "", r);
      free (r);
      free (out);
      out = t;
    }
  return out;
}

static void
assert_rules (const sbx_net_policy *p, const char *want)
{
  size_t n;
  const sbx_net_rule *v = sbx_net_policy_rules (p, &n);
  cleanup_free char *got = rules_text (v, n);
  assert_string_equal (got, want);
}

static void
assert_resolvers (const sbx_net_policy *p, const char *want)
{
  size_t n;
  const sbx_net_rule *v = sbx_net_policy_resolvers (p, &n);
  cleanup_free char *got = rules_text (v, n);
  assert_string_equal (got, want);
}

/* ---------------------------------------------------------------- entries */

static void
check_entry (const char *text, const char *canon, const char *name)
{
  sbx_net_entry e;
  char *why = NULL;
  if (sbx_net_entry_parse (text, &e, &why) < 0)
    fail_msg ("`%s`: %s", text, why);
  if (name)
    {
      assert_non_null (e.name);
      assert_string_equal (e.name, name);
      /* format the proto/port part with a placeholder address */
      e.rule.family = AF_INET;
      e.rule.prefix = 32;
    }
  else
    assert_null (e.name);
  {
    cleanup_free char *got = sbx_net_rule_format (&e.rule);
    assert_string_equal (got, canon);
  }
  sbx_net_entry_clear (&e);
}

static void
test_entry_examples (void **state)
{
  /* Every example of the documentation.  */
  check_entry ("10.1.2.3:443", "tcp:10.1.2.3:443", NULL);
  check_entry ("udp:[fd00::53]:53", "udp:[fd00::53]:53", NULL);
  check_entry ("db.internal:5432", "tcp:0.0.0.0:5432", "db.internal");
  check_entry ("192.168.0.0/16", "192.168.0.0/16", NULL);
  check_entry ("tcp:10.0.0.7:8000-8100", "tcp:10.0.0.7:8000-8100", NULL);
  check_entry ("10.0.0.0/8", "10.0.0.0/8", NULL);
  check_entry ("[fd00::1]", "[fd00::1]", NULL);
  check_entry ("[fd00::/64]", "[fd00::/64]", NULL);
  /* More forms.  */
  check_entry ("10.1.2.3", "10.1.2.3", NULL);
  check_entry ("udp:10.0.0.1", "udp:10.0.0.1", NULL);
  check_entry ("tcp:[fd00::1]:443", "tcp:[fd00::1]:443", NULL);
  check_entry ("[fd00::1]:443", "tcp:[fd00::1]:443", NULL);
  check_entry ("[fd00::/48]:1-65535", "tcp:[fd00::/48]:1-65535", NULL);
  check_entry ("TCP:10.0.0.1:22", "tcp:10.0.0.1:22", NULL);
  check_entry ("10.1.2.3/24", "10.1.2.0/24", NULL); /* host bits cleared */
  check_entry ("0.0.0.0/0", "0.0.0.0/0", NULL);
  check_entry ("[::/0]", "[::/0]", NULL);
  check_entry ("[::ffff:10.0.0.1]:80", "tcp:10.0.0.1:80", NULL); /* IPv4 on the wire */
  check_entry ("[::ffff:10.0.0.0/104]", "10.0.0.0/8", NULL);
  check_entry ("localhost", "0.0.0.0", "localhost");
  check_entry ("udp:ntp.internal:123", "udp:0.0.0.0:123", "ntp.internal");
  check_entry ("_srv.example.com.", "0.0.0.0", "_srv.example.com.");
  check_entry ("db:5432", "tcp:0.0.0.0:5432", "db");
}

static void
check_bad_entry (const char *text, const char *why_want)
{
  sbx_net_entry e;
  char *why = NULL;
  if (sbx_net_entry_parse (text, &e, &why) == 0)
    {
      sbx_net_entry_clear (&e);
      fail_msg ("`%s` was accepted", text);
    }
  assert_non_null (why);
  assert_string_equal (why, why_want);
  free (why);
}

static void
test_entry_malformed (void **state)
{
  check_bad_entry ("", "missing host");
  check_bad_entry ("tcp:", "missing host");
  check_bad_entry (":80", "missing host");
  check_bad_entry ("10.0.0.1:", "missing port after `:`");
  check_bad_entry ("10.0.0.1:99999", "port 99999 out of range (1-65535)");
  check_bad_entry ("10.0.0.1:65536", "port 65536 out of range (1-65535)");
  check_bad_entry ("10.0.0.1:0", "port 0 out of range (1-65535)");
  check_bad_entry ("10.0.0.1:123456789", "port 123456789 out of range (1-65535)");
  check_bad_entry ("10.0.0.1:http", "invalid port `http`");
  check_bad_entry ("10.0.0.1:-80", "missing port number");
  check_bad_entry ("10.0.0.1:80-", "missing port number");
  check_bad_entry ("10.0.0.1:8100-8000", "port range 8100-8000 is reversed");
  check_bad_entry ("10.0.0.1:80-90-100", "invalid port `90-100`");
  check_bad_entry ("10.0.0.256", "invalid IPv4 address `10.0.0.256`");
  check_bad_entry ("10.0.0", "invalid IPv4 address `10.0.0`");
  check_bad_entry ("10.0.0.0/33", "prefix length 33 out of range (0-32)");
  check_bad_entry ("10.0.0.0/", "invalid prefix length ``");
  check_bad_entry ("10.0.0.0/x", "invalid prefix length `x`");
  check_bad_entry ("fd00::1", "an IPv6 address must be in brackets, as in `[fd00::1]:443`");
  check_bad_entry ("udp:fd00::53:53", "an IPv6 address must be in brackets, as in `[fd00::1]:443`");
  check_bad_entry ("[fd00::1", "missing `]` after the IPv6 address");
  check_bad_entry ("[zz::1]", "invalid IPv6 address `zz::1`");
  check_bad_entry ("[10.0.0.1]", "invalid IPv6 address `10.0.0.1`");
  check_bad_entry ("[]", "invalid IPv6 address ``");
  check_bad_entry ("[fd00::/129]", "prefix length 129 out of range (0-128)");
  check_bad_entry ("[fd00::1]x", "unexpected `x` after `]`");
  check_bad_entry ("[fd00::1]:", "missing port after `:`");
  check_bad_entry ("icmp:10.0.0.1", "unknown protocol `icmp` (expected tcp: or udp:)");
  check_bad_entry ("sctp:[fd00::1]:5", "unknown protocol `sctp` (expected tcp: or udp:)");
  check_bad_entry ("bad_host!", "invalid host name `bad_host!`");
  check_bad_entry ("-bad.example", "invalid host name `-bad.example`");
  check_bad_entry ("a..b", "invalid host name `a..b`");
  check_bad_entry ("db.internal/24", "a prefix length needs an IP address, not the name `db.internal`");
}

/* ---------------------------------------------------------------- policy */

static void
test_no_policy (void **state)
{
  assert_null (parse_ok ("\"other\": \"x\"", NULL));
  assert_null (parse_ok ("\"org.sbxrun.net.egress\": \"open\"", NULL));
  assert_null (parse_ok ("\"org.sbxrun.net.egress\": \" open \", \"org.sbxrun.net.dns\": \"none\"", NULL));
  /* dns alone changes nothing: egress stays open.  */
  assert_null (parse_ok ("\"org.sbxrun.net.dns\": \"10.0.0.53\"", NULL));
}

static void
test_allowlist (void **state)
{
  sbx_net_policy *p
      = parse_ok ("\"org.sbxrun.net.allow\": \"10.1.2.3:443, udp:[fd00::53]:53 db.internal:5432,\\n"
                  "192.168.0.0/16,,tcp:10.0.0.7:8000-8100 10.1.2.3:443 [fd00::/64]\","
                  "\"org.sbxrun.net.dns\": \"none\"",
                  NULL);
  cleanup_free char *resolved = NULL;
  assert_non_null (p);
  assert_int_equal (p->egress, SBX_NET_EGRESS_ALLOWLIST);
  assert_int_equal (p->dns, SBX_NET_DNS_NONE);
  /* duplicates dropped, names expanded in place */
  assert_rules (p, "tcp:10.1.2.3:443 udp:[fd00::53]:53 tcp:10.0.0.5:5432 tcp:[fd00::5]:5432 "
                   "192.168.0.0/16 tcp:10.0.0.7:8000-8100 [fd00::/64]");
  assert_resolvers (p, "");
  resolved = sbx_net_policy_resolved (p);
  assert_string_equal (resolved, "{\"db.internal\":[\"10.0.0.5\",\"fd00::5\"]}");
  sbx_net_policy_free (p);
}

static void
test_allowlist_names (void **state)
{
  sbx_net_policy *p = parse_ok ("\"org.sbxrun.net.allow\": \"udp:v6.internal:53 db.internal "
                                "api.internal:80-81 db.internal:22\","
                                "\"org.sbxrun.net.egress\": \"allowlist\","
                                "\"org.sbxrun.net.dns\": \"none\"",
                                NULL);
  cleanup_free char *resolved = sbx_net_policy_resolved (p);
  oci_config *c = config ("\"a\": \"b\"", NULL, NULL);
  assert_rules (p, "udp:[fd00::6]:53 10.0.0.5 [fd00::5] tcp:10.0.0.6:80-81 tcp:10.0.0.5:22 "
                   "tcp:[fd00::5]:22");
  assert_string_equal (resolved, "{\"v6.internal\":[\"fd00::6\"],\"db.internal\":[\"10.0.0.5\","
                                 "\"fd00::5\"],\"api.internal\":[\"10.0.0.6\"]}");
  /* The state's annotation.  */
  sbx_net_policy_annotate (p, c);
  assert_int_equal (c->annotations_len, 2);
  assert_string_equal (ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len,
                                        "org.sbxrun.net.resolved"),
                       resolved);
  oci_config_free (c);
  sbx_net_policy_free (p);
}

static void
test_allowlist_without_entries (void **state)
{
  sbx_net_policy *p = parse_ok ("\"org.sbxrun.net.egress\": \"allowlist\", "
                                "\"org.sbxrun.net.dns\": \"10.0.0.53 [fd00::53], fd00::54\"",
                                NULL);
  cleanup_free char *resolved = sbx_net_policy_resolved (p);
  assert_int_equal (p->egress, SBX_NET_EGRESS_ALLOWLIST);
  assert_int_equal (p->dns, SBX_NET_DNS_LIST);
  assert_rules (p, "");
  assert_resolvers (p, "10.0.0.53 [fd00::53] [fd00::54]");
  assert_null (resolved);
  sbx_net_policy_free (p);

  /* An empty allow list is an allowlist too.  */
  p = parse_ok ("\"org.sbxrun.net.allow\": \"\", \"org.sbxrun.net.dns\": \"none\"", NULL);
  assert_int_equal (p->egress, SBX_NET_EGRESS_ALLOWLIST);
  assert_rules (p, "");
  sbx_net_policy_free (p);
}

static void
test_deny (void **state)
{
  sbx_net_policy *p = parse_ok ("\"org.sbxrun.net.egress\": \"deny\"", NULL);
  assert_int_equal (p->egress, SBX_NET_EGRESS_DENY);
  assert_int_equal (p->dns, SBX_NET_DNS_NONE);
  assert_rules (p, "");
  assert_resolvers (p, "");
  sbx_net_policy_free (p);
  p = parse_ok ("\"org.sbxrun.net.egress\": \"deny\", \"org.sbxrun.net.dns\": \"none\"", NULL);
  assert_int_equal (p->egress, SBX_NET_EGRESS_DENY);
  sbx_net_policy_free (p);
}

/* A rootfs with etc/resolv.conf; returns its malloc'd path.  */
static char *
make_rootfs (const char *resolv, const char *link_to)
{
  char tmpl[] = "/tmp/sbx-netfilter-XXXXXX";
  char *root = xstrdup (mkdtemp (tmpl));
  cleanup_free char *etc = xasprintf ("%s/etc", root);
  cleanup_free char *file = xasprintf ("%s/etc/resolv.conf", root);
  mkdir (etc, 0755);
  if (link_to)
    {
      cleanup_free char *real = xasprintf ("%s%s", root, link_to);
      FILE *f = fopen (real, "w");
      assert_non_null (f);
      fputs (resolv, f);
      fclose (f);
      assert_int_equal (symlink (link_to, file), 0);
    }
  else if (resolv)
    {
      FILE *f = fopen (file, "w");
      assert_non_null (f);
      fputs (resolv, f);
      fclose (f);
    }
  return root;
}

static void
remove_rootfs (char *root)
{
  cleanup_free char *cmd = xasprintf ("rm -rf '%s'", root);
  assert_int_equal (system (cmd), 0);
  free (root);
}

static void
test_dns_resolv (void **state)
{
  char *root = make_rootfs ("# comment\nsearch example.com\nnameserver 10.0.0.53\n"
                            "  nameserver\tfe80::1%eth0 # zone ignored\n"
                            "nameserver 10.0.0.53\nnameserver bogus\nnameservers 1.1.1.1\n"
                            "options ndots:2\nnameserver fd00::53",
                            NULL);
  sbx_net_policy *p = parse_ok ("\"org.sbxrun.net.allow\": \"10.1.2.3:443\", "
                                "\"org.sbxrun.net.dns\": \"image\"",
                                root);
  size_t n;
  const sbx_net_rule *v;
  assert_int_equal (p->dns, SBX_NET_DNS_IMAGE);
  assert_resolvers (p, "10.0.0.53 [fe80::1] [fd00::53]");
  sbx_net_policy_free (p);

  /* By default the image's file is not read (it would choose which hosts
     get port 53): the host's /etc/resolv.conf is.  */
  p = parse_ok ("\"org.sbxrun.net.allow\": \"10.1.2.3:443\"", root);
  assert_int_equal (p->dns, SBX_NET_DNS_RESOLV);
  v = sbx_net_policy_resolvers (p, &n);
  for (size_t i = 0; i < n; i++)
    assert_false (v[i].family == AF_INET6 && v[i].addr[0] == 0xfe && v[i].addr[1] == 0x80);
  sbx_net_policy_free (p);
  remove_rootfs (root);

  /* An absolute symlink is followed inside the rootfs, not on the host
     (with openat2: valgrind has none, and then no symlink is followed).  */
  root = make_rootfs ("nameserver 10.9.9.9\n", "/resolv.real");
  if (syscall (SYS_openat2, -1, "", NULL, 0) < 0 && errno != ENOSYS)
    {
      p = parse_ok ("\"org.sbxrun.net.allow\": \"\", \"org.sbxrun.net.dns\": \"image\"", root);
      assert_resolvers (p, "10.9.9.9");
      sbx_net_policy_free (p);
    }
  remove_rootfs (root);

  /* No resolv.conf: no resolver (the libc default is loopback).  */
  root = make_rootfs (NULL, NULL);
  p = parse_ok ("\"org.sbxrun.net.allow\": \"\", \"org.sbxrun.net.dns\": \"image\"", root);
  assert_resolvers (p, "");
  sbx_net_policy_free (p);
  remove_rootfs (root);
}

static void
test_dns_resolv_bind_mount (void **state)
{
  char *root = make_rootfs ("nameserver 10.0.0.1\n", NULL);
  char *other = make_rootfs ("nameserver 10.0.0.2\n", NULL);
  cleanup_free char *json
      = xasprintf ("{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
                   " \"annotations\": {\"org.sbxrun.net.egress\": \"allowlist\"},"
                   " \"mounts\": [{\"destination\": \"/etc/resolv.conf\", \"type\": \"bind\","
                   " \"source\": \"etc/resolv.conf\", \"options\": [\"rbind\"]}],"
                   " \"linux\": {\"namespaces\": [{\"type\": \"network\"}, {\"type\": \"pid\"}]}}");
  char *msg = NULL;
  oci_config *c = ocispec_parse (&oci_config_type, json, strlen (json), &msg);
  sbx_net_policy *p = NULL;
  sbx_error *err = NULL;

  assert_non_null (c);
  /* The source is relative to the bundle.  */
  assert_int_equal (sbx_net_policy_parse (c, other, root, NULL, &p, &err), 0);
  assert_resolvers (p, "10.0.0.2");
  sbx_net_policy_free (p);
  oci_config_free (c);
  remove_rootfs (root);
  remove_rootfs (other);
}

static void
test_errors (void **state)
{
  const char *netns_host = "{\"type\": \"network\", \"path\": \"/proc/self/ns/net\"}";

  expect_error ("\"org.sbxrun.net.bogus\": \"x\"", NULL, NULL,
                "annotation `org.sbxrun.net.bogus`: unknown key under `org.sbxrun.net.` (known: "
                "org.sbxrun.net.allow, org.sbxrun.net.egress, org.sbxrun.net.dns)");
  expect_error ("\"org.sbxrun.net.allow\": \"10.0.0.1\", \"org.sbxrun.net.Allow\": \"x\"", NULL, NULL,
                "annotation `org.sbxrun.net.Allow`: unknown key under `org.sbxrun.net.` (known: "
                "org.sbxrun.net.allow, org.sbxrun.net.egress, org.sbxrun.net.dns)");
  expect_error ("\"org.sbxrun.net.resolved\": \"{}\"", NULL, NULL,
                "annotation `org.sbxrun.net.resolved`: written by sbxrun into the container's "
                "state, not accepted from a bundle");
  expect_error ("\"org.sbxrun.net.egress\": \"closed\"", NULL, NULL,
                "annotation org.sbxrun.net.egress: `closed`: expected open, allowlist or deny");
  expect_error ("\"org.sbxrun.net.egress\": \"deny\", \"org.sbxrun.net.allow\": \"10.0.0.1\"", NULL, NULL,
                "annotation org.sbxrun.net.allow: conflicts with org.sbxrun.net.egress=deny "
                "(remove one of them)");
  expect_error ("\"org.sbxrun.net.egress\": \"open\", \"org.sbxrun.net.allow\": \"10.0.0.1\"", NULL, NULL,
                "annotation org.sbxrun.net.allow: conflicts with org.sbxrun.net.egress=open "
                "(remove one of them)");
  expect_error ("\"org.sbxrun.net.egress\": \"deny\", \"org.sbxrun.net.dns\": \"10.0.0.53\"", NULL, NULL,
                "annotation org.sbxrun.net.dns: conflicts with org.sbxrun.net.egress=deny, which "
                "allows nothing but loopback (use none)");
  expect_error ("\"org.sbxrun.net.egress\": \"deny\", \"org.sbxrun.net.dns\": \"resolv\"", NULL, NULL,
                "annotation org.sbxrun.net.dns: conflicts with org.sbxrun.net.egress=deny, which "
                "allows nothing but loopback (use none)");
  expect_error ("\"org.sbxrun.net.allow\": \"10.0.0.1\", \"org.sbxrun.net.dns\": \"10.0.0.53, "
                "dns.internal\"",
                NULL, NULL,
                "annotation org.sbxrun.net.dns: entry `dns.internal`: not an IP address "
                "(expected resolv, image, none or resolver addresses)");
  expect_error ("\"org.sbxrun.net.allow\": \"10.0.0.1\", \"org.sbxrun.net.dns\": \" , \"", NULL, NULL,
                "annotation org.sbxrun.net.dns: empty (expected resolv, image, none or "
                "resolver addresses)");
  /* open still validates dns */
  expect_error ("\"org.sbxrun.net.dns\": \"bogus\"", NULL, NULL,
                "annotation org.sbxrun.net.dns: entry `bogus`: not an IP address (expected "
                "resolv, image, none or resolver addresses)");
  expect_error ("\"org.sbxrun.net.allow\": \"10.1.2.3:443, 10.0.0.1:99999\"", NULL, NULL,
                "annotation org.sbxrun.net.allow: entry `10.0.0.1:99999`: port 99999 out of "
                "range (1-65535)");
  expect_error ("\"org.sbxrun.net.allow\": \"fd00::1\"", NULL, NULL,
                "annotation org.sbxrun.net.allow: entry `fd00::1`: an IPv6 address must be in "
                "brackets, as in `[fd00::1]:443`");
  expect_error ("\"org.sbxrun.net.allow\": \"db.internal:5432 nosuch.internal:80\"", NULL, NULL,
                "annotation org.sbxrun.net.allow: entry `nosuch.internal:80`: cannot resolve "
                "`nosuch.internal`: Name or service not known");
  /* Namespaces.  */
  expect_error ("\"org.sbxrun.net.allow\": \"10.0.0.1\"", "{\"type\": \"mount\"}", NULL,
                "annotations org.sbxrun.net.*: an egress policy needs a network namespace of the "
                "container's own (linux.namespaces has no `network` entry, so the rules would "
                "apply to the host)");
  expect_error ("\"org.sbxrun.net.egress\": \"deny\"", netns_host, NULL,
                "annotations org.sbxrun.net.*: an egress policy needs a network namespace of the "
                "container's own, but `/proc/self/ns/net` is the runtime's (host) network "
                "namespace");
  /* Capabilities: every set.  */
  {
    static const char *sets[] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
    for (size_t i = 0; i < 5; i++)
      {
        cleanup_free char *proc
            = xasprintf ("{\"cwd\": \"/\", \"args\": [\"sh\"], \"capabilities\": {\"bounding\": "
                         "[\"CAP_KILL\"], \"%s\": [\"CAP_CHOWN\", \"CAP_NET_ADMIN\"]}}",
                         sets[i]);
        cleanup_free char *msg
            = xasprintf ("process.capabilities.%s: CAP_NET_ADMIN is refused with an egress policy "
                         "(org.sbxrun.net.* annotations): it could remove its own egress rules; drop "
                         "it from every capability set",
                         sets[i]);
        expect_error ("\"org.sbxrun.net.egress\": \"deny\"", NULL, proc, msg);
      }
  }
  /* Open egress needs neither a namespace nor dropped capabilities.  */
  {
    oci_config *c = config ("\"org.sbxrun.net.egress\": \"open\"", "{\"type\": \"mount\"}",
                            "{\"cwd\": \"/\", \"args\": [\"sh\"], \"capabilities\": "
                            "{\"bounding\": [\"CAP_NET_ADMIN\"]}}");
    sbx_net_policy *p = (sbx_net_policy *)1;
    sbx_error *err = NULL;
    assert_int_equal (sbx_net_policy_parse (c, NULL, NULL, NULL, &p, &err), 0);
    assert_null (p);
    oci_config_free (c);
  }
}

static void
test_joined_netns_ok (void **state)
{
  /* A joined namespace other than ours is fine (/proc/1's is ours here
     unless the test runs in its own namespace, so use a fresh one's path
     only when we can make one; the parse only stats the path).  */
  oci_config *c = config ("\"org.sbxrun.net.egress\": \"deny\"",
                          "{\"type\": \"network\", \"path\": \"/dev/null\"}", NULL);
  sbx_net_policy *p = NULL;
  sbx_error *err = NULL;
  assert_int_equal (sbx_net_policy_parse (c, NULL, NULL, NULL, &p, &err), 0);
  assert_non_null (p);
  sbx_net_policy_free (p);
  oci_config_free (c);

  c = config ("\"org.sbxrun.net.egress\": \"deny\"",
              "{\"type\": \"network\", \"path\": \"/nonexistent/netns\"}", NULL);
  assert_true (sbx_net_policy_parse (c, NULL, NULL, NULL, &p, &err) < 0);
  assert_int_equal (err->errno_, ENOENT);
  assert_string_equal (err->msg, "linux.namespaces: network path `/nonexistent/netns`");
  sbx_error_free (err);
  oci_config_free (c);
}

static void
test_shared_pidns (void **state)
{
  /* Spliced into linux: the pid namespace, then a seccomp profile (the
     trailing maskedPaths takes the array's closing bracket).  */
  static const char *net = "{\"type\": \"network\"}, ";
  struct
  {
    const char *ns, *seccomp, *refused; /* refused: the syscall named, or NULL */
  } cases[] = {
    { "{\"type\": \"mount\"}", NULL, "ptrace" },
    { "{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}", NULL, "ptrace" },
    { "{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}",
      "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
      "\"SCMP_ACT_ALLOW\"}]}",
      NULL },
    { "{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}",
      "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"ptrace\", "
      "\"process_vm_readv\", \"process_vm_writev\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
      "pidfd_getfd" },
    { "{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}",
      "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"process_vm_writev\"], "
      "\"action\": \"SCMP_ACT_ALLOW\"}]}",
      "process_vm_writev" },
    { "{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}",
      "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"ptrace\", "
      "\"process_vm_readv\", \"process_vm_writev\", \"pidfd_getfd\"], \"action\": \"SCMP_ACT_KILL\", "
      "\"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
      "ptrace" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      cleanup_free char *ns
          = xasprintf ("%s%s%s%s", net, cases[i].ns, cases[i].seccomp ? "], \"seccomp\": " : "",
                       cases[i].seccomp ? cases[i].seccomp : "");
      cleanup_free char *spliced
          = cases[i].seccomp ? xasprintf ("%s, \"maskedPaths\": [\"/x\"", ns) : xstrdup (ns);
      oci_config *c;
      sbx_net_policy *p = NULL;
      sbx_error *err = NULL;
      int r;
      host_pid = i == 0; /* the host's pid namespace */
      c = config ("\"org.sbxrun.net.egress\": \"deny\"", spliced, NULL);
      host_pid = false;
      r = sbx_net_policy_parse (c, NULL, NULL, NULL, &p, &err);
      oci_config_free (c);
      if (cases[i].refused == NULL)
        {
          if (r < 0)
            fail_msg ("case %zu: %s", i, err->msg);
          sbx_net_policy_free (p);
          continue;
        }
      if (r == 0)
        fail_msg ("case %zu: not refused", i);
      assert_non_null (strstr (err->msg, "shares a pid namespace"));
      {
        cleanup_free char *want = xasprintf ("does not deny `%s`", cases[i].refused);
        if (strstr (err->msg, want) == NULL)
          fail_msg ("case %zu: %s", i, err->msg);
      }
      sbx_error_free (err);
    }
}

static void
test_exec_check (void **state)
{
  oci_config *with = config ("\"org.sbxrun.net.allow\": \"10.0.0.1\"", NULL, NULL);
  oci_config *deny = config ("\"org.sbxrun.net.egress\": \" deny\"", NULL, NULL);
  oci_config *open = config ("\"org.sbxrun.net.egress\": \"open\"", NULL, NULL);
  oci_config *none = config ("\"x\": \"y\"", NULL, NULL);
  oci_capabilities caps = { .ambient = (char *[]){ "CAP_NET_ADMIN", NULL }, .ambient_len = 1 };
  oci_process p = { .capabilities = &caps };
  oci_process plain = { 0 };
  sbx_error *err = NULL;

  assert_true (sbx_net_config_has_policy (with));
  assert_true (sbx_net_config_has_policy (deny));
  assert_false (sbx_net_config_has_policy (open));
  assert_false (sbx_net_config_has_policy (none));
  bool g;
  assert_int_equal (sbx_net_exec_check (with, -1, &plain, &g, &err), 0);
  assert_true (g);
  assert_int_equal (sbx_net_exec_check (none, -1, &p, &g, &err), 0);
  assert_false (g);
  assert_int_equal (sbx_net_exec_check (open, -1, &p, &g, &err), 0);
  assert_int_equal (sbx_net_exec_check (deny, -1, &p, &g, &err), -EPERM);
  assert_string_equal (err->msg, "exec: process.capabilities.ambient: CAP_NET_ADMIN is refused with an "
                                 "egress policy (org.sbxrun.net.* annotations): it could remove its own "
                                 "egress rules; drop it from every capability set");
  sbx_error_free (err);
  oci_config_free (with);
  oci_config_free (deny);
  oci_config_free (open);
  oci_config_free (none);
}

static void
test_names (void **state)
{
  char id[1025];
  cleanup_free char *t = sbx_net_table_name ("web-1");
  cleanup_free char *c = sbx_net_chain_name ("web-1");
  char *a, *b;

  assert_string_equal (t, "sbxrun-web-1");
  assert_string_equal (c, "web-1");
  memset (id, 'x', 1024);
  id[1024] = '\0';
  a = sbx_net_table_name (id);
  id[1023] = 'y';
  b = sbx_net_table_name (id);
  assert_int_equal (strlen (a), 255);
  assert_int_equal (strlen (b), 255);
  assert_string_not_equal (a, b);
  assert_true (sbx_has_prefix (a, "sbxrun-xxx"));
  free (a);
  free (b);
  a = sbx_net_chain_name (id);
  assert_int_equal (strlen (a), 255);
  free (a);
  memset (id, 'z', 255);
  id[255] = '\0';
  a = sbx_net_chain_name (id);
  assert_string_equal (a, id); /* fits exactly */
  free (a);
}

static void
test_features_list (void **state)
{
  size_t n = 0;
  for (const sbx_net_annotation *a = sbx_net_annotations; a->name; a++, n++)
    {
      assert_true (sbx_has_prefix (a->name, "org.sbxrun.net."));
      assert_non_null (a->description);
    }
  assert_int_equal (n, 3);
}

/* ---------------------------------------------------------------- live */

/* Root only, with iproute2: a test namespace `sbxtu<pid>` with a veth pair
   of its own (nothing leaves it), the rules applied, traffic sent from
   inside, the drop counter read back, and the rules removed.  */
static char live_ns[64];

static int
live_teardown (void **state)
{
  if (live_ns[0])
    {
      cleanup_free char *cmd = xasprintf ("ip netns del %s 2>/dev/null", live_ns);
      if (system (cmd) != 0)
        fprintf (stderr, "could not remove netns %s\n", live_ns);
      live_ns[0] = '\0';
    }
  return 0;
}

/* sendto from inside netns_fd; 0 or the errno.  */
static int
send_udp_in (int netns_fd, const char *addr, int port)
{
  int self = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd, r = 0;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  assert_true (self >= 0);
  assert_int_equal (setns (netns_fd, CLONE_NEWNET), 0);
  fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_int_equal (setns (self, CLONE_NEWNET), 0);
  close (self);
  assert_true (fd >= 0);
  inet_pton (AF_INET, addr, &sa.sin_addr);
  if (sendto (fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
    r = errno;
  close (fd);
  return r;
}

static void
test_live_apply (void **state)
{
  cleanup_free char *cmd = NULL, *path = NULL;
  sbx_net_policy *p;
  sbx_error *err = NULL;
  uint64_t packets = 99, bytes = 99;
  struct statfs sf;
  int fd;
  int pid = getpid () % 10000000;

  if (geteuid () != 0 || system ("ip -V >/dev/null 2>&1") != 0)
    skip ();
  snprintf (live_ns, sizeof live_ns, "sbxtu%d", pid);
  cmd = xasprintf ("ip netns add %1$s && ip -n %1$s link add sbxtu%2$da type veth peer name "
                   "sbxtu%2$db && ip -n %1$s addr add 10.231.7.1/24 dev sbxtu%2$da && "
                   "ip -n %1$s link set sbxtu%2$da up && ip -n %1$s link set sbxtu%2$db up",
                   live_ns, pid);
  assert_int_equal (system (cmd), 0);
  path = xasprintf ("/var/run/netns/%s", live_ns);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  assert_true (fd >= 0);
  p = parse_ok ("\"org.sbxrun.net.allow\": \"udp:10.231.7.2:53\", \"org.sbxrun.net.dns\": \"none\"", NULL);

  /* Whole namespace (no cgroup).  */
  if (sbx_net_policy_apply (p, fd, "unit-ctr", NULL, 0, &err) < 0)
    fail_msg ("apply: %s", err->msg);
  assert_int_equal (sbx_net_policy_counters (fd, "unit-ctr", &packets, &bytes, &err), 0);
  assert_int_equal (packets, 0);
  assert_int_equal (bytes, 0);
  assert_int_equal (send_udp_in (fd, "10.231.7.2", 53), 0);
  assert_int_equal (send_udp_in (fd, "10.231.7.3", 53), EPERM);
  assert_int_equal (send_udp_in (fd, "10.231.7.2", 54), EPERM);
  assert_int_equal (sbx_net_policy_counters (fd, "unit-ctr", &packets, &bytes, &err), 0);
  assert_int_equal (packets, 2);
  assert_int_equal (bytes, 2 * 29); /* IPv4 + UDP headers + one byte */

  /* Applying again replaces the table (fresh counter).  */
  assert_int_equal (sbx_net_policy_apply (p, fd, "unit-ctr", NULL, 0, &err), 0);
  assert_int_equal (sbx_net_policy_counters (fd, "unit-ctr", &packets, &bytes, &err), 0);
  assert_int_equal (packets, 0);

  /* Scoped to a cgroup we are not in: our own traffic passes.  The unified
     hierarchy's root is at level 0 and holds everything, so use a child of
     our own that we create for the test when possible.  */
  {
    const char *roots[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
    for (size_t i = 0; i < 2; i++)
      if (statfs (roots[i], &sf) == 0 && sf.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */)
        {
          cleanup_free char *dir = xasprintf ("%s/sbxtu%d", roots[i], pid);
          if (mkdir (dir, 0755) == 0 || errno == EEXIST)
            {
              int r = sbx_net_policy_apply (p, fd, "unit-ctr", dir, 1, &err);
              rmdir (dir);
              if (r < 0)
                fail_msg ("scoped apply: %s", err->msg);
              assert_int_equal (send_udp_in (fd, "10.231.7.3", 53), 0);
            }
          break;
        }
  }

  /* The largest policy, with the longest names, in one batch.  */
  {
    cleanup_free char *allow = xmalloc0 ((size_t)SBX_NET_MAX_RULES * 48), *ann = NULL;
    char id[1025];
    sbx_net_policy *big;
    size_t n, len = 0;
    for (int i = 0; i < SBX_NET_MAX_RULES; i++)
      len += (size_t)sprintf (allow + len, " udp:[fd%02x:%x::/100]:%d-%d", i % 256, i, 1000 + i % 30000,
                              2000 + i % 30000);
    ann = xasprintf ("\"org.sbxrun.net.allow\": \"%s\", \"org.sbxrun.net.dns\": \"none\"", allow);
    big = parse_ok (ann, NULL);
    sbx_net_policy_rules (big, &n);
    assert_int_equal (n, SBX_NET_MAX_RULES);
    memset (id, 'i', 1024);
    id[1024] = '\0';
    if (sbx_net_policy_apply (big, fd, id, NULL, 0, &err) < 0)
      fail_msg ("big apply: %s", err->msg);
    assert_int_equal (sbx_net_policy_counters (fd, id, &packets, &bytes, &err), 0);
    assert_int_equal (sbx_net_policy_remove (fd, id, &err), 0);
    sbx_net_policy_free (big);
  }

  assert_int_equal (sbx_net_policy_remove (fd, "unit-ctr", &err), 0);
  assert_int_equal (sbx_net_policy_remove (fd, "unit-ctr", &err), 0); /* absent is fine */
  assert_true (sbx_net_policy_counters (fd, "unit-ctr", &packets, &bytes, &err) < 0);
  assert_int_equal (err->errno_, ENOENT);
  sbx_error_free (err);
  assert_int_equal (send_udp_in (fd, "10.231.7.3", 53), 0);
  sbx_net_policy_free (p);
  close (fd);
}

/* Which container is a pod sandbox, and which sandbox a member names.  */
static void
test_pod_annotations (void **state)
{
  static const struct
  {
    const char *ann, *sandbox_id;
    bool sandbox;
  } cases[] = {
    { "\"io.kubernetes.cri.container-type\": \"sandbox\", \"io.kubernetes.cri.sandbox-id\": \"s1\"", NULL,
      true },
    { "\"io.kubernetes.cri-o.ContainerType\": \"sandbox\", \"io.kubernetes.cri-o.SandboxID\": \"s1\"", NULL,
      true },
    { "\"io.kubernetes.cri.container-type\": \"container\", \"io.kubernetes.cri.sandbox-id\": \"s1\"", "s1",
      false },
    { "\"io.kubernetes.cri-o.ContainerType\": \"container\", \"io.kubernetes.cri-o.SandboxID\": \"s2\"", "s2",
      false },
    { "\"io.container.manager\": \"libpod\"", NULL, false }, /* podman's infra: no marker */
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      oci_config *c = config (cases[i].ann, NULL, NULL);
      const char *sid = sbx_net_sandbox_id (c);
      assert_int_equal (sbx_net_is_sandbox (c), cases[i].sandbox);
      if (cases[i].sandbox_id)
        assert_string_equal (sid, cases[i].sandbox_id);
      else
        assert_null (sid);
      oci_config_free (c);
    }
}

/* A pod member's own policy may only narrow the pod's: each entry must be
   within one of the pod's entries (address, prefix, protocol, ports).  */
static void
test_pod_narrowing (void **state)
{
  static const struct
  {
    const char *allow;
    bool ok;
  } cases[] = {
    { "10.1.2.3:443", true },        { "tcp:192.168.1.1:85", true }, { "tcp:192.168.1.1:80-90", true },
    { "10.0.0.0/8", true },          { "udp:10.200.0.1:53", true },  { "[fd00::1]:80", true },
    { "udp:192.168.1.1:85", false }, { "11.0.0.1", false },          { "tcp:192.168.1.1:80-91", false },
    { "10.0.0.0/7", false },         { "tcp:192.168.0.1", false },   { "[fd00::/63]", false },
    { "192.168.0.53", false }, /* a resolver: port 53 only */
    { "udp:192.168.0.53:53", true },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      oci_config *pc = config ("\"org.sbxrun.net.allow\": \"10.0.0.0/8, tcp:192.168.1.1:80-90, [fd00::/64]\","
                               " \"org.sbxrun.net.dns\": \"192.168.0.53\"",
                               NULL, NULL);
      cleanup_free char *ann
          = xasprintf ("\"org.sbxrun.net.allow\": \"%s\", \"org.sbxrun.net.dns\": \"none\"", cases[i].allow);
      oci_config *mc = config (ann, NULL, NULL);
      sbx_net_policy *pod = NULL, *p = NULL;
      sbx_error *err = NULL;
      assert_int_equal (sbx_net_policy_from_annotations (pc, NULL, NULL, &pod, &err), 0);
      pod->pod_id = xstrdup ("sb");
      int r = sbx_net_policy_parse (mc, NULL, NULL, pod, &p, &err);
      if (cases[i].ok != (r == 0))
        fail_msg ("%s: %s", cases[i].allow, err ? err->msg : "accepted");
      if (r < 0)
        {
          assert_non_null (strstr (err->msg, "may only narrow"));
          assert_non_null (strstr (err->msg, "\"sb\""));
          sbx_error_free (err);
        }
      else
        assert_string_equal (p->pod_id, "sb");
      sbx_net_policy_free (p);
      oci_config_free (pc);
      oci_config_free (mc);
    }
  /* egress=open widens; no annotation at all inherits the pod's */
  {
    oci_config *pc
        = config ("\"org.sbxrun.net.allow\": \"10.0.0.0/8\", \"org.sbxrun.net.dns\": \"none\"", NULL, NULL);
    oci_config *open = config ("\"org.sbxrun.net.egress\": \"open\"", NULL, NULL);
    oci_config *none = config ("\"x\": \"y\"", NULL, NULL);
    sbx_net_policy *pod = NULL, *p = NULL;
    sbx_error *err = NULL;
    assert_int_equal (sbx_net_policy_from_annotations (pc, NULL, NULL, &pod, &err), 0);
    pod->pod_id = xstrdup ("sb");
    assert_true (sbx_net_policy_parse (open, NULL, NULL, pod, &p, &err) < 0);
    assert_non_null (strstr (err->msg, "org.sbxrun.net.egress: `open` would widen"));
    sbx_error_free (err);
    err = NULL;
    assert_int_equal (sbx_net_policy_from_annotations (pc, NULL, NULL, &pod, &err), 0);
    pod->pod_id = xstrdup ("sb");
    assert_int_equal (sbx_net_policy_parse (none, NULL, NULL, pod, &p, &err), 0);
    assert_true (p->inherited);
    sbx_net_policy_free (p);
    oci_config_free (pc);
    oci_config_free (open);
    oci_config_free (none);
  }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_entry_examples),
    cmocka_unit_test (test_entry_malformed),
    cmocka_unit_test (test_no_policy),
    cmocka_unit_test (test_allowlist),
    cmocka_unit_test (test_allowlist_names),
    cmocka_unit_test (test_allowlist_without_entries),
    cmocka_unit_test (test_deny),
    cmocka_unit_test (test_dns_resolv),
    cmocka_unit_test (test_dns_resolv_bind_mount),
    cmocka_unit_test (test_errors),
    cmocka_unit_test (test_joined_netns_ok),
    cmocka_unit_test (test_shared_pidns),
    cmocka_unit_test (test_exec_check),
    cmocka_unit_test (test_names),
    cmocka_unit_test (test_features_list),
    cmocka_unit_test (test_pod_annotations),
    cmocka_unit_test (test_pod_narrowing),
    cmocka_unit_test_teardown (test_live_apply, live_teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
