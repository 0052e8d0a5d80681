/* cgroup/v2.c - the unified hierarchy (Documentation/admin-guide/cgroup-v2.rst).
 *
 * Controllers are enabled in cgroup.subtree_control of the ancestors of the
 * container's cgroup, from the mount root down to its parent, and only those
 * the resources need.  The container's cgroup itself never enables
 * controllers for children: by the "no internal processes" rule that would
 * forbid processes in it.  linux.resources in v1 units are converted
 * (shares -> cpu.weight, memory+swap -> memory.swap.max, blkio weight ->
 * io.weight); what v2 cannot express is logged at debug level and skipped.
 * Device rules become an eBPF program attached to the cgroup
 * (cgroup/devices_bpf.c).
 *
 * Some pieces (enable, hugetlb, rdma, unified, freeze) also serve the unified
 * hierarchy of hybrid hosts, from cgroup/v1.c.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* ---------------------------------------------------------- conversions */

/* log2 and 10^x without libm (its shared object would cost every image of
   sbxrun a mapping, relocations and ~300 KB of resident pages for this one
   conversion): the mantissa's log by the atanh series, 10^x as 2^k e^r by
   Taylor, both to double precision over the ranges used here.  */
static double
log2_of (double x)
{
  union
  {
    double d;
    uint64_t u;
  } v = { .d = x };
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & ~(0x7ffULL << 52)) | (1023ULL << 52); /* mantissa in [1, 2) */
  double s = (v.d - 1) / (v.d + 1), s2 = s * s, t = s, sum = 0;
  for (int k = 1; k < 60; k += 2, t *= s2)
    sum += t / k;
  return e + 2 * sum / 0.69314718055994530942;
}

static double
exp10_of (double x)
{
  double y = x * 2.30258509299404568402, r, term = 1, sum = 1;
  int k = (int)(y / 0.69314718055994530942);
  r = y - k * 0.69314718055994530942;
  for (int n = 1; n < 30; n++)
    term *= r / n, sum += term;
  for (; k > 0; k--)
    sum *= 2;
  return sum;
}

uint64_t
sbx_cg_shares_to_weight (uint64_t shares)
{
  /* The log-quadratic mapping adopted in 2025 by the OCI ecosystem (crun
     1.23, runc 1.3.2 / opencontainers/cgroups, Kubernetes): with
     L = log2(shares), weight = ceil(10^((L^2 + 125 L) / 612 - 7/34)).
     It maps the ends of the ranges onto each other (2 -> 1, 262144 ->
     10000) and, unlike the old linear 1 + (shares-2)*9999/262142, the v1
     default onto the v2 default (1024 -> 100).  */
  double l, e, w, r;

  if (shares == 0)
    return 0;
  if (shares <= 2)
    return 1;
  if (shares >= 262144)
    return 10000;
  l = log2_of ((double)shares);
  e = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0; /* > 0 from shares 3 on */
  w = exp10_of (e);
  r = (double)(uint64_t)(w + 0.5);
  /* exact powers of ten (1024 -> 100) must not be pushed up by rounding noise */
  if (fabs (w - r) < 1e-9 * w)
    w = r;
  else /* ceil (w) for 0 < w < 2^63, without libm (at -Os or -O0 gcc calls it) */
    w = (double)(uint64_t)w < w ? (double)((uint64_t)w + 1) : w;
  if (w < 1)
    return 1;
  if (w > 10000)
    return 10000;
  return (uint64_t)w;
}

uint64_t
sbx_cg_blkio_to_io_weight (uint64_t weight)
{
  /* linear [10, 1000] -> [1, 10000], as used by runc and crun */
  if (weight == 0)
    return 0;
  if (weight < 10)
    weight = 10;
  if (weight > 1000)
    weight = 1000;
  return 1 + (weight - 10) * 9999 / 990;
}

int
sbx_cg_swap_v2 (const oci_memory *m, int64_t *out, sbx_error **err)
{
  bool no_limit;

  if (m == NULL || !m->has_swap || m->swap == 0)
    return 0; /* 0: unset, as in the Go runtimes */
  if (m->swap == -1)
    {
      *out = -1;
      return 1;
    }
  if (m->swap < -1)
    return sbx_error_set (err, EINVAL, "linux.resources.memory.swap: invalid value %lld", (long long)m->swap);
  no_limit = !m->has_limit || m->limit <= 0;
  if (no_limit)
    return sbx_error_set (
        err, EINVAL,
        "linux.resources.memory.swap: %lld (memory+swap) needs linux.resources.memory.limit "
        "on cgroup v2, where memory.swap.max = swap - limit",
        (long long)m->swap);
  if (m->swap < m->limit)
    return sbx_error_set (err, EINVAL,
                          "linux.resources.memory.swap: %lld (memory+swap) is below "
                          "linux.resources.memory.limit %lld",
                          (long long)m->swap, (long long)m->limit);
  *out = m->swap - m->limit;
  return 1;
}

