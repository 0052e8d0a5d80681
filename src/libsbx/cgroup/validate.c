/* cgroup/validate.c - linux.resources checked against the spec's meaning and
 * the kernel's accepted ranges before anything is created (see cgroup.h).
 *
 * What the kernel would refuse is caught anyway when the files are written;
 * what matters here is what it would take and silently change: a negative
 * limit other than -1 written as "max", cpu.shares clamped to [2, 262144] by
 * v1 (and mapped out of cpu.weight's range on v2), a negative CFS quota that
 * v1 reads as "unlimited", a hugetlb limit rounded down to whole pages.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* v1 cpu.shares (kernel MIN_SHARES..MAX_SHARES), mapped onto cpu.weight on v2 */
#define SHARES_MIN 2
#define SHARES_MAX 262144
/* CFS bandwidth (kernel/sched/core.c): period 1 ms..1 s, quota >= 1 ms and
   below 2^44 us (max_cfs_runtime) */
#define CFS_PERIOD_MIN 1000
#define CFS_PERIOD_MAX 1000000
#define CFS_QUOTA_MIN 1000
#define CFS_QUOTA_MAX ((INT64_C (1) << 44) - 1)
/* blkio.weight / io.bfq.weight; io.weight gets them mapped */
#define BLKIO_WEIGHT_MIN 10
#define BLKIO_WEIGHT_MAX 1000

const sbx_cg_throttle_kind sbx_cg_throttles[SBX_CG_THROTTLE_KINDS] = {
  { offsetof (oci_blkio, throttle_read_bps_device), offsetof (oci_blkio, throttle_read_bps_device_len),
    "blkio.throttle.read_bps_device", "rbps", "blockIO.throttleReadBpsDevice" },
  { offsetof (oci_blkio, throttle_write_bps_device), offsetof (oci_blkio, throttle_write_bps_device_len),
    "blkio.throttle.write_bps_device", "wbps", "blockIO.throttleWriteBpsDevice" },
  { offsetof (oci_blkio, throttle_read_iops_device), offsetof (oci_blkio, throttle_read_iops_device_len),
    "blkio.throttle.read_iops_device", "riops", "blockIO.throttleReadIOPSDevice" },
  { offsetof (oci_blkio, throttle_write_iops_device), offsetof (oci_blkio, throttle_write_iops_device_len),
    "blkio.throttle.write_iops_device", "wiops", "blockIO.throttleWriteIOPSDevice" },
};

oci_blkio_throttle *const *
sbx_cg_throttle_list (const oci_blkio *b, size_t t, size_t *len)
{
  *len = *(const size_t *)((const char *)b + sbx_cg_throttles[t].off_len);
  return *(oci_blkio_throttle *const *const *)((const char *)b + sbx_cg_throttles[t].off_arr);
}

/* Byte counts and limits where -1 is the only "unlimited".  */
static int
check_limit (const char *field, bool has, int64_t v, sbx_error **err)
{
  if (has && v < -1)
    return sbx_error_set (err, EINVAL, "linux.resources.%s: %" PRId64 " is not valid (-1 means unlimited)",
                          field, v);
  return 0;
}

static int
check_memory (const oci_memory *m, sbx_error **err)
{
  if (check_limit ("memory.limit", m->has_limit, m->limit, err) < 0
      || check_limit ("memory.reservation", m->has_reservation, m->reservation, err) < 0
      || check_limit ("memory.swap", m->has_swap, m->swap, err) < 0
      || check_limit ("memory.kernel", m->has_kernel, m->kernel, err) < 0
      || check_limit ("memory.kernelTCP", m->has_kernel_tcp, m->kernel_tcp, err) < 0)
    return -1;
  /* swap is memory+swap: it cannot be below the memory limit */
  if (m->has_swap && m->swap > 0 && m->has_limit && m->limit > 0 && m->swap < m->limit)
    return sbx_error_set (err, EINVAL,
                          "linux.resources.memory.swap: %" PRId64 " (memory+swap) is below "
                          "linux.resources.memory.limit %" PRId64,
                          m->swap, m->limit);
  if (m->has_swappiness && m->swappiness > 100)
    return sbx_error_set (err, EINVAL, "linux.resources.memory.swappiness: %" PRIu64 " is not in [0, 100]",
                          m->swappiness);
  return 0;
}

