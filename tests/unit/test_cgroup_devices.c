/* test_cgroup_devices.c - the device rules of the cgroup manager: the v2
 * eBPF device program (run by a small interpreter here, and checked for
 * reachability as the verifier would) and the systemd driver's
 * DeviceAllow list.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/bpf.h>

#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"
#include "core/core.h"
/* ------------------------------------------------- eBPF device program */

/* Run the generated program the way the kernel would, for the subset of
   instructions the generator uses; also check what the verifier checks
   that matters here: every instruction reachable, jumps in range, r0 set
   at exit.  */
static int
run_prog (const struct bpf_insn *p, size_t n, int type, unsigned access, uint32_t maj, uint32_t min)
{
  uint32_t ctx[3] = { (uint32_t)(access << 16) | (uint32_t)type, maj, min };
  uint64_t r[11] = { 0 };
  bool set[11] = { false };
  size_t pc = 0, steps = 0;

  set[1] = true;
  for (;;)
    {
      const struct bpf_insn *i = &p[pc];
      assert_true (pc < n);
      assert_true (++steps < 100000);
      switch (i->code)
        {
        case BPF_LDX | BPF_MEM | BPF_W:
          assert_int_equal (i->src_reg, 1);
          assert_true (i->off >= 0 && i->off <= 8 && i->off % 4 == 0);
          r[i->dst_reg] = ctx[i->off / 4];
          set[i->dst_reg] = true;
          break;
        case BPF_ALU64 | BPF_MOV | BPF_X:
          assert_true (set[i->src_reg]);
          r[i->dst_reg] = r[i->src_reg];
          set[i->dst_reg] = true;
          break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
          r[i->dst_reg] = (uint64_t)(int64_t)i->imm;
          set[i->dst_reg] = true;
          break;
        case BPF_ALU64 | BPF_RSH | BPF_K:
          assert_true (set[i->dst_reg]);
          r[i->dst_reg] >>= i->imm;
          break;
        case BPF_ALU64 | BPF_AND | BPF_K:
          assert_true (set[i->dst_reg]);
          r[i->dst_reg] &= (uint64_t)(int64_t)i->imm;
          break;
        case BPF_JMP | BPF_JEQ | BPF_K:
          assert_true (set[i->dst_reg]);
          if (r[i->dst_reg] == (uint64_t)(int64_t)i->imm)
            pc += i->off;
          break;
        case BPF_JMP | BPF_JNE | BPF_K:
          assert_true (set[i->dst_reg]);
          if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
            pc += i->off;
          break;
        case BPF_JMP | BPF_JA:
          pc += i->off;
          break;
        case BPF_JMP | BPF_EXIT:
          assert_true (set[0]);
          return (int)r[0];
        default:
          fail_msg ("unexpected opcode 0x%x at %zu", i->code, pc);
        }
      pc++;
    }
}

static void
assert_all_reachable (const struct bpf_insn *p, size_t n)
{
  bool *seen = calloc (n, 1);
  size_t *stack = calloc (n + 1, sizeof *stack), top = 0;
  stack[top++] = 0;
  while (top)
    {
      size_t pc = stack[--top];
      uint8_t c;
      if (pc >= n || seen[pc])
        continue;
      seen[pc] = true;
      c = p[pc].code;
      if (c == (BPF_JMP | BPF_EXIT))
        continue;
      if (BPF_CLASS (c) == BPF_JMP)
        {
          assert_true (pc + 1 + p[pc].off < n);
          stack[top++] = pc + 1 + p[pc].off;
          if (BPF_OP (c) == BPF_JA)
            continue;
        }
      stack[top++] = pc + 1;
    }
  for (size_t i = 0; i < n; i++)
    if (!seen[i])
      fail_msg ("instruction %zu is unreachable (the verifier rejects that)", i);
  free (seen);
  free (stack);
}

static oci_device_cgroup *
dev (bool allow, const char *type, int64_t maj, int64_t min, const char *access)
{
  oci_device_cgroup *d = xmalloc0 (sizeof *d);
  d->allow = allow;
  d->has_allow = true;
  d->type = type ? xstrdup (type) : NULL;
  d->has_major = d->has_minor = true;
  d->major = maj;
  d->minor = min;
  d->access = access ? xstrdup (access) : NULL;
  return d;
}