int
sbx_cg_check_unified_key (const char *key, sbx_error **err)
{
  static const char *const forbidden[] = { "cgroup.procs", "cgroup.threads", "cgroup.subtree_control", NULL };

  if (key == NULL || *key == '\0' || strchr (key, '/') || strstr (key, "..") || strpbrk (key, "\t\n")
      || strchr (key, '.') == NULL || key[0] == '.')
    return sbx_error_set (err, EINVAL, "linux.resources.unified: invalid key `%s`", key ? key : "");
  for (size_t i = 0; forbidden[i]; i++)
    if (strcmp (key, forbidden[i]) == 0)
      return sbx_error_set (err, EINVAL, "linux.resources.unified.%s: the runtime manages this file", key);
  return 0;
}

bool
sbx_cg_valid_page_size (const char *s)
{
  size_t d = strspn (s, "0123456789");
  return d > 0 && (strcmp (s + d, "KB") == 0 || strcmp (s + d, "MB") == 0 || strcmp (s + d, "GB") == 0);
}

/* --------------------------------------------------------- controllers */

bool
sbx_cg_v2_available (sbx_cg_hier *h, const char *controller)
{
  cleanup_free char *avail = NULL;
  if (sbx_cg_read (h, "cgroup.controllers", &avail, NULL) < 0)
    return false;
  return sbx_cg_has_word (avail, controller);
}

