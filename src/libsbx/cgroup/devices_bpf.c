/* cgroup/devices_bpf.c - linux.resources.devices on cgroup v2.
 *
 * cgroup v2 has no devices.allow/deny files: device access is decided by
 * eBPF programs of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup
 * (and to its ancestors: with BPF_F_ALLOW_MULTI every program on the path
 * must allow).  The kernel calls the program with
 *
 *     struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
 *
 * where access_type = (BPF_DEVCG_ACC_* bits << 16) | BPF_DEVCG_DEV_*, and
 * the access is allowed when it returns 1.  We generate the instructions
 * here at run time (no compiler, no object files).
 *
 * Semantics, shared with the v1 backend: a request is allowed when each of
 * its access bits (m, r, w) is; for one bit, the last rule that matches the
 * device and names the bit decides; if no rule does, the bit is allowed (so
 * configs start with a deny-all rule, as the runtime-spec example does).
 * Type "a" matches every device and every access, as in v1.
 *
 * Program shape (r1 = ctx):
 *
 *     r2 = ctx->access_type; r3 = r2 >> 16; r2 &= 0xffff    type, access
 *     r4 = ctx->major; r5 = ctx->minor
 *   per bit B that some rule names:
 *     r0 = r3; r0 &= B; if r0 == 0 goto next_bit
 *     per rule naming B, last first:
 *       if r2 != TYPE goto next_rule; if r4 != MAJ ...; if r5 != MIN ...
 *       goto next_bit (allow) | goto deny
 *     (a rule without conditions ends the list: nothing after it is reached)
 *   next_bit ...
 *     r0 = 1; exit
 *   deny:
 *     r0 = 0; exit
 *
 * The verifier rejects unreachable instructions, so nothing is emitted
 * after an unconditional match and the deny exit only when used.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

/* ------------------------------------------------------------ compiling */

typedef struct
{
  struct bpf_insn *v;
  size_t n, cap;
  /* forward jumps waiting for their label: instruction index + label id */
  struct
  {
    size_t at;
    int label;
  } * fix;
  size_t nfix, capfix;
  size_t *label_at; /* label id -> instruction index (SIZE_MAX: unplaced) */
  size_t nlabels;
} prog;

static void
emit (prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  if (p->n == p->cap)
    {
      p->cap = p->cap ? p->cap * 2 : 64;
      p->v = xrealloc (p->v, p->cap * sizeof *p->v);
    }
  memset (&p->v[p->n], 0, sizeof p->v[p->n]);
  p->v[p->n].code = code;
  p->v[p->n].dst_reg = dst;
  p->v[p->n].src_reg = src;
  p->v[p->n].off = off;
  p->v[p->n].imm = imm;
  p->n++;
}

static int
new_label (prog *p)
{
  p->label_at = xrealloc (p->label_at, (p->nlabels + 1) * sizeof *p->label_at);
  p->label_at[p->nlabels] = SIZE_MAX;
  return (int)p->nlabels++;
}

static void
place (prog *p, int label)
{
  p->label_at[label] = p->n;
}

/* A jump whose offset is filled in by resolve().  */
static void
emit_jump (prog *p, uint8_t code, uint8_t dst, int32_t imm, int label)
{
  if (p->nfix == p->capfix)
    {
      p->capfix = p->capfix ? p->capfix * 2 : 64;
      p->fix = xrealloc (p->fix, p->capfix * sizeof *p->fix);
    }
  p->fix[p->nfix].at = p->n;
  p->fix[p->nfix].label = label;
  p->nfix++;
  emit (p, code, dst, 0, 0, imm);
}

static bool
label_used (const prog *p, int label)
{
  for (size_t i = 0; i < p->nfix; i++)
    if (p->fix[i].label == label)
      return true;
  return false;
}

