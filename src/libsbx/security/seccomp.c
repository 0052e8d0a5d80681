/* seccomp.c - linux.seccomp: validation, compilation with libseccomp and
 * loading with seccomp(2); the compile cache is in seccomp_cache.c, the
 * SCMP_ACT_NOTIFY hand-off in seccomp_notify.c.
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
#include "security/security_internal.h"

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

bool
sbx_seccomp_uses_notify (const sbx_seccomp *sc)
{
  return sc && sc->notify;
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
  use_full_api ();
  ctx = seccomp_init (def_action);
  if (ctx == NULL)
    return sbx_error_set (err, EINVAL, "linux.seccomp.defaultAction: libseccomp refused `%s`",
                          s->default_action);
  /* Syscalls sorted into a binary tree, not a list: the kernel runs the
     filter for each syscall number when it loads it (to find the ones
     always allowed), so a 300-rule list costs 0.8 ms there, the tree
     0.2 ms; calls that do run the filter take log2(n) comparisons.  The
     same decisions either way.  */
  r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (r < 0)
    sbx_debug ("seccomp: libseccomp cannot sort the filter into a tree (%s)", strerror (-r));
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
      sbx_seccomp_cache_key (s, key, hex);
      if (sbx_seccomp_cache_read (dfd, key, hex, sc))
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
    sbx_seccomp_cache_write (dfd, key, hex, sc);
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

void
sbx_seccomp_free (sbx_seccomp *sc)
{
  if (sc == NULL)
    return;
  free (sc->insns);
  free (sc);
}