static int
enable_in (const char *dir, const char *const *ctrls, sbx_error **err)
{
  cleanup_close int fd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *on = NULL, *avail = NULL;
  bool checked = false;

  if (fd < 0)
    return sbx_error_sys (err, "open cgroup `%s`", dir);
  if (sbx_cg_read_at (fd, "cgroup.subtree_control", &on, err) < 0
      || sbx_cg_read_at (fd, "cgroup.controllers", &avail, err) < 0)
    return sbx_error_wrap (err, "cgroup `%s`", dir);
  for (size_t i = 0; ctrls[i]; i++)
    {
      cleanup_close int wfd = -1;
      cleanup_free char *cmd = NULL;
      if (sbx_cg_has_word (on, ctrls[i]) || !sbx_cg_has_word (avail, ctrls[i]))
        continue; /* already on, or not offered here (the caller checks) */
      if (!checked)
        {
          /* The kernel refuses domain controllers (EBUSY) in a non-root
             cgroup with processes, but accepts threaded ones (cpu, cpuset,
             pids), which silently makes it a thread root and its domain
             children invalid.  So never enable anything there.  The root
             (the only cgroup without cgroup.type) is exempt.  */
          cleanup_free char *procs = NULL;
          checked = true;
          if (faccessat (fd, "cgroup.type", F_OK, 0) == 0
              && sbx_cg_read_at (fd, "cgroup.procs", &procs, NULL) == 0 && *procs)
            return sbx_error_set (err, EBUSY,
                                  "enable the %s controller in `%s/cgroup.subtree_control`: that cgroup has "
                                  "processes of its own (cgroup v2 allows controllers for children only in "
                                  "cgroups without processes)",
                                  ctrls[i], dir);
        }
      cmd = xasprintf ("+%s", ctrls[i]);
      wfd = openat (fd, "cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
      if (wfd < 0 || write (wfd, cmd, strlen (cmd)) < 0)
        {
          int e = errno;
          return sbx_error_set (err, e, "enable the %s controller in `%s/cgroup.subtree_control`%s", ctrls[i],
                                dir,
                                e == EBUSY ? " (that cgroup has processes of its own: cgroup v2 allows "
                                             "controllers for children only in cgroups without processes)"
                                           : "");
        }
      sbx_debug ("cgroup: enabled %s in %s", ctrls[i], dir);
    }
  return 0;
}

int
sbx_cg_v2_enable (sbx_cg_hier *h, const char *const *ctrls, sbx_error **err)
{
  size_t ml = strlen (h->mountpoint);
  cleanup_free char *cur = NULL;
  char *p;

  if (ctrls == NULL || ctrls[0] == NULL)
    return 0;
  if (strncmp (h->dir, h->mountpoint, ml) != 0)
    return sbx_error_set (err, EINVAL, "cgroup `%s` is not below `%s`", h->dir, h->mountpoint);
  cur = xstrdup (h->dir);
  /* cur[0, p) is the ancestor being handled; stop before the cgroup itself */
  for (p = cur + ml; *p == '/'; p = strchr (p + 1, '/'))
    {
      char saved = *p;
      *p = '\0';
      if (enable_in (cur, ctrls, err) < 0)
        return -1;
      *p = saved;
      if (strchr (p + 1, '/') == NULL)
        break;
    }
  return 0;
}

/* ------------------------------------------------------------ resources */

typedef struct
{
  const char *names[16];
  const char *fields[16];
  size_t n;
} needs;

static void
need (needs *nd, const char *ctrl, const char *field)
{
  for (size_t i = 0; i < nd->n; i++)
    if (strcmp (nd->names[i], ctrl) == 0)
      return;
  if (nd->n + 1 < sizeof nd->names / sizeof nd->names[0])
    {
      nd->fields[nd->n] = field;
      nd->names[nd->n++] = ctrl;
      nd->names[nd->n] = NULL;
    }
}

/* Controller of a unified key ("memory.high" -> "memory") copied into buf,
   or NULL for the core "cgroup.*" files.  */
static const char *
key_controller (const char *key, char *buf, size_t len)
{
  size_t l = strcspn (key, ".");
  if (l == 0 || l >= len || (l == 6 && strncmp (key, "cgroup", 6) == 0))
    return NULL;
  memcpy (buf, key, l);
  buf[l] = '\0';
  return buf;
}

static int
check_available (sbx_cg_hier *h, const needs *nd, sbx_error **err)
{
  cleanup_free char *avail = NULL;
  if (nd->n == 0)
    return 0;
  if (sbx_cg_read (h, "cgroup.controllers", &avail, err) < 0)
    return -1;
  for (size_t i = 0; i < nd->n; i++)
    if (!sbx_cg_has_word (avail, nd->names[i]))
      return sbx_error_set (err, EOPNOTSUPP,
                            "linux.resources.%s: the %s controller is not available in cgroup `%s`",
                            nd->fields[i], nd->names[i], h->path);
  return 0;
}

static int
apply_memory (sbx_cg_hier *h, const oci_memory *m, sbx_error **err)
{
  int64_t swap = 0;
  int r;

  /* v1 refuses a limit below the usage by itself; v2 would OOM-kill.  */
  if (m->has_check_before_update && m->check_before_update && m->has_limit && m->limit >= 0)
    {
      cleanup_free char *cur = NULL;
      long long used;
      if (sbx_cg_read (h, "memory.current", &cur, err) < 0)
        return sbx_error_wrap (err, "linux.resources.memory.checkBeforeUpdate");
      cur[strcspn (cur, "\n")] = '\0';
      if (sbx_parse_int64 (cur, &used) == 0 && used > m->limit)
        return sbx_error_set (err, EBUSY,
                              "linux.resources.memory.limit: %" PRId64 " is below the current usage %lld "
                              "(checkBeforeUpdate)",
                              m->limit, used);
    }
  if (m->has_limit
      && (m->limit < 0 ? sbx_cg_write (h, "memory.max", "max", "memory.limit", err)
                       : sbx_cg_writef (h, "memory.max", "memory.limit", err, "%" PRId64, m->limit))
             < 0)
    return -1;
  if (m->has_reservation
      && (m->reservation < 0
              ? sbx_cg_write (h, "memory.low", "max", "memory.reservation", err)
              : sbx_cg_writef (h, "memory.low", "memory.reservation", err, "%" PRId64, m->reservation))
             < 0)
    return -1;
  r = sbx_cg_swap_v2 (m, &swap, err);
  if (r < 0)
    return -1;
  if (r > 0)
    {
      if (!sbx_cg_exists (h, "memory.swap.max"))
        {
          if (swap != -1)
            return sbx_error_set (err, EOPNOTSUPP,
                                  "linux.resources.memory.swap: no memory.swap.max (swap accounting is off)");
        }
      else if ((swap < 0 ? sbx_cg_write (h, "memory.swap.max", "max", "memory.swap", err)
                         : sbx_cg_writef (h, "memory.swap.max", "memory.swap", err, "%" PRId64, swap))
               < 0)
        return -1;
    }
  /* v1-only knobs were refused already (refuse_v1_only).  */
  return 0;
}

static int
apply_cpu (sbx_cg_hier *h, const oci_cpu *c, sbx_error **err)
{
  if (c->has_shares && c->shares)
    {
      if (c->shares < 2 || c->shares > 262144)
        return sbx_error_set (err, EINVAL, "linux.resources.cpu.shares: %" PRIu64 " is outside [2, 262144]",
                              c->shares);
      if (sbx_cg_writef (h, "cpu.weight", "cpu.shares", err, "%" PRIu64, sbx_cg_shares_to_weight (c->shares))
          < 0)
        return -1;
    }
  if (c->has_quota || (c->has_period && c->period))
    {
      cleanup_free char *cur = NULL, *quota = NULL;
      const char *field = c->has_quota ? "cpu.quota" : "cpu.period";
      if (c->has_quota)
        quota = c->quota < 0 ? xstrdup ("max") : xasprintf ("%" PRId64, c->quota);
      else
        {
          /* keep the current quota: "$MAX $PERIOD" */
          if (sbx_cg_read (h, "cpu.max", &cur, err) < 0)
            return -1;
          quota = xasprintf ("%.*s", (int)strcspn (cur, " "), cur);
        }
      if ((c->has_period && c->period
               ? sbx_cg_writef (h, "cpu.max", field, err, "%s %" PRIu64, quota, c->period)
               : sbx_cg_write (h, "cpu.max", quota, field, err))
          < 0)
        return -1;
    }
  if (c->has_burst && sbx_cg_writef (h, "cpu.max.burst", "cpu.burst", err, "%" PRIu64, c->burst) < 0)
    return -1;
  if (c->has_idle && sbx_cg_writef (h, "cpu.idle", "cpu.idle", err, "%" PRId64, c->idle) < 0)
    return -1;
  if ((c->has_realtime_runtime && c->realtime_runtime) || (c->has_realtime_period && c->realtime_period))
    return sbx_error_set (err, EOPNOTSUPP,
                          "linux.resources.cpu.realtimeRuntime/realtimePeriod: not supported on cgroup v2");
  if (c->cpus && *c->cpus && sbx_cg_write (h, "cpuset.cpus", c->cpus, "cpu.cpus", err) < 0)
    return -1;
  if (c->mems && *c->mems && sbx_cg_write (h, "cpuset.mems", c->mems, "cpu.mems", err) < 0)
    return -1;
  return 0;
}

static int
apply_io (sbx_cg_hier *h, const oci_blkio *b, sbx_error **err)
{
  /* BFQ keeps the v1 range [1, 1000] in io.bfq.weight; io.weight is [1, 10000] */
  bool bfq = sbx_cg_exists (h, "io.bfq.weight");
  const char *wfile = bfq ? "io.bfq.weight" : "io.weight";

  if (b->has_weight && b->weight
      && sbx_cg_writef (h, wfile, "blockIO.weight", err, "default %" PRIu64,
                        bfq ? (uint64_t)b->weight : sbx_cg_blkio_to_io_weight (b->weight))
             < 0)
    return -1;
  for (size_t i = 0; i < b->weight_device_len; i++)
    {
      const oci_blkio_weight_device *d = b->weight_device[i];
      if (d->has_weight
          && sbx_cg_writef (h, wfile, "blockIO.weightDevice", err, "%" PRId64 ":%" PRId64 " %" PRIu64,
                            d->major, d->minor,
                            bfq ? (uint64_t)d->weight : sbx_cg_blkio_to_io_weight (d->weight))
                 < 0)
        return -1;
    }
  for (size_t t = 0; t < SBX_CG_THROTTLE_KINDS; t++)
    {
      const sbx_cg_throttle_kind *k = &sbx_cg_throttles[t];
      size_t len;
      oci_blkio_throttle *const *arr = sbx_cg_throttle_list (b, t, &len);
      for (size_t i = 0; i < len; i++)
        {
          const oci_blkio_throttle *d = arr[i];
          int r = d->rate ? sbx_cg_writef (h, "io.max", k->field, err, "%" PRId64 ":%" PRId64 " %s=%" PRIu64,
                                           d->major, d->minor, k->v2_key, d->rate)
                          : sbx_cg_writef (h, "io.max", k->field, err, "%" PRId64 ":%" PRId64 " %s=max",
                                           d->major, d->minor, k->v2_key);
          if (r < 0)
            return -1;
        }
    }
  return 0;
}

int
sbx_cg_v2_apply_hugetlb (sbx_cg_hier *h, const oci_resources *r, sbx_error **err)
{
  static const char *const ctrl[] = { "hugetlb", NULL };

  if (r->hugepage_limits_len == 0)
    return 0;
  if (sbx_cg_v2_enable (h, ctrl, err) < 0)
    return sbx_error_wrap (err, "linux.resources.hugepageLimits");
  return sbx_cg_hugetlb_write (h, r, "max", err);
}

int
sbx_cg_hugetlb_write (sbx_cg_hier *h, const oci_resources *r, const char *limit_file, sbx_error **err)
{
  for (size_t i = 0; i < r->hugepage_limits_len; i++)
    {
      const oci_hugepage_limit *l = r->hugepage_limits[i];
      cleanup_free char *file = NULL, *rsvd = NULL, *field = NULL;
      if (l->page_size == NULL || !sbx_cg_valid_page_size (l->page_size))
        return sbx_error_set (err, EINVAL, "linux.resources.hugepageLimits[%zu].pageSize: invalid `%s`", i,
                              l->page_size ? l->page_size : "");
      file = xasprintf ("hugetlb.%s.%s", l->page_size, limit_file);
      rsvd = xasprintf ("hugetlb.%s.rsvd.%s", l->page_size, limit_file);
      field = xasprintf ("hugepageLimits[%zu].limit", i);
      if (!sbx_cg_exists (h, file))
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.hugepageLimits[%zu].pageSize: page size `%s` not supported "
                              "here (no %s)",
                              i, l->page_size, file);
      if (sbx_cg_writef (h, file, field, err, "%" PRIu64, l->limit) < 0)
        return -1;
      if (sbx_cg_exists (h, rsvd) && sbx_cg_writef (h, rsvd, field, err, "%" PRIu64, l->limit) < 0)
        return -1;
    }
  return 0;
}