static int
resolve (prog *p, sbx_error **err)
{
  for (size_t i = 0; i < p->nfix; i++)
    {
      size_t to = p->label_at[p->fix[i].label], at = p->fix[i].at;
      if (to == SIZE_MAX || to <= at || to - at - 1 > INT16_MAX)
        return sbx_error_set (err, EINVAL,
                              "linux.resources.devices: internal error compiling the device "
                              "program (jump %zu -> %zu)",
                              at, to);
      p->v[at].off = (int16_t)(to - at - 1);
    }
  return 0;
}

static void
prog_release (prog *p)
{
  free (p->v);
  free (p->fix);
  free (p->label_at);
}

#define R0 BPF_REG_0
#define R1 BPF_REG_1
#define R_TYPE BPF_REG_2
#define R_ACC BPF_REG_3
#define R_MAJ BPF_REG_4
#define R_MIN BPF_REG_5

typedef struct
{
  bool allow;
  int type;         /* 0 = any ("a"), else BPF_DEVCG_DEV_CHAR / _BLOCK */
  int64_t maj, min; /* -1 = any */
  unsigned access;  /* BPF_DEVCG_ACC_* bits */
} rule;

static int
parse_rule (const oci_device_cgroup *d, size_t i, rule *out, sbx_error **err)
{
  char line[128];
  const char *type = d->type && *d->type ? d->type : "a";
  const char *acc = d->access && *d->access ? d->access : "rwm";

  /* same checks (and messages) as the v1 backend */
  if (sbx_cg_device_line (d, i, line, sizeof line, err) < 0)
    return -1;
  memset (out, 0, sizeof *out);
  out->allow = d->allow;
  out->maj = out->min = -1;
  if (type[0] == 'a')
    {
      out->access = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
      return 0;
    }
  out->type = type[0] == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
  if (d->has_major && d->major >= 0)
    out->maj = d->major;
  if (d->has_minor && d->minor >= 0)
    out->min = d->minor;
  if (out->maj > INT32_MAX || out->min > INT32_MAX)
    return sbx_error_set (err, EINVAL,
                          "linux.resources.devices[%zu]: device number %" PRId64 ":%" PRId64 " out of range",
                          i, out->maj, out->min);
  for (const char *c = acc; *c; c++)
    out->access |= *c == 'r' ? BPF_DEVCG_ACC_READ : *c == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  return 0;
}