static int
check_cpu (const oci_cpu *c, sbx_error **err)
{
  /* 0 is "not set" for shares and period, as with runc and crun */
  if (c->has_shares && c->shares && (c->shares < SHARES_MIN || c->shares > SHARES_MAX))
    return sbx_error_set (err, EINVAL, "linux.resources.cpu.shares: %" PRIu64 " is not in [%d, %d]",
                          c->shares, SHARES_MIN, SHARES_MAX);
  if (c->has_period && c->period && (c->period < CFS_PERIOD_MIN || c->period > CFS_PERIOD_MAX))
    return sbx_error_set (err, EINVAL,
                          "linux.resources.cpu.period: %" PRIu64 " is not in [%d, %d] (microseconds)",
                          c->period, CFS_PERIOD_MIN, CFS_PERIOD_MAX);
  if (c->has_quota && c->quota != -1 && (c->quota < CFS_QUOTA_MIN || c->quota > CFS_QUOTA_MAX))
    return sbx_error_set (err, EINVAL,
                          "linux.resources.cpu.quota: %" PRId64
                          " is not valid (-1 for unlimited, else [%d, %" PRId64 "] microseconds)",
                          c->quota, CFS_QUOTA_MIN, CFS_QUOTA_MAX);
  if (c->has_burst && c->burst && c->has_quota && c->quota > 0 && c->burst > (uint64_t)c->quota)
    return sbx_error_set (
        err, EINVAL, "linux.resources.cpu.burst: %" PRIu64 " is above linux.resources.cpu.quota %" PRId64,
        c->burst, c->quota);
  if (check_limit ("cpu.realtimeRuntime", c->has_realtime_runtime, c->realtime_runtime, err) < 0)
    return -1;
  if (c->has_realtime_runtime && c->realtime_runtime > 0 && c->has_realtime_period && c->realtime_period
      && (uint64_t)c->realtime_runtime > c->realtime_period)
    return sbx_error_set (err, EINVAL,
                          "linux.resources.cpu.realtimeRuntime: %" PRId64
                          " is above linux.resources.cpu.realtimePeriod %" PRIu64,
                          c->realtime_runtime, c->realtime_period);
  if (c->has_idle && c->idle != 0 && c->idle != 1)
    return sbx_error_set (err, EINVAL, "linux.resources.cpu.idle: %" PRId64 " is not 0 or 1", c->idle);
  return 0;
}

static int
check_weight (const char *field, bool has, uint16_t w, sbx_error **err)
{
  if (has && (w < BLKIO_WEIGHT_MIN || w > BLKIO_WEIGHT_MAX))
    return sbx_error_set (err, EINVAL, "linux.resources.blockIO.%s: %u is not in [%d, %d]", field,
                          (unsigned)w, BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX);
  return 0;
}

static int
check_device_number (const char *field, size_t i, int64_t major, int64_t minor, sbx_error **err)
{
  if (major < 0 || minor < 0 || major > UINT32_MAX || minor > UINT32_MAX)
    return sbx_error_set (err, EINVAL,
                          "linux.resources.blockIO.%s[%zu]: device %" PRId64 ":%" PRId64 " is not valid",
                          field, i, major, minor);
  return 0;
}

static int
check_blkio (const oci_blkio *b, sbx_error **err)
{
  if (check_weight ("weight", b->has_weight, b->weight, err) < 0
      || check_weight ("leafWeight", b->has_leaf_weight, b->leaf_weight, err) < 0)
    return -1;
  for (size_t i = 0; i < b->weight_device_len; i++)
    {
      const oci_blkio_weight_device *d = b->weight_device[i];
      cleanup_free char *w = xasprintf ("weightDevice[%zu].weight", i);
      cleanup_free char *lw = xasprintf ("weightDevice[%zu].leafWeight", i);
      if (check_device_number ("weightDevice", i, d->major, d->minor, err) < 0
          || check_weight (w, d->has_weight, d->weight, err) < 0
          || check_weight (lw, d->has_leaf_weight, d->leaf_weight, err) < 0)
        return -1;
    }
  for (size_t t = 0; t < SBX_CG_THROTTLE_KINDS; t++)
    {
      size_t len;
      oci_blkio_throttle *const *arr = sbx_cg_throttle_list (b, t, &len);
      for (size_t i = 0; i < len; i++)
        if (check_device_number (sbx_cg_throttles[t].field + strlen ("blockIO."), i, arr[i]->major,
                                 arr[i]->minor, err)
            < 0)
          return -1;
    }
  return 0;
}