int
sbx_cg_rdma_write (sbx_cg_hier *h, const oci_resources *r, sbx_error **err)
{
  for (size_t i = 0; i < r->rdma_len; i++)
    {
      const oci_rdma *d = r->rdma_values[i];
      cleanup_free char *line = NULL, *field = NULL;
      char h1[40] = "", h2[40] = "";
      if (strpbrk (r->rdma_keys[i], " \t\n=") || *r->rdma_keys[i] == '\0')
        return sbx_error_set (err, EINVAL, "linux.resources.rdma: invalid device name `%s`", r->rdma_keys[i]);
      if (d->has_hca_handles)
        snprintf (h1, sizeof h1, " hca_handle=%" PRIu32, d->hca_handles);
      if (d->has_hca_objects)
        snprintf (h2, sizeof h2, " hca_object=%" PRIu32, d->hca_objects);
      if (!*h1 && !*h2)
        continue;
      line = xasprintf ("%s%s%s", r->rdma_keys[i], h1, h2);
      field = xasprintf ("rdma.%s", r->rdma_keys[i]);
      if (sbx_cg_write (h, "rdma.max", line, field, err) < 0)
        return -1;
    }
  return 0;
}

int
sbx_cg_v2_apply_rdma (sbx_cg_hier *h, const oci_resources *r, sbx_error **err)
{
  static const char *const ctrl[] = { "rdma", NULL };

  if (r->rdma_len == 0)
    return 0;
  if (sbx_cg_v2_enable (h, ctrl, err) < 0)
    return sbx_error_wrap (err, "linux.resources.rdma");
  return sbx_cg_rdma_write (h, r, err);
}

