/* seccomp.c - linux.seccomp: validation, compilation with libseccomp, a
 * compile cache, loading with seccomp(2), and the SCMP_ACT_NOTIFY hand-off.
 *
 * Design notes
 *
 * Arguments on the same index.  libseccomp refuses two comparisons on the
 * same argument inside one rule (-EINVAL).  When every condition of a
 * syscalls[] entry uses a distinct index, the entry becomes one rule whose
 * conditions are ANDed.  When any index repeats, the entry is split into one
 * rule per condition, so the conditions are ORed (the rule fires if any of
 * them matches).  That is the behaviour other OCI runtimes have, so profiles
 * written for them (e.g. several allowed values of personality(2) arg 0)
 * keep their meaning.
 *
 * ENOSYS for syscalls newer than the profile.  When the default action
 * refuses (ERRNO with an errno other than ENOSYS, KILL, KILL_THREAD,
 * KILL_PROCESS), a syscall the profile author could not know about must look
 * unimplemented, so that callers fall back (glibc tries clone3 and falls back
 * to clone only on ENOSYS).  For every architecture in the filter we take the
 * highest syscall number named in the profile (names libseccomp resolves on
 * that architecture, any action) and prepend to libseccomp's program a few
 * raw BPF instructions: "if arch == A and highest_A < nr < limit_A, return
 * ERRNO(ENOSYS)".  Every named syscall is <= highest_A, so it still reaches
 * libseccomp's rules; unnamed syscalls at or below highest_A get the default
 * action as before.  This also covers syscalls newer than libseccomp's own
 * table, which a rule-based approach through libseccomp could not name.
 * limit_A keeps architecture-private ranges out: x86_64 numbers stop below
 * the x32 bit (0x40000000), x32 numbers are 0x40000000..0x400001ff (the
 * 512+ x32 compat numbers are old), ARM private calls start at 0xf0000, and
 * numbers >= 0x80000000 (e.g. -1) are never rewritten.  An architecture on
 * which the profile names nothing gets no prefix (a profile without syscalls
 * keeps its configured errno).  Names libseccomp does not know are skipped
 * (with a debug message) and so do not raise highest_A.  Jumps in classic BPF
 * are relative and forward only, so prepending does not disturb libseccomp's
 * code, which reloads seccomp_data itself.
 *
 * Architectures.  The native architecture is always in the filter (as with
 * libseccomp's default); listed ones are added.  An architecture libseccomp
 * cannot combine with the native one (other endianness, -EDOM) is skipped
 * with a debug message: its syscalls cannot reach this kernel anyway.
 *
 * Flags.  Unknown names are errors.  Known flags the running kernel refuses
 * (probed with seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL): EFAULT means
 * accepted, EINVAL refused) are dropped with a warning; when the probe gets
 * no answer the flag is kept and the kernel judges it at load time.  NEW_LISTENER is added
 * when a rule uses SCMP_ACT_NOTIFY, with TSYNC_ESRCH if TSYNC is also asked
 * for (the kernel requires it); WAIT_KILLABLE_RECV without NOTIFY is dropped.
 *
 * Cache.  Key: SHA-256 (implemented below) of the canonical JSON of the
 * seccomp section, the libseccomp version, the native audit arch, the
 * kernel's machine and release, and a format tag.  A file <hex>.bpf holds a
 * header (load flags, notify, length, the key itself, and a SHA-256 over
 * the header and the program) and the instructions; it is checked on read
 * (owner, mode, size, key, digest) and any mismatch is a miss, rewritten
 * atomically (O_EXCL temporary, rename).  The directory itself is refused
 * unless it is the euid's and not group/other-writable.  A hit does not touch libseccomp at all.
 * The cache directory must be as trusted as the runtime's state directory:
 * whoever writes it decides the filters.  Entries are never evicted.  */
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

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1U << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1U << 5)
#endif
#ifndef BPF_MAXINSNS
#define BPF_MAXINSNS 4096
#endif
#define MAX_ERRNO_VALUE 4095
#define MAX_SYSCALL_ARGS 6

struct sbx_seccomp
{
  struct sock_filter *insns;
  size_t len;
  unsigned int flags; /* for seccomp(2), NEW_LISTENER included */
  bool notify;
  bool cached; /* taken from the cache */
};

static unsigned long compile_count;

/* ---- name tables ---- */