/* "2MB" -> 2 MiB; 0 when invalid.  */
static uint64_t
page_size_bytes (const char *s)
{
  char *end;
  unsigned long long n;
  if (s == NULL || !sbx_cg_valid_page_size (s))
    return 0;
  n = strtoull (s, &end, 10);
  switch (*end)
    {
    case 'K':
      return n << 10;
    case 'M':
      return n << 20;
    default:
      return n << 30;
    }
}

static int
check_hugepages (const oci_resources *r, sbx_error **err)
{
  for (size_t i = 0; i < r->hugepage_limits_len; i++)
    {
      const oci_hugepage_limit *l = r->hugepage_limits[i];
      uint64_t size = page_size_bytes (l->page_size);
      if (size == 0)
        return sbx_error_set (err, EINVAL, "linux.resources.hugepageLimits[%zu].pageSize: invalid `%s`", i,
                              l->page_size ? l->page_size : "");
      for (size_t k = 0; k < i; k++)
        if (strcmp (r->hugepage_limits[k]->page_size, l->page_size) == 0)
          return sbx_error_set (err, EINVAL,
                                "linux.resources.hugepageLimits[%zu].pageSize: `%s` is already limited by "
                                "hugepageLimits[%zu]",
                                i, l->page_size, k);
      /* the kernel would round it down to whole pages without a word */
      if (l->limit % size)
        return sbx_error_set (err, EINVAL,
                              "linux.resources.hugepageLimits[%zu].limit: %" PRIu64
                              " is not a multiple of the page size %s",
                              i, l->limit, l->page_size);
    }
  return 0;
}

static int
check_network (const oci_network *n, sbx_error **err)
{
  for (size_t i = 0; i < n->priorities_len; i++)
    {
      const char *name = n->priorities[i]->name;
      if (name == NULL || *name == '\0' || strpbrk (name, " \t\n/") || strlen (name) >= 16)
        return sbx_error_set (err, EINVAL,
                              "linux.resources.network.priorities[%zu].name: `%s` is not an interface name",
                              i, name ? name : "");
    }
  return 0;
}

int
sbx_cgroup_validate (const oci_resources *r, sbx_error **err)
{
  char line[128];

  if (r == NULL)
    return 0;
  for (size_t i = 0; i < r->devices_len; i++)
    if (sbx_cg_device_line (r->devices[i], i, line, sizeof line, err) < 0)
      return -1;
  if (r->memory && check_memory (r->memory, err) < 0)
    return -1;
  if (r->cpu && check_cpu (r->cpu, err) < 0)
    return -1;
  if (r->pids && check_limit ("pids.limit", true, r->pids->limit, err) < 0)
    return -1;
  if (r->block_io && check_blkio (r->block_io, err) < 0)
    return -1;
  if (check_hugepages (r, err) < 0)
    return -1;
  if (r->network && check_network (r->network, err) < 0)
    return -1;
  return 0;
}

char *
sbx_cgroup_limits_named (const oci_resources *r)
{
  char buf[256] = "";
  if (r == NULL)
    return NULL;
  const struct
  {
    bool set;
    const char *name;
  } k[] = {
    { r->memory != NULL, "memory" },
    { r->cpu != NULL, "cpu" },
    { r->pids != NULL, "pids" },
    { r->block_io != NULL, "blockIO" },
    { r->hugepage_limits_len > 0, "hugepageLimits" },
    { r->network != NULL, "network" },
    { r->rdma_len > 0, "rdma" },
    { r->unified_len > 0, "unified" },
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (k[i].set)
      {
        if (buf[0])
          strcat (buf, ", ");
        strcat (buf, k[i].name);
      }
  return buf[0] ? xstrdup (buf) : NULL;
}