int
sbx_cg_v2_apply_unified (sbx_cg_hier *h, const oci_resources *r, bool hybrid, sbx_error **err)
{
  /* validate every key before writing any */
  for (size_t i = 0; i < r->unified_len; i++)
    {
      char buf[64];
      if (sbx_cg_check_unified_key (r->unified_keys[i], err) < 0)
        return -1;
      if (hybrid && key_controller (r->unified_keys[i], buf, sizeof buf) == NULL)
        return sbx_error_set (
            err, EOPNOTSUPP,
            "linux.resources.unified.%s: this host uses cgroup v1; only files of controllers "
            "in its unified hierarchy can be set",
            r->unified_keys[i]);
    }
  for (size_t i = 0; i < r->unified_len; i++)
    {
      const char *key = r->unified_keys[i];
      char buf[64];
      const char *c = key_controller (key, buf, sizeof buf);
      cleanup_free char *field = xasprintf ("unified.%s", key);
      if (c)
        {
          const char *one[] = { c, NULL };
          if (!sbx_cg_v2_available (h, c) && sbx_cg_v2_enable (h, one, err) < 0)
            return sbx_error_wrap (err, "linux.resources.unified.%s", key);
          if (!sbx_cg_v2_available (h, c))
            return sbx_error_set (
                err, EOPNOTSUPP,
                "linux.resources.unified.%s: the %s controller is not available in cgroup `%s`", key, c,
                h->path);
        }
      if (!sbx_cg_exists (h, key))
        return sbx_error_set (err, ENOENT, "linux.resources.unified.%s: no such file in cgroup `%s`", key,
                              h->path);
      if (sbx_cg_write (h, key, r->unified_values[i] ? r->unified_values[i] : "", field, err) < 0)
        return -1;
    }
  return 0;
}

/* Knobs of v1 controllers that v2 does not have: refused, never dropped.
   Values that ask for nothing (false, 0) pass.  */