#define ACTIONS(X)                                                                                           \
  X ("SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false)                                                           \
  X ("SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false)                                                  \
  X ("SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false)                                                    \
  X ("SCMP_ACT_TRAP", SCMP_ACT_TRAP, false)                                                                  \
  X ("SCMP_ACT_ERRNO", SCMP_ACT_ERRNO (0), true)                                                             \
  X ("SCMP_ACT_TRACE", SCMP_ACT_TRACE (0), true)                                                             \
  X ("SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false)                                                                \
  X ("SCMP_ACT_LOG", SCMP_ACT_LOG, false)                                                                    \
  X ("SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false)

#define OPERATORS(X)                                                                                         \
  X ("SCMP_CMP_NE", SCMP_CMP_NE)                                                                             \
  X ("SCMP_CMP_LT", SCMP_CMP_LT)                                                                             \
  X ("SCMP_CMP_LE", SCMP_CMP_LE)                                                                             \
  X ("SCMP_CMP_EQ", SCMP_CMP_EQ)                                                                             \
  X ("SCMP_CMP_GE", SCMP_CMP_GE)                                                                             \
  X ("SCMP_CMP_GT", SCMP_CMP_GT)                                                                             \
  X ("SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ)

#define FLAGS(X)                                                                                             \
  X ("SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC)                                                 \
  X ("SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG)                                                     \
  X ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW)                                       \
  X ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)

#define NAME2(n, v) n,
#define NAME3(n, v, e) n,
const char *const sbx_seccomp_actions[] = { ACTIONS (NAME3) NULL };
const char *const sbx_seccomp_operators[] = { OPERATORS (NAME2) NULL };
const char *const sbx_seccomp_flags[] = { FLAGS (NAME2) NULL };

static const struct
{
  const char *name;
  uint32_t base;
  bool takes_data; /* errnoRet allowed */
} action_table[] = {
#define ROW3(n, v, e) { n, v, e },
  ACTIONS (ROW3)
};

static const struct
{
  const char *name;
  enum scmp_compare op;
} operator_table[] = {
#define ROW2(n, v) { n, v },
  OPERATORS (ROW2)
};

static const struct
{
  const char *name;
  unsigned int flag;
} flag_table[] = { FLAGS (ROW2) };

