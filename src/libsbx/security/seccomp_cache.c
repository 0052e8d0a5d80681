/* security/seccomp_cache.c - the compile cache of linux.seccomp filters
 * (bound to the profile, libseccomp, arch and kernel by a SHA-256 key, core/sha256.c).  */
#include <config.h>
#include "security/security.h"

#include <config.h>
#include "security/security.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>


#include "core/core.h"
#include "security/security_internal.h"


/* ---- cache ---- */

#define CACHE_MAGIC "SBXBPF03"
#define CACHE_FORMAT "sbxrun seccomp cache v3: enosys-prefix, split-dup-args, bound key, binary tree"

/* The file names its key, but a name proves nothing: whoever could rename
   a permissive profile's entry over a strict one's would choose the filter.
   So the key is inside, and the digest covers it with everything else.  */
struct cache_header
{
  char magic[8];
  uint32_t flags;
  uint32_t notify;
  uint32_t ninsns;
  uint32_t reserved;
  uint8_t key[32];    /* the cache key (the file's name, in binary) */
  uint8_t digest[32]; /* SHA-256 of the header up to here, then the instructions */
};

static void
cache_digest (const struct cache_header *h, const void *insns, size_t body, uint8_t out[32])
{
  sbx_sha256_ctx c;
  sbx_sha256_init (&c);
  sbx_sha256_update (&c, h, offsetof (struct cache_header, digest));
  sbx_sha256_update (&c, insns, body);
  sbx_sha256_final (&c, out);
}

void
sbx_seccomp_cache_key (const oci_seccomp *s, uint8_t d[32], char hex[65])
{
  const struct scmp_version *v = seccomp_version ();
  struct utsname u;
  size_t jlen = 0;
  cleanup_free char *json = ocispec_generate (&oci_seccomp_type, s, false, &jlen);
  cleanup_free char *env = NULL;
  sbx_sha256_ctx c;

  if (uname (&u) < 0)
    memset (&u, 0, sizeof u);
  env = xasprintf ("%s\n%u.%u.%u\n%u\n%s\n%s\n", CACHE_FORMAT, v ? v->major : 0, v ? v->minor : 0,
                   v ? v->micro : 0, seccomp_arch_native (), u.machine, u.release);
  sbx_sha256_init (&c);
  sbx_sha256_update (&c, env, strlen (env));
  sbx_sha256_update (&c, json, jlen);
  sbx_sha256_final (&c, d);
  for (int i = 0; i < 32; i++)
    snprintf (hex + 2 * i, 3, "%02x", d[i]);
}

/* Any mismatch is a miss: the caller compiles and rewrites the entry.  */
bool
sbx_seccomp_cache_read (int dfd, const uint8_t key[32], const char *hex, sbx_seccomp *sc)
{
  cleanup_free char *name = xasprintf ("%s.bpf", hex);
  cleanup_free char *buf = NULL;
  cleanup_error sbx_error *e = NULL;
  cleanup_close int fd = openat (dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  struct cache_header h;
  struct stat st;
  uint8_t d[32];
  size_t len = 0, body;

  if (fd < 0)
    return false;
  /* The program decides what the container may do: only trust our own,
     non group/world-writable files.  */
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_uid != geteuid ()
      || (st.st_mode & (S_IWGRP | S_IWOTH)))
    goto bad;
  if (sbx_read_fd (fd, sizeof h + BPF_MAXINSNS * sizeof (struct sock_filter) + 1, &buf, &len, &e) < 0)
    return false;
  if (len < sizeof h)
    goto bad;
  memcpy (&h, buf, sizeof h);
  body = len - sizeof h;
  if (memcmp (h.magic, CACHE_MAGIC, 8) != 0 || h.ninsns == 0 || h.ninsns > BPF_MAXINSNS
      || body != h.ninsns * sizeof (struct sock_filter))
    goto bad;
  if (memcmp (h.key, key, sizeof h.key) != 0)
    {
      sbx_debug ("seccomp: cache file %s/%s holds another key: ignored", ".seccomp-cache", name);
      return false;
    }
  cache_digest (&h, buf + sizeof h, body, d);
  if (memcmp (d, h.digest, sizeof d) != 0)
    goto bad;
  sc->insns = xmalloc0 (body);
  memcpy (sc->insns, buf + sizeof h, body);
  sc->len = h.ninsns;
  sc->flags = h.flags;
  sc->notify = h.notify != 0;
  sc->cached = true;
  return true;
bad:
  sbx_debug ("seccomp: ignoring invalid cache file %s", name);
  return false;
}

void
sbx_seccomp_cache_write (int dfd, const uint8_t key[32], const char *hex, const sbx_seccomp *sc)
{
  cleanup_error sbx_error *e = NULL;
  cleanup_free char *name = xasprintf ("%s.bpf", hex);
  cleanup_free char *buf = NULL;
  size_t body = sc->len * sizeof (struct sock_filter);
  struct cache_header h;

  memset (&h, 0, sizeof h);
  memcpy (h.magic, CACHE_MAGIC, 8);
  h.flags = sc->flags;
  h.notify = sc->notify;
  h.ninsns = (uint32_t)sc->len;
  memcpy (h.key, key, sizeof h.key);
  cache_digest (&h, sc->insns, body, h.digest);
  buf = xmalloc0 (sizeof h + body);
  memcpy (buf, &h, sizeof h);
  memcpy (buf + sizeof h, sc->insns, body);

  if (sbx_write_file_atomic (dfd, name, buf, sizeof h + body, 0600, &e) < 0)
    {
      cleanup_free char *t = sbx_error_text (e);
      sbx_debug ("seccomp: cannot write the cache: %s", t);
    }
}
