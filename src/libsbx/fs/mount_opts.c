/* fs/mount_opts.c - mounts[].options and linux.rootfsPropagation as mount
 * flags, and the validation of mount destinations (the /proc rules).  */
#include <config.h>
#include "fs/fs.h"
#include "security/security.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs_internal.h"


/* ---- option parsing ---- */

enum
{
  K_NOP,    /* accepted, no effect */
  K_SET,    /* MS_* set */
  K_CLR,    /* MS_* cleared */
  K_PROP,   /* propagation, applied with its own mount call */
  K_BIND,   /* bind; v = MS_REC for rbind */
  K_ASET,   /* mount_setattr attribute set recursively */
  K_ACLR,   /* mount_setattr attribute cleared recursively */
  K_ATIME,  /* recursive atime mode: clear MOUNT_ATTR__ATIME, set v */
  K_COPYUP, /* tmpcopyup */
  K_IDMAP,  /* idmap (v 0) or ridmap (v 1): an idmapped bind */
  K_REJECT, /* known but unsupported: fail rather than misapply */
};

/* X-macro so the parser table and the features list cannot drift apart.  */
#define SBX_MOUNT_OPTIONS(X)                                                                       \
  X ("defaults", K_NOP, 0)                                                                         \
  X ("ro", K_SET, MS_RDONLY)                                                                       \
  X ("rw", K_CLR, MS_RDONLY)                                                                       \
  X ("nosuid", K_SET, MS_NOSUID)                                                                   \
  X ("suid", K_CLR, MS_NOSUID)                                                                     \
  X ("nodev", K_SET, MS_NODEV)                                                                     \
  X ("dev", K_CLR, MS_NODEV)                                                                       \
  X ("noexec", K_SET, MS_NOEXEC)                                                                   \
  X ("exec", K_CLR, MS_NOEXEC)                                                                     \
  X ("sync", K_SET, MS_SYNCHRONOUS)                                                                \
  X ("async", K_CLR, MS_SYNCHRONOUS)                                                               \
  X ("dirsync", K_SET, MS_DIRSYNC)                                                                 \
  X ("remount", K_SET, MS_REMOUNT)                                                                 \
  X ("mand", K_SET, MS_MANDLOCK)                                                                   \
  X ("nomand", K_CLR, MS_MANDLOCK)                                                                 \
  X ("noatime", K_SET, MS_NOATIME)                                                                 \
  X ("atime", K_CLR, MS_NOATIME)                                                                   \
  X ("nodiratime", K_SET, MS_NODIRATIME)                                                           \
  X ("diratime", K_CLR, MS_NODIRATIME)                                                             \
  X ("relatime", K_SET, MS_RELATIME)                                                               \
  X ("norelatime", K_CLR, MS_RELATIME)                                                             \
  X ("strictatime", K_SET, MS_STRICTATIME)                                                         \
  X ("nostrictatime", K_CLR, MS_STRICTATIME)                                                       \
  X ("lazytime", K_SET, MS_LAZYTIME)                                                               \
  X ("nolazytime", K_CLR, MS_LAZYTIME)                                                             \
  X ("nosymfollow", K_SET, MS_NOSYMFOLLOW)                                                         \
  X ("symfollow", K_CLR, MS_NOSYMFOLLOW)                                                           \
  X ("silent", K_SET, MS_SILENT)                                                                   \
  X ("loud", K_CLR, MS_SILENT)                                                                     \
  X ("bind", K_BIND, 0)                                                                            \
  X ("rbind", K_BIND, MS_REC)                                                                      \
  X ("private", K_PROP, MS_PRIVATE)                                                                \
  X ("rprivate", K_PROP, MS_PRIVATE | MS_REC)                                                      \
  X ("shared", K_PROP, MS_SHARED)                                                                  \
  X ("rshared", K_PROP, MS_SHARED | MS_REC)                                                        \
  X ("slave", K_PROP, MS_SLAVE)                                                                    \
  X ("rslave", K_PROP, MS_SLAVE | MS_REC)                                                          \
  X ("unbindable", K_PROP, MS_UNBINDABLE)                                                          \
  X ("runbindable", K_PROP, MS_UNBINDABLE | MS_REC)                                                \
  X ("rro", K_ASET, MOUNT_ATTR_RDONLY)                                                             \
  X ("rrw", K_ACLR, MOUNT_ATTR_RDONLY)                                                             \
  X ("rnosuid", K_ASET, MOUNT_ATTR_NOSUID)                                                         \
  X ("rsuid", K_ACLR, MOUNT_ATTR_NOSUID)                                                           \
  X ("rnodev", K_ASET, MOUNT_ATTR_NODEV)                                                           \
  X ("rdev", K_ACLR, MOUNT_ATTR_NODEV)                                                             \
  X ("rnoexec", K_ASET, MOUNT_ATTR_NOEXEC)                                                         \
  X ("rexec", K_ACLR, MOUNT_ATTR_NOEXEC)                                                           \
  X ("rnodiratime", K_ASET, MOUNT_ATTR_NODIRATIME)                                                 \
  X ("rdiratime", K_ACLR, MOUNT_ATTR_NODIRATIME)                                                   \
  X ("rnosymfollow", K_ASET, MOUNT_ATTR_NOSYMFOLLOW)                                               \
  X ("rsymfollow", K_ACLR, MOUNT_ATTR_NOSYMFOLLOW)                                                 \
  X ("rnoatime", K_ATIME, MOUNT_ATTR_NOATIME)                                                      \
  X ("rrelatime", K_ATIME, MOUNT_ATTR_RELATIME)                                                    \
  X ("ratime", K_ATIME, MOUNT_ATTR_RELATIME)                                                       \
  X ("rstrictatime", K_ATIME, MOUNT_ATTR_STRICTATIME)                                              \
  X ("rnorelatime", K_ATIME, MOUNT_ATTR_STRICTATIME)                                               \
  X ("rnostrictatime", K_ATIME, MOUNT_ATTR_RELATIME)

