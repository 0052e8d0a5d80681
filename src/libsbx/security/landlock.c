/* security/landlock.c - the org.sbxrun.landlock.* annotations: Landlock
 * rules on the container's filesystem and TCP ports (see security.h and
 * docs/annotations.md).
 *
 * The annotations are parsed and checked against the kernel's ABI at create
 * (and again for each exec, from the saved config); the ruleset is built by
 * the container process itself, inside its final root, while it still holds
 * the runtime's privileges, and enforced as the last step before execve.  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "security/security.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* The kernel's ABI (include/uapi/linux/landlock.h), spelled out here so
   that older headers do not limit what a newer kernel can enforce.  */
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

struct ll_ruleset_attr
{
  uint64_t handled_access_fs;
  uint64_t handled_access_net; /* ABI 4 */
};

struct ll_path_beneath_attr
{
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__ ((packed));

struct ll_net_port_attr
{
  uint64_t allowed_access;
  uint64_t port;
};

typedef struct
{
  const char *name;
  uint64_t bit;
  int abi; /* first ABI that knows it */
} ll_right;

static const ll_right fs_rights[] = {
  { "execute", 1ULL << 0, 1 },
  { "write_file", 1ULL << 1, 1 },
  { "read_file", 1ULL << 2, 1 },
  { "read_dir", 1ULL << 3, 1 },
  { "remove_dir", 1ULL << 4, 1 },
  { "remove_file", 1ULL << 5, 1 },
  { "make_char", 1ULL << 6, 1 },
  { "make_dir", 1ULL << 7, 1 },
  { "make_reg", 1ULL << 8, 1 },
  { "make_sock", 1ULL << 9, 1 },
  { "make_fifo", 1ULL << 10, 1 },
  { "make_block", 1ULL << 11, 1 },
  { "make_sym", 1ULL << 12, 1 },
  { "refer", 1ULL << 13, 2 },
  { "truncate", 1ULL << 14, 3 },
  { "ioctl_dev", 1ULL << 15, 5 },
  { NULL, 0, 0 },
};
static const ll_right net_rights[] = {
  { "bind_tcp", 1ULL << 0, 4 },
  { "connect_tcp", 1ULL << 1, 4 },
  { NULL, 0, 0 },
};

#define FS_EXECUTE (1ULL << 0)
#define FS_WRITE_FILE (1ULL << 1)
#define FS_READ_FILE (1ULL << 2)
#define FS_READ_DIR (1ULL << 3)
#define FS_REFER (1ULL << 13)
#define FS_TRUNCATE (1ULL << 14)
#define FS_IOCTL_DEV (1ULL << 15)
#define FS_ALL ((1ULL << 16) - 1)
/* The rights that make sense on a file (the kernel refuses the others).  */
#define FS_FILE_RIGHTS (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)
#define FS_RO (FS_READ_FILE | FS_READ_DIR)
#define FS_RW (FS_ALL & ~(FS_EXECUTE | (1ULL << 6) | (1ULL << 11))) /* not make_char/block */
#define NET_BIND (1ULL << 0)
#define NET_CONNECT (1ULL << 1)
#define NET_ALL (NET_BIND | NET_CONNECT)

typedef struct
{
  uint64_t access;
  char *path;
} ll_path;

typedef struct
{
  uint64_t access;
  unsigned lo, hi;
} ll_ports;

struct sbx_landlock
{
  ll_path *paths;
  size_t npaths;
  ll_ports *ports;
  size_t nports;
  bool has_fs, has_net, strict;
  int abi;
  uint64_t fs_handled, net_handled; /* what this kernel enforces */
  char *effective;                  /* the state annotation */
};

int
sbx_landlock_abi (void)
{
  static int cached = -1;
  if (cached >= 0)
    return cached;
  long r = syscall (SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
  int abi = r < 0 ? 0 : (int)r;
  /* For the tests of older kernels: may only lower what is enforced.  */
  const char *cap = getenv ("_SBXRUN_TEST_LANDLOCK_ABI");
  if (cap && *cap)
    {
      char *end;
      long v = strtol (cap, &end, 10);
      if (*end == '\0' && v >= 0 && v < abi)
        abi = (int)v;
    }
  return cached = abi;
}

static uint64_t
known_mask (const ll_right *t, int abi)
{
  uint64_t m = 0;
  for (; t->name; t++)
    if (t->abi <= abi)
      m |= t->bit;
  return m;
}

/* "a, b, c" of the rights in mask.  */
static char *
rights_names (const ll_right *t, uint64_t mask)
{
  char *s = xstrdup ("");
  for (; t->name; t++)
    if (mask & t->bit)
      {
        char *n = xasprintf ("%s%s%s", s, *s ? ", " : "", t->name);
        free (s);
        s = n;
      }
  return s;
}

char *
sbx_landlock_rights_supported (void)
{
  int abi = sbx_landlock_abi ();
  cleanup_free char *fs = rights_names (fs_rights, known_mask (fs_rights, abi));
  cleanup_free char *net = rights_names (net_rights, known_mask (net_rights, abi));
  return xasprintf ("%s%s%s", fs, *fs && *net ? ", " : "", net);
}

static char *
trim (char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen (s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

static int
parse_rights (const char *key, const char *word, uint64_t *out, sbx_error **err)
{
  static const struct
  {
    const char *name;
    uint64_t mask;
  } groups[] = {
    { "ro", FS_RO },
    { "rx", FS_RO | FS_EXECUTE },
    { "rw", FS_RW },
    { "rwx", FS_RW | FS_EXECUTE },
  };
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if (strcmp (word, groups[i].name) == 0)
      {
        *out = groups[i].mask;
        return 0;
      }
  cleanup_free char *copy = xstrdup (word);
  char *save = NULL;
  *out = 0;
  for (char *r = strtok_r (copy, "+", &save); r; r = strtok_r (NULL, "+", &save))
    {
      const ll_right *t = fs_rights;
      while (t->name && strcmp (t->name, r) != 0)
        t++;
      if (t->name == NULL)
        {
          cleanup_free char *all = rights_names (fs_rights, FS_ALL);
          return sbx_error_set (err, EINVAL,
                                "annotation %s: unknown rights `%s` (ro, rw, rx, rwx, or single rights "
                                "joined by +: %s)",
                                key, r, all);
        }
      *out |= t->bit;
    }
  if (*out == 0)
    return sbx_error_set (err, EINVAL, "annotation %s: empty rights in `%s`", key, word);
  return 0;
}

typedef int (*group_fn) (sbx_landlock *ll, const char *key, char *head, char *list, sbx_error **err);

/* Each non-empty `HEAD:LIST` group of a `;`-separated value; list is NULL
   when the group has no colon.  */
static int
for_each_group (sbx_landlock *ll, const char *key, const char *value, group_fn fn, sbx_error **err)
{
  cleanup_free char *copy = xstrdup (value);
  char *save = NULL;
  for (char *g = strtok_r (copy, ";", &save); g; g = strtok_r (NULL, ";", &save))
    {
      char *group = trim (g), *colon = strchr (group, ':');
      if (*group == '\0')
        continue;
      if (colon)
        *colon = '\0';
      if (fn (ll, key, trim (group), colon ? colon + 1 : NULL, err) < 0)
        return -1;
    }
  return 0;
}

static int
fs_group (sbx_landlock *ll, const char *key, char *head, char *list, sbx_error **err)
{
  char *save = NULL;
  uint64_t access;
  if (list == NULL)
    return sbx_error_set (err, EINVAL, "annotation %s: `%s` is not RIGHTS:PATH[,PATH...]", key, head);
  if (parse_rights (key, head, &access, err) < 0)
    return -1;
  size_t before = ll->npaths;
  for (char *p = strtok_r (list, ",", &save); p; p = strtok_r (NULL, ",", &save))
    {
      char *path = trim (p);
      if (path[0] != '/')
        return sbx_error_set (err, EINVAL, "annotation %s: path `%s` is not absolute", key, path);
      if (strlen (path) >= 4096)
        return sbx_error_set (err, ENAMETOOLONG, "annotation %s: path too long", key);
      ll->paths = xrealloc (ll->paths, (ll->npaths + 1) * sizeof *ll->paths);
      ll->paths[ll->npaths++] = (ll_path){ access, xstrdup (path) };
    }
  if (ll->npaths == before)
    return sbx_error_set (err, EINVAL, "annotation %s: rights `%s` name no path", key, head);
  return 0;
}

static int
parse_port (const char *key, const char *s, unsigned *out, sbx_error **err)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul (s, &end, 10);
  if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v > 65535)
    return sbx_error_set (err, EINVAL, "annotation %s: `%s` is not a port (0-65535)", key, s);
  *out = (unsigned)v;
  return 0;
}

static int
net_group (sbx_landlock *ll, const char *key, char *head, char *list, sbx_error **err)
{
  char *save = NULL;
  uint64_t access;
  if (strcmp (head, "bind") == 0)
    access = NET_BIND;
  else if (strcmp (head, "connect") == 0)
    access = NET_CONNECT;
  else
    return sbx_error_set (err, EINVAL, "annotation %s: `%s` is not bind:PORTS or connect:PORTS", key, head);
  size_t before = ll->nports;
  for (char *p = list ? strtok_r (list, ",", &save) : NULL; p; p = strtok_r (NULL, ",", &save))
    {
      char *spec = trim (p), *dash = strchr (spec, '-');
      unsigned lo, hi;
      if (dash)
        *dash = '\0';
      if (parse_port (key, trim (spec), &lo, err) < 0
          || (dash && parse_port (key, trim (dash + 1), &hi, err) < 0))
        return -1;
      if (!dash)
        hi = lo;
      if (hi < lo)
        return sbx_error_set (err, EINVAL, "annotation %s: port range %u-%u is reversed", key, lo, hi);
      ll->ports = xrealloc (ll->ports, (ll->nports + 1) * sizeof *ll->ports);
      ll->ports[ll->nports++] = (ll_ports){ access, lo, hi };
    }
  if (ll->nports == before)
    return sbx_error_set (err, EINVAL, "annotation %s: `%s` names no port", key, head);
  return 0;
}

/* What the kernel will enforce, and what it cannot: refused in strict
   mode, a warning otherwise.  */
static int
settle_abi (sbx_landlock *ll, bool quiet, sbx_error **err)
{
  uint64_t fs_known = known_mask (fs_rights, ll->abi), net_known = known_mask (net_rights, ll->abi);
  uint64_t fs_missing = ll->has_fs ? FS_ALL & ~fs_known : 0;
  uint64_t net_missing = ll->has_net ? NET_ALL & ~net_known : 0;
  bool refer_wanted = false;

  for (size_t i = 0; i < ll->npaths; i++)
    refer_wanted |= (ll->paths[i].access & FS_REFER) != 0;
  ll->fs_handled = ll->has_fs ? fs_known : 0;
  ll->net_handled = ll->has_net ? net_known : 0;
  if (fs_missing == 0 && net_missing == 0)
    return 0;
  cleanup_free char *fs = rights_names (fs_rights, fs_missing);
  cleanup_free char *net = rights_names (net_rights, net_missing);
  cleanup_free char *what = ll->abi == 0 ? xstrdup ("Landlock is not available on this kernel (older than "
                                                    "5.13, or not in the lsm= list)")
                                         : xasprintf ("this kernel's Landlock ABI %d cannot restrict %s%s%s",
                                                      ll->abi, fs, *fs && *net ? ", " : "", net);
  if (ll->strict)
    return sbx_error_set (err, EOPNOTSUPP, "annotation " SBX_LANDLOCK_PREFIX "mode=strict: %s", what);
  if (!quiet)
    sbx_warn ("annotations " SBX_LANDLOCK_PREFIX "*: %s: %s", what,
              ll->abi == 0 ? "the rules are not enforced"
              : (refer_wanted && ll->abi < 2)
                  ? "not restricted; and renames or links across directories always fail under ABI 1"
                  : "not restricted (mode best-effort)");
  return 0;
}

/* "rx", or "read_file+write_file" for a mask that is no group.  */
static char *
rights_word (uint64_t mask, uint64_t handled)
{
  static const struct
  {
    const char *name;
    uint64_t mask;
  } groups[]
      = { { "ro", FS_RO }, { "rx", FS_RO | FS_EXECUTE }, { "rw", FS_RW }, { "rwx", FS_RW | FS_EXECUTE } };
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    if ((mask & handled) == (groups[i].mask & handled))
      return xstrdup (groups[i].name);
  char *s = rights_names (fs_rights, mask & handled);
  for (char *p = strstr (s, ", "); p; p = strstr (p, ", "))
    memmove (p, p + 1, strlen (p)), *p = '+';
  return s;
}

static void append (char **s, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
append (char **s, const char *fmt, ...)
{
  va_list ap;
  char *more;
  va_start (ap, fmt);
  more = xvasprintf (fmt, ap);
  va_end (ap);
  char *n = xasprintf ("%s%s", *s, more);
  free (*s);
  free (more);
  *s = n;
}

/* The state's summary: "abi=7 mode=best-effort fs=rx:/bin;rw:/tmp
   net=bind:8080;connect:80-81 no_new_privs"; rules this kernel cannot
   enforce are left out (see settle_abi).  */
static char *
describe (const sbx_landlock *ll)
{
  char *s = xasprintf ("abi=%d mode=%s", ll->abi, ll->strict ? "strict" : "best-effort");
  for (size_t i = 0; ll->fs_handled && i < ll->npaths; i++)
    {
      cleanup_free char *w = rights_word (ll->paths[i].access, ll->fs_handled);
      append (&s, "%s%s:%s", i ? ";" : " fs=", w, ll->paths[i].path);
    }
  for (size_t i = 0; ll->net_handled && i < ll->nports; i++)
    {
      const ll_ports *p = &ll->ports[i];
      append (&s, "%s%s:%u", i ? ";" : " net=", p->access == NET_BIND ? "bind" : "connect", p->lo);
      if (p->hi != p->lo)
        append (&s, "-%u", p->hi);
    }
  if (ll->fs_handled || ll->net_handled)
    append (&s, " no_new_privs");
  else
    append (&s, " not-enforced");
  return s;
}

int
sbx_landlock_parse (const oci_config *c, bool from_state, sbx_landlock **out, sbx_error **err)
{
  cleanup_landlock sbx_landlock *ll = NULL;
  const size_t plen = strlen (SBX_LANDLOCK_PREFIX);

  *out = NULL;
  for (size_t i = 0; i < c->annotations_len; i++)
    {
      const char *k = c->annotations_keys[i], *v = c->annotations_values[i];
      if (strncmp (k, SBX_LANDLOCK_PREFIX, plen) != 0)
        continue;
      if (ll == NULL)
        {
          ll = xmalloc0 (sizeof *ll);
          ll->abi = sbx_landlock_abi ();
        }
      const char *name = k + plen;
      int r = 0;
      if (strcmp (name, "fs") == 0)
        {
          r = for_each_group (ll, k, v, fs_group, err);
          ll->has_fs = true;
        }
      else if (strcmp (name, "net") == 0)
        {
          r = for_each_group (ll, k, v, net_group, err);
          ll->has_net = true;
        }
      else if (strcmp (name, "mode") == 0)
        {
          if (strcmp (v, "strict") == 0)
            ll->strict = true;
          else if (strcmp (v, "best-effort") != 0)
            r = sbx_error_set (err, EINVAL, "annotation %s: `%s` is not best-effort or strict", k, v);
        }
      else if (strcmp (name, "effective") == 0)
        {
          /* Ours, in the saved config; a caller may not set it.  */
          if (!from_state)
            r = sbx_error_set (err, EINVAL,
                               "annotation %s is set by sbxrun (the rules in force), not by the "
                               "config",
                               k);
        }
      else
        r = sbx_error_set (err, EINVAL, "unknown annotation %s (known: fs, net, mode)", k);
      if (r < 0)
        return -1;
    }
  if (ll == NULL)
    return 0;
  if (!ll->has_fs && !ll->has_net)
    return sbx_error_set (err, EINVAL,
                          "annotation " SBX_LANDLOCK_PREFIX "mode: no " SBX_LANDLOCK_PREFIX
                          "fs or " SBX_LANDLOCK_PREFIX "net rules to apply");
  if (settle_abi (ll, from_state, err) < 0)
    return -1;
  ll->effective = describe (ll);
  *out = steal_ptr (ll);
  return 0;
}

const char *
sbx_landlock_effective (const sbx_landlock *ll)
{
  return ll ? ll->effective : NULL;
}

static int
add_path_rule (int ruleset, int rootfd, const ll_path *p, uint64_t handled, sbx_error **err)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  cleanup_close int fd = syscall (SYS_openat2, rootfd, p->path, &how, sizeof how);
  struct stat st;
  if (fd < 0)
    return sbx_error_sys (err, "annotation " SBX_LANDLOCK_PREFIX "fs: `%s` in the container", p->path);
  if (fstat (fd, &st) < 0)
    return sbx_error_sys (err, "annotation " SBX_LANDLOCK_PREFIX "fs: stat `%s`", p->path);
  struct ll_path_beneath_attr a = { .allowed_access = p->access & handled, .parent_fd = fd };
  if (!S_ISDIR (st.st_mode))
    a.allowed_access &= FS_FILE_RIGHTS;
  if (a.allowed_access == 0)
    return 0;
  if (syscall (SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &a, 0) < 0)
    return sbx_error_sys (err, "annotation " SBX_LANDLOCK_PREFIX "fs: landlock_add_rule `%s`", p->path);
  return 0;
}

int
sbx_landlock_prepare (const sbx_landlock *ll, int *fd_out, sbx_error **err)
{
  *fd_out = -1;
  if (ll == NULL || (ll->fs_handled == 0 && ll->net_handled == 0))
    return 0;
  struct ll_ruleset_attr attr
      = { .handled_access_fs = ll->fs_handled, .handled_access_net = ll->net_handled };
  size_t size = ll->abi >= 4 ? sizeof attr : sizeof attr.handled_access_fs;
  cleanup_close int ruleset = syscall (SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset < 0)
    return sbx_error_sys (err, "landlock_create_ruleset");
  if (ll->fs_handled)
    {
      /* Our root is the container's by now: resolve every path in it.  */
      cleanup_close int rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        return sbx_error_sys (err, "open the container's root");
      for (size_t i = 0; i < ll->npaths; i++)
        if (add_path_rule (ruleset, rootfd, &ll->paths[i], ll->fs_handled, err) < 0)
          return -1;
    }
  for (size_t i = 0; ll->net_handled && i < ll->nports; i++)
    for (unsigned port = ll->ports[i].lo; port <= ll->ports[i].hi; port++)
      {
        struct ll_net_port_attr a = { .allowed_access = ll->ports[i].access, .port = port };
        if (syscall (SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &a, 0) < 0)
          return sbx_error_sys (err, "annotation " SBX_LANDLOCK_PREFIX "net: landlock_add_rule port %u",
                                port);
      }
  *fd_out = steal_fd (&ruleset);
  return 0;
}

int
sbx_landlock_enforce (int *ruleset, sbx_error **err)
{
  cleanup_close int fd = steal_fd (ruleset);
  if (fd < 0)
    return 0;
  /* An unprivileged process may only restrict itself under no_new_privs:
     the rules imply it (setuid programs then gain nothing).  */
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_error_sys (err, "landlock: prctl(PR_SET_NO_NEW_PRIVS)");
  if (syscall (SYS_landlock_restrict_self, fd, 0) < 0)
    return sbx_error_sys (err, "landlock_restrict_self (a seccomp profile loaded before it may refuse it)");
  return 0;
}

void
sbx_landlock_free (sbx_landlock *ll)
{
  if (ll == NULL)
    return;
  for (size_t i = 0; i < ll->npaths; i++)
    free (ll->paths[i].path);
  free (ll->paths);
  free (ll->ports);
  free (ll->effective);
  free (ll);
}

void
sbx_landlock_freep (sbx_landlock **ll)
{
  sbx_landlock_free (*ll);
}