#define C BPF_DEVCG_DEV_CHAR
#define B BPF_DEVCG_DEV_BLOCK
#define RD BPF_DEVCG_ACC_READ
#define WR BPF_DEVCG_ACC_WRITE
#define MK BPF_DEVCG_ACC_MKNOD

static void
test_devices_bpf (void **state)
{
  oci_resources r = { 0 };
  struct bpf_insn *p = NULL;
  size_t n = 0;
  sbx_error *err = NULL;
  (void)state;

  /* deny all, allow c 1:3, allow b 8:* r, deny c 1:3 w, + the defaults */
  r.devices = xmalloc0 (5 * sizeof *r.devices);
  r.devices[r.devices_len++] = dev (false, NULL, -1, -1, "rwm");
  r.devices[r.devices_len++] = dev (true, "c", 1, 3, "rwm");
  r.devices[r.devices_len++] = dev (true, "b", 8, -1, "r");
  r.devices[r.devices_len++] = dev (false, "c", 1, 3, "w");
  assert_int_equal (sbx_cg_devices_compile (r.devices, r.devices_len, &p, &n, NULL), 0);
  assert_all_reachable (p, n);
  assert_int_equal (run_prog (p, n, C, RD, 1, 3), 1);
  assert_int_equal (run_prog (p, n, C, WR, 1, 3), 0);      /* last match wins */
  assert_int_equal (run_prog (p, n, C, RD | WR, 1, 3), 0); /* one bit denied: denied */
  assert_int_equal (run_prog (p, n, C, MK, 1, 3), 1);
  assert_int_equal (run_prog (p, n, B, RD, 8, 0), 1);
  assert_int_equal (run_prog (p, n, B, RD, 8, 17), 1);
  assert_int_equal (run_prog (p, n, B, WR, 8, 0), 0);
  assert_int_equal (run_prog (p, n, C, RD, 8, 0), 0); /* type matters */
  assert_int_equal (run_prog (p, n, C, RD, 1, 5), 0);
  free (p);

  /* the runtime's defaults come last and win */
  sbx_cgroup_add_default_devices (&r);
  assert_int_equal (r.devices_len, 14);
  assert_int_equal (sbx_cg_devices_compile (r.devices, r.devices_len, &p, &n, NULL), 0);
  assert_all_reachable (p, n);
  assert_int_equal (run_prog (p, n, C, RD | WR, 1, 3), 1);
  assert_int_equal (run_prog (p, n, C, RD | WR, 1, 5), 1);
  assert_int_equal (run_prog (p, n, C, RD | WR, 136, 4), 1);
  assert_int_equal (run_prog (p, n, B, MK, 8, 0), 1);
  assert_int_equal (run_prog (p, n, B, MK | WR, 8, 0), 0);
  assert_int_equal (run_prog (p, n, C, RD, 10, 200), 0);
  free (p);
  ocispec_free (&oci_resources_type, (oci_resources *)memcpy (xmalloc0 (sizeof r), &r, sizeof r));

  /* no deny-all: what no rule matches is allowed */
  {
    oci_device_cgroup *v[] = { dev (false, "c", 10, 200, "rw") };
    assert_int_equal (sbx_cg_devices_compile (v, 1, &p, &n, NULL), 0);
    assert_all_reachable (p, n);
    assert_int_equal (run_prog (p, n, C, RD, 10, 200), 0);
    assert_int_equal (run_prog (p, n, C, MK, 10, 200), 1);
    assert_int_equal (run_prog (p, n, C, RD | WR, 1, 3), 1);
    assert_int_equal (run_prog (p, n, B, RD, 10, 200), 1);
    free (p);
    ocispec_free (&oci_device_cgroup_type, v[0]);
  }
  /* an allow-all after denials makes them moot; a deny-all at the end
     denies everything (and nothing after a catch-all is emitted) */
  {
    oci_device_cgroup *v[]
        = { dev (false, "c", 1, 3, "rwm"), dev (true, "a", -1, -1, "r"), dev (false, "a", -1, -1, "rwm") };
    assert_int_equal (sbx_cg_devices_compile (v, 2, &p, &n, NULL), 0);
    assert_all_reachable (p, n);
    assert_int_equal (run_prog (p, n, C, RD | WR | MK, 1, 3), 1); /* type a: every access */
    free (p);
    assert_int_equal (sbx_cg_devices_compile (v, 3, &p, &n, NULL), 0);
    assert_all_reachable (p, n);
    assert_int_equal (run_prog (p, n, C, RD, 1, 3), 0);
    assert_int_equal (run_prog (p, n, B, MK, 7, 0), 0);
    free (p);
    for (size_t i = 0; i < 3; i++)
      ocispec_free (&oci_device_cgroup_type, v[i]);
  }
  /* validation: same messages as v1 */
  {
    oci_device_cgroup *v[] = { dev (true, "x", 1, 3, "r"), dev (true, "c", 1, 3, "rx"),
                               dev (true, "c", (int64_t)1 << 40, 3, "r") };
    assert_true (sbx_cg_devices_compile (v, 1, &p, &n, &err) < 0);
    assert_string_equal (err->msg, "linux.resources.devices[0].type: invalid `x`");
    sbx_error_free (err);
    err = NULL;
    assert_true (sbx_cg_devices_compile (v + 1, 1, &p, &n, NULL) < 0);
    assert_true (sbx_cg_devices_compile (v + 2, 1, &p, &n, NULL) < 0);
    for (size_t i = 0; i < 3; i++)
      ocispec_free (&oci_device_cgroup_type, v[i]);
  }
}