struct mount_opt
{
  const char *name;
  int kind;
  unsigned long v;
};

#define OPT_ENTRY(n, k, v) { n, k, v },
#define OPT_NAME(n, k, v) n,
static const struct mount_opt mount_opts[] = {
  SBX_MOUNT_OPTIONS (OPT_ENTRY){ "tmpcopyup", K_COPYUP, 0 },
  { "idmap", K_IDMAP, 0 },
  { "ridmap", K_IDMAP, 1 },
};
const char *const sbx_mount_option_names[]
    = { SBX_MOUNT_OPTIONS (OPT_NAME) "tmpcopyup", "idmap", "ridmap", NULL };

static const struct mount_opt *
find_opt (const char *name)
{
  for (size_t i = 0; i < sizeof mount_opts / sizeof mount_opts[0]; i++)
    if (strcmp (mount_opts[i].name, name) == 0)
      return &mount_opts[i];
  return NULL;
}

void
sbx_fs_mount_opts_clear (sbx_mount_opts *o)
{
  free (o->data);
  memset (o, 0, sizeof *o);
}

int
sbx_fs_mount_opts_parse (char *const *options, size_t n, sbx_mount_opts *out, sbx_error **err)
{
  memset (out, 0, sizeof *out);
  for (size_t i = 0; i < n; i++)
    {
      const char *s = options[i];
      const struct mount_opt *m;

      if (s == NULL || *s == '\0')
        continue;
      m = find_opt (s);
      if (m == NULL)
        {
          /* Filesystem data (mode=755, size=64k, newinstance...): the kernel
             rejects what the filesystem does not know.  */
          char *d = out->data ? xasprintf ("%s,%s", out->data, s) : xstrdup (s);
          free (out->data);
          out->data = d;
          continue;
        }
      switch (m->kind)
        {
        case K_SET:
          out->flags |= m->v;
          out->clear &= ~m->v;
          break;
        case K_CLR:
          out->clear |= m->v;
          out->flags &= ~m->v;
          break;
        case K_PROP:
          out->propagation = m->v; /* the last one wins */
          break;
        case K_BIND:
          out->bind = true;
          out->flags |= MS_BIND | m->v;
          break;
        case K_ASET:
          out->attr_set |= m->v;
          out->attr_clr &= ~m->v;
          break;
        case K_ACLR:
          out->attr_clr |= m->v;
          out->attr_set &= ~m->v;
          break;
        case K_ATIME:
          out->attr_set = (out->attr_set & ~(unsigned long) MOUNT_ATTR__ATIME) | m->v;
          out->attr_clr |= MOUNT_ATTR__ATIME;
          break;
        case K_COPYUP:
          out->tmpcopyup = true;
          break;
        case K_IDMAP:
          out->idmap = true;
          out->idmap_recursive = out->idmap_recursive || m->v;
          break;
        case K_REJECT:
          sbx_fs_mount_opts_clear (out);
          return sbx_error_set (err, EOPNOTSUPP, "mount option `%s`", s);
        default:
          break;
        }
    }
  out->recursive_ro = (out->attr_set & MOUNT_ATTR_RDONLY) != 0;
  return 0;
}

/* ---- destinations under /proc ---- */