static int
refuse_v1_only (const oci_resources *r, sbx_error **err)
{
  const oci_memory *m = r->memory;
  const oci_blkio *b = r->block_io;
  const char *what = NULL;
  if (m && m->has_swappiness)
    what = "memory.swappiness";
  else if (m && m->has_disable_oom_killer && m->disable_oom_killer)
    what = "memory.disableOOMKiller";
  else if (m && m->has_kernel_tcp && m->kernel_tcp)
    what = "memory.kernelTCP";
  else if (b && b->has_leaf_weight)
    what = "blockIO.leafWeight";
  else if (r->network && (r->network->has_class_id || r->network->priorities_len))
    what = "network";
  for (size_t i = 0; what == NULL && b && i < b->weight_device_len; i++)
    if (b->weight_device[i]->has_leaf_weight)
      what = "blockIO.weightDevice[].leafWeight";
  if (what)
    return sbx_error_set (err, EOPNOTSUPP, "linux.resources.%s: cgroup v1 only, this host uses cgroup v2",
                          what);
  return 0;
}

static int
v2_apply (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  sbx_cg_hier *h = &cg->h[0];
  needs nd = { .n = 0 };
  const oci_memory *m = r->memory;
  const oci_cpu *c = r->cpu;

  if (refuse_v1_only (r, err) < 0)
    return -1;
  if (m && (m->has_limit || m->has_reservation || (m->has_swap && m->swap)))
    need (&nd, "memory", "memory");
  if (c && ((c->has_shares && c->shares) || c->has_quota || c->has_period || c->has_burst || c->has_idle))
    need (&nd, "cpu", "cpu");
  if (c && ((c->cpus && *c->cpus) || (c->mems && *c->mems)))
    need (&nd, "cpuset", "cpu.cpus");
  if (r->pids)
    need (&nd, "pids", "pids");
  if (r->block_io)
    need (&nd, "io", "blockIO");
  if (r->hugepage_limits_len)
    need (&nd, "hugetlb", "hugepageLimits");
  if (r->rdma_len)
    need (&nd, "rdma", "rdma");
  if (sbx_cg_v2_enable (h, nd.names, err) < 0)
    return sbx_error_wrap (err, "linux.resources");
  if (check_available (h, &nd, err) < 0)
    return -1;

  if (r->devices_len)
    {
      sbx_error *e = NULL;
      if (sbx_cg_devices_attach (h, r->devices, r->devices_len, &e) < 0)
        {
          /* without privileges (rootless) device programs cannot be
             loaded; like runc and crun, go on without them */
          if (e->errno_ != EPERM || geteuid () == 0)
            {
              int st = sbx_error_status (e);
              if (err)
                {
                  sbx_error_free (*err);
                  *err = e;
                }
              else
                sbx_error_free (e);
              return st;
            }
          sbx_warn ("%s: device rules NOT enforced", e->msg);
          sbx_error_free (e);
        }
    }
  if (m && apply_memory (h, m, err) < 0)
    return -1;
  if (c && apply_cpu (h, c, err) < 0)
    return -1;
  if (r->pids
      && (r->pids->limit > 0 ? sbx_cg_writef (h, "pids.max", "pids.limit", err, "%" PRId64, r->pids->limit)
                             : sbx_cg_write (h, "pids.max", "max", "pids.limit", err))
             < 0)
    return -1;
  if (r->block_io && apply_io (h, r->block_io, err) < 0)
    return -1;
  if (sbx_cg_v2_apply_hugetlb (h, r, err) < 0 || sbx_cg_v2_apply_rdma (h, r, err) < 0)
    return -1;
  /* last, so that raw values override the converted ones */
  if (r->unified_len && sbx_cg_v2_apply_unified (h, r, false, err) < 0)
    return -1;
  return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int
v2_create (sbx_cgroup *cg, sbx_error **err)
{
  if (sbx_cg_mkdir (&cg->h[0], NULL, err) < 0)
    {
      sbx_cg_undo_create (cg);
      return -1;
    }
  return 0;
}

static int
v2_enter (sbx_cgroup *cg, pid_t pid, sbx_error **err)
{
  return sbx_cg_writef (&cg->h[0], "cgroup.procs", NULL, err, "%d", (int)pid);
}

static int
wait_populated_empty (sbx_cg_hier *h, sbx_error **err)
{
  long long deadline = sbx_now_ms () + SBX_CG_KILL_TIMEOUT_MS;
  for (int ms = 1;; ms = ms < 32 ? ms * 2 : ms)
    {
      long long populated = 0;
      sbx_error *e = NULL;
      if (sbx_cg_read_keyed (h, "cgroup.events", "populated", &populated, &e) < 0)
        {
          /* removed once empty (systemd does that to a scope): empty */
          if (e->errno_ == ENOENT || e->errno_ == ENODEV)
            {
              sbx_error_free (e);
              return 0;
            }
          *err = e;
          return -1;
        }
      if (populated == 0)
        return 0;
      if (sbx_now_ms () > deadline)
        return sbx_error_set (err, EBUSY, "cgroup `%s` still has processes after SIGKILL", h->path);
      sbx_cg_sleep_ms (ms);
    }
}

static int
v2_kill (sbx_cgroup *cg, int signo, sbx_error **err)
{
  sbx_cg_hier *h = &cg->h[0];
  long long deadline;
  size_t seen = 0;

  if (h->fd < 0 && access (h->dir, F_OK) < 0)
    return 0; /* gone */
  if (signo == SIGKILL && sbx_cg_exists (h, "cgroup.kill"))
    {
      if (sbx_cg_write (h, "cgroup.kill", "1", NULL, err) < 0)
        return -1;
      return wait_populated_empty (h, err);
    }
  if (signo != SIGKILL)
    return sbx_cg_signal_all (cg, signo, &seen, err);
  /* kernels before 5.14: SIGKILL every process until none is left */
  deadline = sbx_now_ms () + SBX_CG_KILL_TIMEOUT_MS;
  for (;;)
    {
      if (sbx_cg_signal_all (cg, SIGKILL, &seen, err) < 0)
        return -1;
      if (seen == 0)
        return 0;
      if (sbx_now_ms () > deadline)
        return sbx_error_set (err, EBUSY, "cgroup `%s` still has processes after SIGKILL", h->path);
      sbx_cg_sleep_ms (10);
    }
}

bool
sbx_cg_v2_is_frozen_hier (sbx_cg_hier *h)
{
  long long v = 0;
  if (h->fd < 0 && access (h->dir, F_OK) < 0)
    return false;
  return sbx_cg_read_keyed (h, "cgroup.events", "frozen", &v, NULL) == 0 && v == 1;
}

int
sbx_cg_v2_freeze_hier (sbx_cg_hier *h, bool frozen, sbx_error **err)
{
  long long deadline = sbx_now_ms () + SBX_CG_FREEZE_TIMEOUT_MS;

  if (!sbx_cg_exists (h, "cgroup.freeze"))
    return sbx_error_set (err, EOPNOTSUPP, "cgroup `%s`: no cgroup.freeze (kernel older than 5.2?)", h->path);
  if (sbx_cg_write (h, "cgroup.freeze", frozen ? "1" : "0", NULL, err) < 0)
    return -1;
  for (int ms = 1;; ms = ms < 32 ? ms * 2 : ms)
    {
      long long v = -1;
      if (sbx_cg_read_keyed (h, "cgroup.events", "frozen", &v, err) < 0)
        return -1;
      if ((v == 1) == frozen)
        return 0;
      if (sbx_now_ms () > deadline)
        {
          if (frozen)
            sbx_cg_write (h, "cgroup.freeze", "0", NULL, NULL);
          return sbx_error_set (err, ETIMEDOUT, "cgroup `%s`: timed out waiting for `frozen %d`", h->path,
                                frozen ? 1 : 0);
        }
      sbx_cg_sleep_ms (ms);
    }
}

static int
v2_freeze (sbx_cgroup *cg, bool frozen, sbx_error **err)
{
  return sbx_cg_v2_freeze_hier (&cg->h[0], frozen, err);
}

static bool
v2_is_frozen (sbx_cgroup *cg)
{
  return sbx_cg_v2_is_frozen_hier (&cg->h[0]);
}

/* ---------------------------------------------------------------- stats */

bool
sbx_cg_read_u64 (sbx_cg_hier *h, const char *file, uint64_t *out)
{
  cleanup_free char *s = NULL;
  long long v;
  if (sbx_cg_read (h, file, &s, NULL) < 0)
    return false;
  if (strcmp (s, "max") == 0)
    {
      *out = 0;
      return true;
    }
  if (sbx_parse_int64 (s, &v) < 0 || v < 0)
    return false;
  *out = (uint64_t)v;
  return true;
}

uint64_t
sbx_cg_keyed_u64 (sbx_cg_hier *h, const char *file, const char *key)
{
  long long v = 0;
  if (sbx_cg_read_keyed (h, file, key, &v, NULL) < 0 || v < 0)
    return 0;
  return (uint64_t)v;
}

/* io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" */
static void
io_stat (sbx_cg_hier *h, sbx_cgroup_stats *st)
{
  static const struct
  {
    const char *key, *op;
    bool bytes;
  } keys[] = { { "rbytes", "Read", true }, { "wbytes", "Write", true }, { "dbytes", "Discard", true },
               { "rios", "Read", false },  { "wios", "Write", false },  { "dios", "Discard", false } };
  cleanup_free char *text = NULL;
  char *save = NULL;

  if (sbx_cg_read (h, "io.stat", &text, NULL) < 0)
    return;
  st->has_blkio = true;
  for (char *l = strtok_r (text, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      unsigned long long maj, min;
      int off = 0;
      if (sscanf (l, "%llu:%llu%n", &maj, &min, &off) != 2)
        continue;
      for (char *f = l + off; *f;)
        {
          size_t len;
          char *eq;
          f += strspn (f, " ");
          len = strcspn (f, " ");
          eq = memchr (f, '=', len);
          if (eq)
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
              if ((size_t)(eq - f) == strlen (keys[k].key) && strncmp (f, keys[k].key, eq - f) == 0)
                {
                  uint64_t v = strtoull (eq + 1, NULL, 10);
                  if (keys[k].bytes)
                    sbx_cg_blkio_add (&st->blkio_bytes, &st->blkio_bytes_len, maj, min, keys[k].op, v);
                  else
                    sbx_cg_blkio_add (&st->blkio_ios, &st->blkio_ios_len, maj, min, keys[k].op, v);
                }
          f += len;
        }
    }
}

void
sbx_cg_v2_hugetlb_stats (sbx_cg_hier *h, sbx_cgroup_stats *st)
{
  cleanup_strv char **sizes = sbx_cg_hugepage_sizes ();
  for (size_t i = 0; sizes[i]; i++)
    {
      cleanup_free char *cur = xasprintf ("hugetlb.%s.current", sizes[i]);
      cleanup_free char *ev = xasprintf ("hugetlb.%s.events", sizes[i]);
      uint64_t usage = 0;
      if (sbx_cg_read_u64 (h, cur, &usage))
        sbx_cg_hugetlb_add (st, sizes[i], usage, 0, sbx_cg_keyed_u64 (h, ev, "max"));
    }
}

static int
v2_stats (sbx_cgroup *cg, sbx_cgroup_stats *st, sbx_error **err)
{
  sbx_cg_hier *h = &cg->h[0];

  if (sbx_cg_open (h, err) < 0)
    return -1;
  if (sbx_cg_exists (h, "cpu.stat"))
    {
      st->has_cpu = true;
      st->cpu_usage_ns = sbx_cg_keyed_u64 (h, "cpu.stat", "usage_usec") * 1000;
      st->cpu_user_ns = sbx_cg_keyed_u64 (h, "cpu.stat", "user_usec") * 1000;
      st->cpu_system_ns = sbx_cg_keyed_u64 (h, "cpu.stat", "system_usec") * 1000;
      st->cpu_nr_periods = sbx_cg_keyed_u64 (h, "cpu.stat", "nr_periods");
      st->cpu_nr_throttled = sbx_cg_keyed_u64 (h, "cpu.stat", "nr_throttled");
      st->cpu_throttled_ns = sbx_cg_keyed_u64 (h, "cpu.stat", "throttled_usec") * 1000;
    }
  if (sbx_cg_read_u64 (h, "memory.current", &st->memory_usage))
    {
      st->has_memory = true;
      sbx_cg_read_u64 (h, "memory.peak", &st->memory_max_usage);
      sbx_cg_read_u64 (h, "memory.max", &st->memory_limit);
      sbx_cg_read_u64 (h, "memory.swap.current", &st->memory_swap_usage);
      sbx_cg_read_u64 (h, "memory.swap.max", &st->memory_swap_limit);
      st->memory_failcnt = sbx_cg_keyed_u64 (h, "memory.events", "max");
      st->memory_oom = sbx_cg_keyed_u64 (h, "memory.events", "oom");
      st->memory_oom_kill = sbx_cg_keyed_u64 (h, "memory.events", "oom_kill");
      if (sbx_cg_read_stat_map (h, "memory.stat", st))
        {
          st->memory_cache = sbx_cg_stat_value (st, "file");
          st->memory_kernel_usage = sbx_cg_stat_value (st, "kernel");
        }
    }
  if (sbx_cg_read_u64 (h, "pids.current", &st->pids_current))
    {
      st->has_pids = true;
      sbx_cg_read_u64 (h, "pids.max", &st->pids_limit);
    }
  io_stat (h, st);
  sbx_cg_v2_hugetlb_stats (h, st);
  return 0;
}

const sbx_cg_ops sbx_cg_v2_ops = {
  .create = v2_create,
  .apply = v2_apply,
  .enter = v2_enter,
  .kill = v2_kill,
  .freeze = v2_freeze,
  .is_frozen = v2_is_frozen,
  .stats = v2_stats,
};