/* ------------------------------------------------------------- parsers */

/* linux.resources.devices -> DevicePolicy=/DeviceAllow=: a superset of the
   rules after the last deny-all, or "auto" for a block list.  */
static void
test_systemd_devices (void **state)
{
  static const char procdev[] = "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\n"
                                "Block devices:\n  8 sd\n254 virtblk\n";
  oci_device_cgroup *d[8];
  sbx_cg_sd_device *v = NULL;
  size_t n = 0;
  (void)state;

  d[0] = dev (true, "c", 1, 3, "rwm"); /* overridden by the deny-all after it */
  d[1] = dev (false, NULL, -1, -1, "rwm");
  d[2] = dev (true, "c", 1, 5, "r");
  d[3] = dev (true, "b", 254, -1, "r");
  d[4] = dev (true, "c", -1, -1, "m");
  d[5] = dev (true, "c", 1, 5, "mw");  /* merged with d[2] */
  d[6] = dev (true, "b", 99, -1, "w"); /* no name: the whole type */
  d[7] = dev (false, "c", 1, 5, "w");  /* narrows: ours enforces it */
  assert_true (sbx_cg_systemd_devices (d, 8, procdev, &v, &n));
  assert_int_equal (n, 4);
  assert_string_equal (v[0].path, "/dev/char/1:5");
  assert_string_equal (v[0].access, "rwm");
  assert_string_equal (v[1].path, "block-virtblk");
  assert_string_equal (v[1].access, "r");
  assert_string_equal (v[2].path, "char-*");
  assert_string_equal (v[2].access, "m");
  assert_string_equal (v[3].path, "block-*");
  assert_string_equal (v[3].access, "w");
  sbx_cg_sd_devices_free (v, n);

  /* deny-all alone: strict, nothing allowed */
  assert_true (sbx_cg_systemd_devices (&d[1], 1, procdev, &v, &n));
  assert_int_equal (n, 0);
  /* no deny-all (a block list), or an allow-all after it: auto */
  assert_false (sbx_cg_systemd_devices (&d[2], 6, procdev, &v, &n));
  {
    oci_device_cgroup *all[2] = { d[1], dev (true, "a", -1, -1, "rwm") };
    assert_false (sbx_cg_systemd_devices (all, 2, procdev, &v, &n));
    assert_null (v);
    ocispec_free (&oci_device_cgroup_type, all[1]);
  }
  for (size_t i = 0; i < 8; i++)
    ocispec_free (&oci_device_cgroup_type, d[i]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_devices_bpf),
    cmocka_unit_test (test_systemd_devices),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