char *
sbx_fs_mount_dest_clean (const char *dest)
{
  size_t n = strlen (dest);
  char *out = xmalloc0 (n + 2);
  size_t len = 0;
  const char *s = dest;

  while (*s)
    {
      size_t l;
      while (*s == '/')
        s++;
      l = strcspn (s, "/");
      if (l == 0 || (l == 1 && s[0] == '.'))
        ;
      else if (l == 2 && s[0] == '.' && s[1] == '.')
        {
          /* ".." never climbs above the root.  */
          while (len > 0 && out[len - 1] != '/')
            len--;
          if (len > 0)
            len--;
        }
      else
        {
          out[len++] = '/';
          memcpy (out + len, s, l);
          len += l;
        }
      s += l;
    }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  return out;
}

/* Files under /proc that may be covered by a bind: what LXCFS emulates,
   none of them a file the runtime writes.  */
static const char *const proc_bind_ok[]
    = { "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
        "/proc/swaps",   "/proc/uptime",    "/proc/loadavg", "/proc/slabinfo",
        "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled", NULL };

static bool
is_bind_entry (const oci_mount *m)
{
  if (m->type && strcmp (m->type, "bind") == 0)
    return true;
  for (size_t k = 0; k < m->options_len; k++)
    if (m->options[k] && (strcmp (m->options[k], "bind") == 0 || strcmp (m->options[k], "rbind") == 0))
      return true;
  return false;
}

/* Is path the root of a procfs (not one of its directories)?  */
static bool
is_procfs_root (const char *path)
{
  struct statfs sf;
  struct stat sb;
  return statfs (path, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC && stat (path, &sb) == 0
         && sb.st_ino == 1;
}

int
sbx_fs_mounts_validate (const oci_config *c, const char *bundle, sbx_error **err)
{
  for (size_t i = 0; i < c->mounts_len; i++)
    {
      const oci_mount *m = c->mounts[i];
      cleanup_free char *clean = NULL;
      bool bind;

      if (m->destination == NULL)
        continue;
      /* config.md: SHOULD be absolute; a relative one is deprecated and
         taken from "/" */
      if (m->destination[0] != '/')
        sbx_warn ("mounts[%zu]: destination `%s` is not absolute: mounted at `/%s` (relative "
                  "destinations are deprecated by the runtime spec)",
                  i, m->destination, m->destination);
      clean = sbx_fs_mount_dest_clean (m->destination);
      if (!under_proc (clean))
        continue;
      bind = is_bind_entry (m);
      if (strcmp (clean, "/proc") == 0)
        {
          cleanup_free char *src = NULL;
          if (!bind && m->type && strcmp (m->type, "proc") == 0)
            continue;
          if (bind && m->source)
            {
              src = m->source[0] == '/' || bundle == NULL ? xstrdup (m->source)
                                                          : xasprintf ("%s/%s", bundle, m->source);
              if (is_procfs_root (src))
                continue;
            }
          return sbx_error_set (err, EPERM,
                                "mounts[%zu]: destination `%s`: only a procfs may be mounted on /proc "
                                "(got %s `%s`): anything else could take the runtime's writes to "
                                "/proc (LSM label, oom_score_adj) into ordinary files",
                                i, m->destination, bind ? "a bind of" : "type",
                                bind ? (m->source ? m->source : "") : (m->type ? m->type : ""));
        }
      if (bind)
        {
          bool ok = false;
          for (const char *const *f = proc_bind_ok; *f && !ok; f++)
            ok = strcmp (clean, *f) == 0;
          if (ok)
            continue;
        }
      return sbx_error_set (err, EPERM,
                            "mounts[%zu]: destination `%s` is inside /proc: refused, a mount there "
                            "could redirect the runtime's writes to procfs (allowed: a bind over one "
                            "of /proc/cpuinfo, diskstats, meminfo, stat, swaps, uptime, loadavg, "
                            "slabinfo, sys/kernel/ns_last_pid, sys/crypto/fips_enabled)",
                            i, m->destination);
    }
  return 0;
}

/* ---- linux.rootfsPropagation ---- */

int
sbx_rootfs_propagation (const oci_config *c, unsigned long *out, sbx_error **err)
{
  const char *p = c->linux ? c->linux->rootfs_propagation : NULL;
  const struct mount_opt *m;

  /* Default rprivate: no mount event crosses between host and container.  */
  *out = MS_REC | MS_PRIVATE;
  if (p == NULL || *p == '\0')
    return 0;
  m = find_opt (p);
  if (m == NULL || m->kind != K_PROP)
    return sbx_error_set (err, EINVAL, "linux.rootfsPropagation: unknown value `%s`", p);
  *out = m->v;
  return 0;
}