static const struct
{
  const char *name;
  uint32_t token;
} arch_table[] = {
  { "SCMP_ARCH_X86", SCMP_ARCH_X86 },
  { "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 },
  { "SCMP_ARCH_X32", SCMP_ARCH_X32 },
  { "SCMP_ARCH_ARM", SCMP_ARCH_ARM },
  { "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
  { "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS },
  { "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64 },
  { "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32 },
  { "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL },
  { "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64 },
  { "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32 },
  { "SCMP_ARCH_PPC", SCMP_ARCH_PPC },
  { "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64 },
  { "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE },
  { "SCMP_ARCH_S390", SCMP_ARCH_S390 },
  { "SCMP_ARCH_S390X", SCMP_ARCH_S390X },
  { "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC },
  { "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64 },
  { "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64 },
#ifdef SCMP_ARCH_LOONGARCH64
  { "SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64 },
#endif
#ifdef SCMP_ARCH_M68K
  { "SCMP_ARCH_M68K", SCMP_ARCH_M68K },
#endif
#ifdef SCMP_ARCH_SH
  { "SCMP_ARCH_SH", SCMP_ARCH_SH },
#endif
#ifdef SCMP_ARCH_SHEB
  { "SCMP_ARCH_SHEB", SCMP_ARCH_SHEB },
#endif
};

#define N_ELEMS(a) (sizeof (a) / sizeof ((a)[0]))

char **
sbx_seccomp_archs (void)
{
  char **v = xmalloc0 ((N_ELEMS (arch_table) + 1) * sizeof *v);
  for (size_t i = 0; i < N_ELEMS (arch_table); i++)
    v[i] = xstrdup (arch_table[i].name);
  return v;
}

/* 1: the kernel accepted the flags (EFAULT: it went on to read the NULL
   program); 0: it refused them (EINVAL); -1: no answer (seccomp(2) is not
   callable here, e.g. ENOSYS under valgrind or an outer filter).  */
static int
kernel_has_flag (unsigned int flag)
{
  unsigned int probe = flag;
  if (flag & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
    probe |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, probe, NULL) == 0)
    return 1; /* cannot happen with a NULL program */
  return errno == EFAULT ? 1 : errno == EINVAL ? 0 : -1;
}

char **
sbx_seccomp_supported_flags (void)
{
  char **v = xmalloc0 ((N_ELEMS (flag_table) + 1) * sizeof *v);
  size_t n = 0;
  for (size_t i = 0; i < N_ELEMS (flag_table); i++)
    if (kernel_has_flag (flag_table[i].flag) == 1)
      v[n++] = xstrdup (flag_table[i].name);
  return v;
}

unsigned long
sbx_seccomp_compile_count (void)
{
  return compile_count;
}

bool
sbx_seccomp_from_cache (const sbx_seccomp *sc)
{
  return sc && sc->cached;
}

bool
sbx_seccomp_uses_notify (const sbx_seccomp *sc)
{
  return sc && sc->notify;
}

size_t
sbx_seccomp_program (const sbx_seccomp *sc, const struct sock_filter **insns)
{
  if (insns)
    *insns = sc ? sc->insns : NULL;
  return sc ? sc->len : 0;
}

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct
{
  uint32_t h[8];
  uint64_t total;
  uint8_t buf[64];
  size_t used;
} sha256_ctx;

static const uint32_t sha256_k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_block (sha256_ctx *c, const uint8_t *p)
{
  uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8
           | p[4 * i + 3];
  for (int i = 16; i < 64; i++)
    {
      uint32_t s0 = ROR32 (w[i - 15], 7) ^ ROR32 (w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ROR32 (w[i - 2], 17) ^ ROR32 (w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
  a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
  e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++)
    {
      t1 = h + (ROR32 (e, 6) ^ ROR32 (e, 11) ^ ROR32 (e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
      t2 = (ROR32 (a, 2) ^ ROR32 (a, 13) ^ ROR32 (a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
      h = g, g = f, f = e, e = d + t1;
      d = cc, cc = b, b = a, a = t1 + t2;
    }
  c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
  c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void
sha256_init (sha256_ctx *c)
{
  static const uint32_t iv[8]
      = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  memcpy (c->h, iv, sizeof iv);
  c->total = 0;
  c->used = 0;
}

static void
sha256_update (sha256_ctx *c, const void *data, size_t len)
{
  const uint8_t *p = data;
  c->total += len;
  while (len > 0)
    {
      size_t n = 64 - c->used < len ? 64 - c->used : len;
      memcpy (c->buf + c->used, p, n);
      c->used += n, p += n, len -= n;
      if (c->used == 64)
        {
          sha256_block (c, c->buf);
          c->used = 0;
        }
    }
}

static void
sha256_final (sha256_ctx *c, uint8_t out[32])
{
  uint64_t bits = c->total * 8;
  uint8_t pad = 0x80, zero = 0, lenbuf[8];
  sha256_update (c, &pad, 1);
  while (c->used != 56)
    sha256_update (c, &zero, 1);
  for (int i = 0; i < 8; i++)
    lenbuf[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update (c, lenbuf, 8);
  for (int i = 0; i < 8; i++)
    {
      out[4 * i] = (uint8_t)(c->h[i] >> 24);
      out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
      out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
      out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void
sbx_sha256 (const void *data, size_t len, unsigned char out[32])
{
  sha256_ctx c;
  sha256_init (&c);
  sha256_update (&c, data, len);
  sha256_final (&c, out);
}

/* ---- validation helpers ---- */

static int
parse_action (const char *name, bool has_data, uint32_t data, const char *afield, const char *dfield,
              uint32_t *out, sbx_error **err)
{
  for (size_t i = 0; i < N_ELEMS (action_table); i++)
    {
      if (strcmp (name, action_table[i].name) != 0)
        continue;
      if (!action_table[i].takes_data)
        {
          if (has_data)
            return sbx_error_set (err, 0, "%s: not allowed with action `%s`", dfield, name);
          *out = action_table[i].base;
          return 0;
        }
      if (!has_data)
        data = EPERM;
      if (action_table[i].base == SCMP_ACT_ERRNO (0) && data > MAX_ERRNO_VALUE)
        return sbx_error_set (err, 0, "%s: %u out of range (0..%d)", dfield, data, MAX_ERRNO_VALUE);
      if (data > 0xffff)
        return sbx_error_set (err, 0, "%s: %u out of range (0..65535)", dfield, data);
      *out = action_table[i].base | data;
      return 0;
    }
  return sbx_error_set (err, 0, "%s: unknown action `%s`", afield, name);
}

static bool
is_action (const char *name, const char *want)
{
  return name && strcmp (name, want) == 0;
}

static bool
profile_uses_notify (const oci_seccomp *s)
{
  if (is_action (s->default_action, "SCMP_ACT_NOTIFY"))
    return true;
  for (size_t i = 0; i < s->syscalls_len; i++)
    if (s->syscalls[i] && is_action (s->syscalls[i]->action, "SCMP_ACT_NOTIFY"))
      return true;
  return false;
}

/* Top-level fields that need no libseccomp: flags, listener settings.  */
static int
check_top (const oci_seccomp *s, unsigned int *flags_out, bool *notify_out, sbx_error **err)
{
  unsigned int flags = 0;
  bool notify = profile_uses_notify (s);

  if (s->default_action == NULL)
    return sbx_error_set (err, 0, "linux.seccomp.defaultAction: missing");
  for (size_t i = 0; i < s->flags_len; i++)
    {
      size_t j;
      for (j = 0; j < N_ELEMS (flag_table); j++)
        if (strcmp (s->flags[i], flag_table[j].name) == 0)
          break;
      if (j == N_ELEMS (flag_table))
        return sbx_error_set (err, 0, "linux.seccomp.flags[%zu]: unknown flag `%s`", i, s->flags[i]);
      if (flag_table[j].flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !notify)
        {
          sbx_debug ("seccomp: %s ignored: no rule uses SCMP_ACT_NOTIFY", s->flags[i]);
          continue;
        }
      if (kernel_has_flag (flag_table[j].flag) == 0)
        {
          sbx_warn ("seccomp: %s not supported by the kernel, ignored", s->flags[i]);
          continue;
        }
      flags |= flag_table[j].flag;
    }
  if (s->listener_metadata && s->listener_path == NULL)
    return sbx_error_set (err, 0, "linux.seccomp.listenerMetadata: set without listenerPath");
  if (notify)
    {
      if (s->listener_path == NULL || s->listener_path[0] == '\0')
        return sbx_error_set (err, 0, "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
      flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
      if (flags & SECCOMP_FILTER_FLAG_TSYNC)
        {
          if (kernel_has_flag (SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER
                               | SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
              == 0)
            return sbx_error_set (err, 0,
                                  "linux.seccomp.flags: SECCOMP_FILTER_FLAG_TSYNC with "
                                  "SCMP_ACT_NOTIFY needs a kernel with TSYNC_ESRCH");
          flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
  *flags_out = flags;
  *notify_out = notify;
  return 0;
}

/* ---- compilation ---- */

typedef struct
{
  uint32_t token;  /* libseccomp arch token */
  uint32_t audit;  /* seccomp_data.arch seen by the filter */
  uint32_t lo, hi; /* numbers in [lo, hi) belong to this arch's normal table */
  int64_t highest; /* highest named number in [lo, hi), or -1 */
} arch_state;

static void
arch_state_init (arch_state *a, uint32_t token)
{
  a->token = token;
  a->audit = token;
  a->lo = 0;
  a->hi = 0x80000000u;
  a->highest = -1;
  if (token == SCMP_ARCH_X86_64)
    a->hi = 0x40000000u;
  else if (token == SCMP_ARCH_X32)
    {
      a->audit = AUDIT_ARCH_X86_64;
      a->lo = 0x40000000u;
      a->hi = 0x40000200u;
    }
  else if (token == SCMP_ARCH_ARM)
    a->hi = 0xf0000u;
}

static void
release_ctx (scmp_filter_ctx *c)
{
  if (*c)
    seccomp_release (*c);
}

static int
add_archs (scmp_filter_ctx ctx, const oci_seccomp *s, arch_state *archs, size_t *narch, sbx_error **err)
{
  arch_state_init (&archs[0], seccomp_arch_native ());
  *narch = 1;
  for (size_t i = 0; i < s->architectures_len; i++)
    {
      const char *name = s->architectures[i];
      size_t j;
      int r;
      for (j = 0; j < N_ELEMS (arch_table); j++)
        if (strcmp (name, arch_table[j].name) == 0)
          break;
      if (j == N_ELEMS (arch_table))
        return sbx_error_set (err, 0, "linux.seccomp.architectures[%zu]: unknown architecture `%s`", i, name);
      r = seccomp_arch_add (ctx, arch_table[j].token);
      if (r == -EEXIST)
        continue;
      if (r == -EDOM)
        {
          sbx_debug ("seccomp: %s cannot be combined with the native architecture, skipped", name);
          continue;
        }
      if (r < 0)
        return sbx_error_set (err, -r, "linux.seccomp.architectures[%zu]: cannot add `%s`", i, name);
      arch_state_init (&archs[(*narch)++], arch_table[j].token);
    }
  return 0;
}

static int
build_conditions (const oci_seccomp_syscall *sys, size_t idx, struct scmp_arg_cmp *conds, bool *split,
                  sbx_error **err)
{
  unsigned seen = 0;
  *split = false;
  for (size_t j = 0; j < sys->args_len; j++)
    {
      const oci_seccomp_arg *a = sys->args[j];
      size_t k;
      if (a->index >= MAX_SYSCALL_ARGS)
        return sbx_error_set (err, 0,
                              "linux.seccomp.syscalls[%zu].args[%zu].index: %u out of "
                              "range (0..%d)",
                              idx, j, a->index, MAX_SYSCALL_ARGS - 1);
      for (k = 0; k < N_ELEMS (operator_table); k++)
        if (a->op && strcmp (a->op, operator_table[k].name) == 0)
          break;
      if (k == N_ELEMS (operator_table))
        return sbx_error_set (err, 0,
                              "linux.seccomp.syscalls[%zu].args[%zu].op: unknown "
                              "operator `%s`",
                              idx, j, a->op ? a->op : "");
      conds[j].arg = a->index;
      conds[j].op = operator_table[k].op;
      conds[j].datum_a = a->value;
      conds[j].datum_b = a->has_value_two ? a->value_two : 0;
      if (seen & (1u << a->index))
        *split = true;
      seen |= 1u << a->index;
    }
  return 0;
}

static int
add_syscall_entry (scmp_filter_ctx ctx, const oci_seccomp_syscall *sys, size_t idx, uint32_t def_action,
                   arch_state *archs, size_t narch, sbx_error **err)
{
  char afield[64], dfield[64];
  cleanup_free struct scmp_arg_cmp *conds = NULL;
  uint32_t action;
  bool split;
  int r;

  if (sys == NULL)
    return sbx_error_set (err, 0, "linux.seccomp.syscalls[%zu]: null entry", idx);
  snprintf (afield, sizeof afield, "linux.seccomp.syscalls[%zu].action", idx);
  snprintf (dfield, sizeof dfield, "linux.seccomp.syscalls[%zu].errnoRet", idx);
  if (sys->names_len == 0)
    return sbx_error_set (err, 0, "linux.seccomp.syscalls[%zu].names: must not be empty", idx);
  r = parse_action (sys->action ? sys->action : "", sys->has_errno_ret, sys->errno_ret, afield, dfield,
                    &action, err);
  if (r < 0)
    return r;
  conds = xmalloc0 ((sys->args_len + 1) * sizeof *conds);
  r = build_conditions (sys, idx, conds, &split, err);
  if (r < 0)
    return r;

  for (size_t k = 0; k < sys->names_len; k++)
    {
      const char *name = sys->names[k];
      int nr = seccomp_syscall_resolve_name (name);
      if (nr == __NR_SCMP_ERROR)
        {
          sbx_debug ("seccomp: unknown syscall `%s` (linux.seccomp.syscalls[%zu].names[%zu]) "
                     "skipped",
                     name, idx, k);
          continue;
        }
      for (size_t a = 0; a < narch; a++)
        {
          int n = seccomp_syscall_resolve_name_arch (archs[a].token, name);
          if (n >= 0 && (uint32_t)n >= archs[a].lo && (uint32_t)n < archs[a].hi && n > archs[a].highest)
            archs[a].highest = n;
        }
      if (action == def_action)
        continue; /* the default already does it; libseccomp refuses such rules */
      if (!split)
        r = seccomp_rule_add_array (ctx, action, nr, (unsigned)sys->args_len, conds);
      else
        for (size_t j = 0; j < sys->args_len && r >= 0; j++)
          r = seccomp_rule_add_array (ctx, action, nr, 1, &conds[j]);
      if (r < 0)
        return sbx_error_set (err, -r,
                              "linux.seccomp.syscalls[%zu].names[%zu]: cannot add a "
                              "rule for `%s`",
                              idx, k, name);
    }
  return 0;
}

static bool
default_refuses (uint32_t def_action)
{
  if (def_action == SCMP_ACT_KILL_THREAD || def_action == SCMP_ACT_KILL_PROCESS)
    return true;
  return (def_action & 0xffff0000u) == SCMP_ACT_ERRNO (0) && (def_action & 0xffffu) != ENOSYS;
}

/* The ENOSYS prefix: 6 instructions per architecture with named syscalls.  */
static size_t
emit_enosys (struct sock_filter *out, const arch_state *archs, size_t narch)
{
  size_t n = 0;
  for (size_t a = 0; a < narch; a++)
    {
      if (archs[a].highest < 0 || (uint64_t)archs[a].highest + 1 >= archs[a].hi)
        continue;
      struct sock_filter block[] = {
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, archs[a].audit, 0, 4),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
        BPF_JUMP (BPF_JMP | BPF_JGT | BPF_K, (uint32_t)archs[a].highest, 0, 2),
        BPF_JUMP (BPF_JMP | BPF_JGE | BPF_K, archs[a].hi, 1, 0),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      };
      if (out)
        memcpy (out + n, block, sizeof block);
      n += N_ELEMS (block);
    }
  return n;
}

static int
export_program (scmp_filter_ctx ctx, char **buf, size_t *len, sbx_error **err)
{
  cleanup_close int fd = memfd_create ("sbx-seccomp", MFD_CLOEXEC);
  int r;
  if (fd < 0)
    return sbx_error_sys (err, "memfd_create");
  r = seccomp_export_bpf (ctx, fd);
  if (r < 0)
    return sbx_error_set (err, -r, "seccomp_export_bpf");
  if (lseek (fd, 0, SEEK_SET) < 0)
    return sbx_error_sys (err, "lseek");
  r = sbx_read_fd (fd, 0, buf, len, err);
  if (r < 0)
    return r;
  if (*len == 0 || *len % sizeof (struct sock_filter) != 0)
    return sbx_error_set (err, 0, "seccomp_export_bpf: unexpected program size %zu", *len);
  return 0;
}

/* libseccomp refuses actions (KILL_PROCESS, LOG, NOTIFY...) its probe of the
   running kernel did not find.  We use it only as a compiler, so when
   seccomp(2) cannot be called from here at all (ENOSYS: valgrind, or an
   outer filter) that probe tells nothing about the kernel, and we let
   libseccomp assume its full API; the kernel still judges the program when
   the container process loads it.  When seccomp(2) answers, libseccomp's
   own checks stand.  */
static void
use_full_api (void)
{
  unsigned int allow = SECCOMP_RET_ALLOW;
  if (seccomp_api_get () >= 6)
    return;
  if (syscall (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &allow) < 0 && errno == ENOSYS)
    {
      sbx_debug ("seccomp: seccomp(2) unavailable here, compiling for libseccomp API level 6");
      seccomp_api_set (6);
    }
}

static int
compile (const oci_seccomp *s, sbx_seccomp *sc, sbx_error **err)
{
  __attribute__ ((cleanup (release_ctx))) scmp_filter_ctx ctx = NULL;
  arch_state archs[N_ELEMS (arch_table) + 1];
  cleanup_free char *prog = NULL;
  size_t narch, prog_len, prefix;
  uint32_t def_action;
  int r;

  r = parse_action (s->default_action, s->has_default_errno_ret, s->default_errno_ret,
                    "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet", &def_action, err);
  if (r < 0)
    return r;
  compile_count++;
  use_full_api ();
  ctx = seccomp_init (def_action);
  if (ctx == NULL)
    return sbx_error_set (err, EINVAL, "linux.seccomp.defaultAction: libseccomp refused `%s`",
                          s->default_action);
  r = add_archs (ctx, s, archs, &narch, err);
  if (r < 0)
    return r;
  for (size_t i = 0; i < s->syscalls_len; i++)
    {
      r = add_syscall_entry (ctx, s->syscalls[i], i, def_action, archs, narch, err);
      if (r < 0)
        return r;
    }
  r = export_program (ctx, &prog, &prog_len, err);
  if (r < 0)
    return r;

  prefix = default_refuses (def_action) ? emit_enosys (NULL, archs, narch) : 0;
  sc->len = prefix + prog_len / sizeof (struct sock_filter);
  if (sc->len > BPF_MAXINSNS)
    return sbx_error_set (err, E2BIG,
                          "linux.seccomp: program of %zu instructions exceeds the "
                          "kernel limit of %d",
                          sc->len, BPF_MAXINSNS);
  sc->insns = xmalloc0 (sc->len * sizeof *sc->insns);
  emit_enosys (prefix ? sc->insns : NULL, archs, prefix ? narch : 0);
  memcpy (sc->insns + prefix, prog, prog_len);
  return 0;
}

/* ---- cache ---- */

#define CACHE_MAGIC "SBXBPF02"
#define CACHE_FORMAT "sbxrun seccomp cache v2: enosys-prefix, split-dup-args, bound key"

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
  sha256_ctx c;
  sha256_init (&c);
  sha256_update (&c, h, offsetof (struct cache_header, digest));
  sha256_update (&c, insns, body);
  sha256_final (&c, out);
}

static void
cache_key (const oci_seccomp *s, uint8_t d[32], char hex[65])
{
  const struct scmp_version *v = seccomp_version ();
  struct utsname u;
  size_t jlen = 0;
  cleanup_free char *json = ocispec_generate (&oci_seccomp_type, s, false, &jlen);
  cleanup_free char *env = NULL;
  sha256_ctx c;

  if (uname (&u) < 0)
    memset (&u, 0, sizeof u);
  env = xasprintf ("%s\n%u.%u.%u\n%u\n%s\n%s\n", CACHE_FORMAT, v ? v->major : 0, v ? v->minor : 0,
                   v ? v->micro : 0, seccomp_arch_native (), u.machine, u.release);
  sha256_init (&c);
  sha256_update (&c, env, strlen (env));
  sha256_update (&c, json, jlen);
  sha256_final (&c, d);
  for (int i = 0; i < 32; i++)
    snprintf (hex + 2 * i, 3, "%02x", d[i]);
}

/* Any mismatch is a miss: the caller compiles and rewrites the entry.  */
static bool
cache_read (int dfd, const uint8_t key[32], const char *hex, sbx_seccomp *sc)
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

static void
cache_write (int dfd, const uint8_t key[32], const char *hex, const sbx_seccomp *sc)
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

/* ---- public entry points ---- */

int
sbx_seccomp_check_names (const oci_seccomp *s, sbx_error **err)
{
  for (size_t i = 0; s && i < s->syscalls_len; i++)
    for (size_t k = 0; k < s->syscalls[i]->names_len; k++)
      if (seccomp_syscall_resolve_name (s->syscalls[i]->names[k]) == __NR_SCMP_ERROR)
        return sbx_error_set (err, EINVAL,
                              "linux.seccomp.syscalls[%zu].names[%zu]: unknown syscall `%s` "
                              "(run.oci.seccomp_fail_unknown_syscall)",
                              i, k, s->syscalls[i]->names[k]);
  return 0;
}

int
sbx_seccomp_prepare (const oci_seccomp *s, const char *cache_dir, sbx_seccomp **out, sbx_error **err)
{
  sbx_seccomp *sc;
  cleanup_close int dfd = -1;
  uint8_t key[32];
  char hex[65];
  int r;

  *out = NULL;
  if (s == NULL)
    return sbx_error_set (err, EINVAL, "linux.seccomp: missing");
  if (cache_dir)
    {
      /* Whoever can write the cache decides the filters: refuse one that is
         not the runtime's own (EPERM: owner or mode; ELOOP: a symlink).
         One that cannot be made or opened only costs the cache.  */
      cleanup_error sbx_error *e = NULL;
      dfd = sbx_open_private_dir (cache_dir, true, "seccomp cache", &e);
      if (dfd < 0 && (e->errno_ == EPERM || e->errno_ == ELOOP))
        {
          if (err)
            {
              sbx_error_free (*err);
              *err = steal_ptr (e);
            }
          return -1;
        }
      if (dfd < 0)
        {
          cleanup_free char *t = sbx_error_text (e);
          sbx_debug ("seccomp: no cache: %s", t);
        }
    }
  sc = xmalloc0 (sizeof *sc);
  if (dfd >= 0)
    {
      cache_key (s, key, hex);
      if (cache_read (dfd, key, hex, sc))
        {
          sbx_debug ("seccomp: cache hit %s", hex);
          *out = sc;
          return 0;
        }
    }
  r = check_top (s, &sc->flags, &sc->notify, err);
  if (r >= 0)
    r = compile (s, sc, err);
  if (r < 0)
    {
      sbx_seccomp_free (sc);
      return r;
    }
  if (dfd >= 0)
    cache_write (dfd, key, hex, sc);
  *out = sc;
  return 0;
}

int
sbx_seccomp_load (const sbx_seccomp *sc, int *notify_fd, sbx_error **err)
{
  struct sock_fprog prog;
  long r;

  if (notify_fd)
    *notify_fd = -1;
  if (sc == NULL || sc->len == 0 || sc->len > BPF_MAXINSNS)
    return sbx_error_set (err, EINVAL, "seccomp: no program to load");
  prog.len = (unsigned short)sc->len;
  prog.filter = sc->insns;
  r = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, sc->flags, &prog);
  if (r < 0 && errno == ENOSYS && sc->flags == 0)
    r = prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
  if (r < 0)
    {
      if (errno == EACCES)
        return sbx_error_sys (err, "seccomp: load filter (no_new_privs not set and no "
                                   "CAP_SYS_ADMIN)");
      return sbx_error_sys (err, "seccomp: load filter");
    }
  if (sc->notify)
    {
      if (notify_fd)
        *notify_fd = (int)r;
      else
        close ((int)r);
    }
  else if (r > 0)
    return sbx_error_set (err, 0, "seccomp: cannot synchronize the filter to thread %ld", r);
  return 0;
}

/* Connect to path; paths longer than sun_path go through /proc/self/fd.  */
static int
connect_unix (const char *path, sbx_error **err)
{
  struct sockaddr_un addr;
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cleanup_close int dirfd = -1;
  const char *target = path;
  cleanup_free char *alt = NULL;

  if (fd < 0)
    return sbx_error_sys (err, "socket");
  if (strlen (path) >= sizeof addr.sun_path)
    {
      cleanup_free char *dir = xstrdup (path);
      char *slash = strrchr (dir, '/');
      if (slash == NULL || slash == dir)
        return sbx_error_set (err, ENAMETOOLONG, "linux.seccomp.listenerPath: `%s`", path);
      *slash = '\0';
      dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return sbx_error_sys (err, "linux.seccomp.listenerPath: open `%s`", dir);
      alt = xasprintf ("/proc/self/fd/%d/%s", dirfd, slash + 1);
      if (strlen (alt) >= sizeof addr.sun_path)
        return sbx_error_set (err, ENAMETOOLONG, "linux.seccomp.listenerPath: `%s`", path);
      target = alt;
    }
  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strcpy (addr.sun_path, target);
  while (connect (fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    if (errno != EINTR)
      return sbx_error_sys (err, "linux.seccomp.listenerPath: connect to `%s`", path);
  return steal_fd (&fd);
}

static char *
process_state_json (const oci_seccomp *s, int pid, const oci_state *st, size_t *len)
{
  oj_writer *w = oj_writer_new (false);
  oj_w_begin_object (w);
  oj_w_key (w, "ociVersion");
  oj_w_string (w, OCI_VERSION);
  oj_w_key (w, "fds");
  oj_w_begin_array (w);
  oj_w_string (w, "seccompFd");
  oj_w_end_array (w);
  oj_w_key (w, "pid");
  oj_w_int (w, pid);
  if (s->listener_metadata)
    {
      oj_w_key (w, "metadata");
      oj_w_string (w, s->listener_metadata);
    }
  oj_w_key (w, "state");
  ocispec_write (&oci_state_type, st, w);
  oj_w_end_object (w);
  return oj_writer_finish (w, len);
}

int
sbx_seccomp_notify_send (const oci_seccomp *s, int notify_fd, int pid, const char *oci_state_json,
                         sbx_error **err)
{
  cleanup_free char *emsg = NULL;
  cleanup_free char *json = NULL;
  cleanup_close int sock = -1;
  oci_state *st;
  size_t len = 0, sent = 0;
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctl;

  if (s == NULL || s->listener_path == NULL)
    return sbx_error_set (err, EINVAL, "linux.seccomp.listenerPath: not set");
  if (notify_fd < 0)
    return sbx_error_set (err, EBADF, "seccomp notify: no listener fd");
  if (oci_state_json == NULL)
    return sbx_error_set (err, EINVAL, "seccomp notify: no container state");
  st = ocispec_parse (&oci_state_type, oci_state_json, strlen (oci_state_json), &emsg);
  if (st == NULL)
    return sbx_error_set (err, EINVAL, "seccomp notify: container state: %s", emsg ? emsg : "invalid");
  json = process_state_json (s, pid, st, &len);
  oci_state_free (st);

  sock = connect_unix (s->listener_path, err);
  if (sock < 0)
    return sock;
  while (sent < len)
    {
      struct iovec iov = { .iov_base = json + sent, .iov_len = len - sent };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
      ssize_t n;
      if (sent == 0)
        {
          struct cmsghdr *cm;
          memset (&ctl, 0, sizeof ctl);
          msg.msg_control = ctl.buf;
          msg.msg_controllen = sizeof ctl.buf;
          cm = CMSG_FIRSTHDR (&msg);
          cm->cmsg_level = SOL_SOCKET;
          cm->cmsg_type = SCM_RIGHTS;
          cm->cmsg_len = CMSG_LEN (sizeof (int));
          memcpy (CMSG_DATA (cm), &notify_fd, sizeof (int));
        }
      n = sendmsg (sock, &msg, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return sbx_error_sys (err, "linux.seccomp.listenerPath: send to `%s`", s->listener_path);
      sent += (size_t)n;
    }
  return 0;
}

void
sbx_seccomp_free (sbx_seccomp *sc)
{
  if (sc == NULL)
    return;
  free (sc->insns);
  free (sc);
}

/* After loading the filter the container process still makes a few
   syscalls of the runtime's own before execve (hand the notify fd over,
   wait for the listener, PATH lookup; without no_new_privs also the user
   and capability switch).  A NOTIFY rule on one of them would wait for a
   listener that cannot have the fd yet: refuse it up front.  */
int
sbx_seccomp_check_notify (const oci_seccomp *s, bool no_new_privs, sbx_error **err)
{
  static const char *const always[]
      = { "sendmsg", "recvmsg", "close", "execve", "execveat", "exit", "exit_group", "mmap", "munmap",
          "brk", "newfstatat", "fstat", "stat", "statx", "openat", "write", "rt_sigprocmask", NULL };
  static const char *const without_nnp[]
      = { "setgroups", "setresgid", "setresuid", "prctl", "capget", "capset", NULL };
  for (size_t i = 0; s && i < s->syscalls_len; i++)
    {
      const oci_seccomp_syscall *sc = s->syscalls[i];
      if (strcmp (sc->action, "SCMP_ACT_NOTIFY") != 0)
        continue;
      for (size_t j = 0; j < sc->names_len; j++)
        for (int pass = 0; pass < 2; pass++)
          for (const char *const *n = pass ? without_nnp : always; *n; n++)
            if ((pass == 0 || !no_new_privs) && strcmp (sc->names[j], *n) == 0)
              return sbx_error_set (err, EINVAL,
                                    "linux.seccomp.syscalls[%zu]: SCMP_ACT_NOTIFY on `%s` is not "
                                    "supported: the runtime calls it after loading the filter%s, "
                                    "before the listener can have the notify fd",
                                    i, *n, pass ? " (noNewPrivileges is false)" : "");
    }
  return 0;
}