int
sbx_cg_devices_compile (oci_device_cgroup *const *rules, size_t n, struct bpf_insn **out, size_t *len,
                        sbx_error **err)
{
  static const unsigned bits[] = { BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE };
  cleanup_free rule *rs = xmalloc0 ((n ? n : 1) * sizeof *rs);
  prog p = { 0 };
  int deny;

  for (size_t i = 0; i < n; i++)
    if (parse_rule (rules[i], i, &rs[i], err) < 0)
      return -1;

  emit (&p, BPF_LDX | BPF_MEM | BPF_W, R_TYPE, R1, offsetof (struct bpf_cgroup_dev_ctx, access_type), 0);
  emit (&p, BPF_ALU64 | BPF_MOV | BPF_X, R_ACC, R_TYPE, 0, 0);
  emit (&p, BPF_ALU64 | BPF_RSH | BPF_K, R_ACC, 0, 0, 16);
  emit (&p, BPF_ALU64 | BPF_AND | BPF_K, R_TYPE, 0, 0, 0xffff);
  emit (&p, BPF_LDX | BPF_MEM | BPF_W, R_MAJ, R1, offsetof (struct bpf_cgroup_dev_ctx, major), 0);
  emit (&p, BPF_LDX | BPF_MEM | BPF_W, R_MIN, R1, offsetof (struct bpf_cgroup_dev_ctx, minor), 0);
  deny = new_label (&p);

  for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++)
    {
      bool any = false;
      int next_bit;

      for (size_t i = 0; i < n; i++)
        any |= (rs[i].access & bits[b]) != 0;
      if (!any)
        continue; /* no rule names this bit: allowed */
      next_bit = new_label (&p);
      emit (&p, BPF_ALU64 | BPF_MOV | BPF_X, R0, R_ACC, 0, 0);
      emit (&p, BPF_ALU64 | BPF_AND | BPF_K, R0, 0, 0, (int32_t)bits[b]);
      emit_jump (&p, BPF_JMP | BPF_JEQ | BPF_K, R0, 0, next_bit);
      for (size_t k = n; k-- > 0;)
        {
          const rule *r = &rs[k];
          int next_rule;
          bool conditional = r->type || r->maj >= 0 || r->min >= 0;

          if (!(r->access & bits[b]))
            continue;
          next_rule = new_label (&p);
          if (r->type)
            emit_jump (&p, BPF_JMP | BPF_JNE | BPF_K, R_TYPE, r->type, next_rule);
          if (r->maj >= 0)
            emit_jump (&p, BPF_JMP | BPF_JNE | BPF_K, R_MAJ, (int32_t)r->maj, next_rule);
          if (r->min >= 0)
            emit_jump (&p, BPF_JMP | BPF_JNE | BPF_K, R_MIN, (int32_t)r->min, next_rule);
          emit_jump (&p, BPF_JMP | BPF_JA, 0, 0, r->allow ? next_bit : deny);
          place (&p, next_rule);
          if (!conditional)
            break; /* matches everything: earlier rules never decide */
        }
      /* falling through here (no rule matched) allows the bit; after a
         catch-all nothing falls through, and the block's first jump still
         reaches next_bit */
      place (&p, next_bit);
    }
  emit (&p, BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 1);
  emit (&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  if (label_used (&p, deny))
    {
      place (&p, deny);
      emit (&p, BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0);
      emit (&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
  if (resolve (&p, err) < 0)
    {
      prog_release (&p);
      return -1;
    }
  *out = steal_ptr (p.v);
  *len = p.n;
  prog_release (&p);
  return 0;
}

/* ------------------------------------------------------------ the kernel */

static int
sys_bpf (int cmd, union bpf_attr *attr)
{
  return (int)syscall (SYS_bpf, cmd, attr, sizeof *attr);
}

/* The name our programs carry (bpf_prog_info.name), so that an update
   replaces ours and leaves the others alone: systemd's ("sd_devices", from
   the unit's DevicePolicy=/DeviceAllow= under --systemd-cgroup) must stay,
   or systemd would only put it back at its next daemon-reload.  */
#define PROG_NAME "sbx_devices"

/* Whether the attached program fd is one of ours: named PROG_NAME, or
   unnamed (made by an sbxrun before programs had a name).  */
static bool
is_ours (int fd)
{
  struct bpf_prog_info info;
  union bpf_attr a;

  memset (&info, 0, sizeof info);
  memset (&a, 0, sizeof a);
  a.info.bpf_fd = (uint32_t)fd;
  a.info.info_len = sizeof info;
  a.info.info = (uint64_t)(uintptr_t)&info;
  if (sys_bpf (BPF_OBJ_GET_INFO_BY_FD, &a) < 0)
    return true;
  return info.name[0] == '\0' || strcmp (info.name, PROG_NAME) == 0;
}

static int
load (const struct bpf_insn *insns, size_t n, sbx_error **err)
{
  union bpf_attr a;
  char *log = NULL;
  int fd;

  memset (&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uint64_t)(uintptr_t)insns;
  a.insn_cnt = (uint32_t)n;
  a.license = (uint64_t)(uintptr_t) "GPL";
  memcpy (a.prog_name, PROG_NAME, sizeof PROG_NAME);
  fd = sys_bpf (BPF_PROG_LOAD, &a);
  if (fd >= 0)
    return fd;
  if (errno == EINVAL || errno == EACCES)
    {
      /* again with the verifier's log, for the message */
      int e;
      const size_t loglen = 1 << 16;
      log = xmalloc0 (loglen);
      a.log_level = 1;
      a.log_buf = (uint64_t)(uintptr_t)log;
      a.log_size = loglen;
      fd = sys_bpf (BPF_PROG_LOAD, &a);
      if (fd >= 0)
        {
          free (log);
          return fd;
        }
      e = errno;
      sbx_debug ("cgroup v2: device program rejected by the verifier:\n%s", log);
      {
        /* the last non-empty line says why */
        size_t l = strlen (log);
        char *last;
        while (l > 0 && log[l - 1] == '\n')
          log[--l] = '\0';
        last = strrchr (log, '\n');
        sbx_error_set (err, e, "linux.resources.devices: load the eBPF device program: %s",
                       last ? last + 1 : log);
      }
      free (log);
      return -1;
    }
  return sbx_error_sys (err, "linux.resources.devices: load the eBPF device program (BPF_PROG_LOAD)");
}

/* Ids of the device programs attached to the cgroup itself.  */
static int
query (int cgfd, uint32_t **ids, uint32_t *count, sbx_error **err)
{
  union bpf_attr a;
  uint32_t cap = 16;

  for (;;)
    {
      uint32_t *v = xmalloc0 (cap * sizeof *v);
      memset (&a, 0, sizeof a);
      a.query.target_fd = cgfd;
      a.query.attach_type = BPF_CGROUP_DEVICE;
      a.query.prog_ids = (uint64_t)(uintptr_t)v;
      a.query.prog_cnt = cap;
      if (sys_bpf (BPF_PROG_QUERY, &a) == 0)
        {
          *ids = v;
          *count = a.query.prog_cnt;
          return 0;
        }
      free (v);
      if (errno != ENOSPC || cap >= 4096)
        return sbx_error_sys (err, "linux.resources.devices: list the device programs (BPF_PROG_QUERY)");
      cap *= 4;
    }
}

int
sbx_cg_devices_attach (sbx_cg_hier *h, oci_device_cgroup *const *rules, size_t n, sbx_error **err)
{
  cleanup_free struct bpf_insn *insns = NULL;
  cleanup_free uint32_t *old = NULL;
  cleanup_close int cgfd = -1, pfd = -1;
  uint32_t nold = 0;
  size_t ninsns = 0;
  union bpf_attr a;

  if (n && sbx_cg_devices_compile (rules, n, &insns, &ninsns, err) < 0)
    return -1;
  /* BPF wants a real descriptor of the directory (not O_PATH) */
  cgfd = open (h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0)
    return sbx_error_sys (err, "open cgroup `%s`", h->dir);
  if (query (cgfd, &old, &nold, err) < 0)
    return -1;
  if (n)
    {
      pfd = load (insns, ninsns, err);
      if (pfd < 0)
        return -1;
      memset (&a, 0, sizeof a);
      a.target_fd = cgfd;
      a.attach_bpf_fd = pfd;
      a.attach_type = BPF_CGROUP_DEVICE;
      a.attach_flags = BPF_F_ALLOW_MULTI;
      if (sys_bpf (BPF_PROG_ATTACH, &a) < 0)
        return sbx_error_sys (err, "linux.resources.devices: attach the eBPF device program to `%s`", h->dir);
      sbx_debug ("cgroup v2: device program (%zu rules, %zu instructions) attached to %s", n, ninsns,
                 h->path);
    }
  /* the new program is in force: our previous ones can go */
  for (uint32_t i = 0; i < nold; i++)
    {
      cleanup_close int ofd = -1;
      memset (&a, 0, sizeof a);
      a.prog_id = old[i];
      ofd = sys_bpf (BPF_PROG_GET_FD_BY_ID, &a);
      if (ofd < 0)
        {
          if (errno == ENOENT)
            continue;
          return sbx_error_sys (err, "linux.resources.devices: open the previous device program %" PRIu32,
                                old[i]);
        }
      if (!is_ours (ofd))
        continue;
      memset (&a, 0, sizeof a);
      a.target_fd = cgfd;
      a.attach_bpf_fd = ofd;
      a.attach_type = BPF_CGROUP_DEVICE;
      if (sys_bpf (BPF_PROG_DETACH, &a) < 0 && errno != ENOENT)
        return sbx_error_sys (err, "linux.resources.devices: detach the previous device program %" PRIu32,
                              old[i]);
    }
  return 0;
}
