/* control.c - see control.h.  Operations on a running container's cgroup:
 * pause and resume (the freezer), update (linux.resources of a live
 * container, saved back into the state directory's config.json) and events
 * (stats and OOM notifications as JSON lines, in runc's format so that
 * containerd and friends can read them).  */
#include <config.h>
#include "container/container.h"

#include "egress/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "core/core.h"
#include "json.h"
#include "state/state.h"

/* ---------------------------------------------------------------- common */

static void
cgroup_freep (sbx_cgroup **cg)
{
  sbx_cgroup_free (*cg);
}
#define cleanup_cgroup __attribute__ ((cleanup (cgroup_freep)))

static void
state_freep (sbx_state **s)
{
  sbx_state_free (*s);
}
#define cleanup_state __attribute__ ((cleanup (state_freep)))

static int
load_cgroup (sbx_state *s, sbx_cgroup **cg, sbx_error **err)
{
  if (s->st->cgroup == NULL)
    return sbx_error_set (err, EOPNOTSUPP, "container \"%s\" has no cgroup (none was available at create)",
                          s->id);
  if (sbx_cgroup_load (s->st->cgroup, cg, err) < 0)
    return sbx_error_wrap (err, "container \"%s\"", s->id);
  return 0;
}

/* ------------------------------------------------------- pause / resume */

int
sbx_container_pause (const char *root, const char *id, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  cleanup_cgroup sbx_cgroup *cg = NULL;
  const char *status;

  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  status = sbx_state_status (s);
  if (strcmp (status, "paused") == 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" is already paused", id);
  if (strcmp (status, "running") != 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" cannot be paused: it is %s, not running", id,
                          status);
  if (load_cgroup (s, &cg, err) < 0)
    return -1;
  if (sbx_cgroup_freeze (cg, true, err) < 0)
    return sbx_error_wrap (err, "pause container \"%s\"", id);
  return 0;
}

int
sbx_container_resume (const char *root, const char *id, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  cleanup_cgroup sbx_cgroup *cg = NULL;
  const char *status;

  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  status = sbx_state_status (s);
  if (strcmp (status, "paused") != 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" cannot be resumed: it is %s, not paused", id,
                          status);
  if (load_cgroup (s, &cg, err) < 0)
    return -1;
  if (sbx_cgroup_freeze (cg, false, err) < 0)
    return sbx_error_wrap (err, "resume container \"%s\"", id);
  return 0;
}

/* ---------------------------------------------------------------- update */

#define TAKE(dst, src, f)                                                                                    \
  do                                                                                                         \
    if ((src)->has_##f)                                                                                      \
      {                                                                                                      \
        (dst)->f = (src)->f;                                                                                 \
        (dst)->has_##f = true;                                                                               \
      }                                                                                                      \
  while (0)

#define TAKE_STR(dst, src, f)                                                                                \
  do                                                                                                         \
    if ((src)->f)                                                                                            \
      {                                                                                                      \
        free ((dst)->f);                                                                                     \
        (dst)->f = steal_ptr ((src)->f);                                                                     \
      }                                                                                                      \
  while (0)

/* Replace an object array of dst by src's when src has one.  */
#define TAKE_ARR(dst, src, f, type)                                                                          \
  do                                                                                                         \
    if ((src)->f##_len)                                                                                      \
      {                                                                                                      \
        for (size_t i_ = 0; i_ < (dst)->f##_len; i_++)                                                       \
          ocispec_free (&type, (dst)->f[i_]);                                                                \
        free ((dst)->f);                                                                                     \
        (dst)->f = steal_ptr ((src)->f);                                                                     \
        (dst)->f##_len = (src)->f##_len;                                                                     \
        (src)->f##_len = 0;                                                                                  \
      }                                                                                                      \
  while (0)

/* Make *dst exist (an empty object) and return it.  */
static void *
ensure (void **dst, size_t size)
{
  if (*dst == NULL)
    *dst = xmalloc0 (size);
  return *dst;
}

static void
merge_memory (oci_memory *d, oci_memory *s)
{
  TAKE (d, s, limit);
  TAKE (d, s, reservation);
  TAKE (d, s, swap);
  TAKE (d, s, kernel);
  TAKE (d, s, kernel_tcp);
  TAKE (d, s, swappiness);
  TAKE (d, s, disable_oom_killer);
  TAKE (d, s, use_hierarchy);
  TAKE (d, s, check_before_update);
}

static void
merge_cpu (oci_cpu *d, oci_cpu *s)
{
  TAKE (d, s, shares);
  TAKE (d, s, quota);
  TAKE (d, s, burst);
  TAKE (d, s, period);
  TAKE (d, s, realtime_runtime);
  TAKE (d, s, realtime_period);
  TAKE (d, s, idle);
  TAKE_STR (d, s, cpus);
  TAKE_STR (d, s, mems);
}

static void
merge_blkio (oci_blkio *d, oci_blkio *s)
{
  TAKE (d, s, weight);
  TAKE (d, s, leaf_weight);
  TAKE_ARR (d, s, weight_device, oci_blkio_weight_device_type);
  TAKE_ARR (d, s, throttle_read_bps_device, oci_blkio_throttle_type);
  TAKE_ARR (d, s, throttle_write_bps_device, oci_blkio_throttle_type);
  TAKE_ARR (d, s, throttle_read_iops_device, oci_blkio_throttle_type);
  TAKE_ARR (d, s, throttle_write_iops_device, oci_blkio_throttle_type);
}

static void
merge_hugepages (oci_resources *d, oci_resources *s)
{
  for (size_t i = 0; i < s->hugepage_limits_len; i++)
    {
      oci_hugepage_limit *l = steal_ptr (s->hugepage_limits[i]);
      size_t k;
      for (k = 0; k < d->hugepage_limits_len; k++)
        if (d->hugepage_limits[k]->page_size && l->page_size
            && strcmp (d->hugepage_limits[k]->page_size, l->page_size) == 0)
          break;
      if (k < d->hugepage_limits_len)
        ocispec_free (&oci_hugepage_limit_type, d->hugepage_limits[k]);
      else
        {
          d->hugepage_limits = xrealloc (d->hugepage_limits, (k + 2) * sizeof *d->hugepage_limits);
          d->hugepage_limits_len++;
          d->hugepage_limits[k + 1] = NULL;
        }
      d->hugepage_limits[k] = l;
    }
}

static void
merge_rdma (oci_resources *d, oci_resources *s)
{
  for (size_t i = 0; i < s->rdma_len; i++)
    {
      size_t k;
      for (k = 0; k < d->rdma_len; k++)
        if (strcmp (d->rdma_keys[k], s->rdma_keys[i]) == 0)
          break;
      if (k < d->rdma_len)
        {
          ocispec_free (&oci_rdma_type, d->rdma_values[k]);
          free (d->rdma_keys[k]);
        }
      else
        {
          d->rdma_keys = xrealloc (d->rdma_keys, (k + 2) * sizeof *d->rdma_keys);
          d->rdma_values = xrealloc (d->rdma_values, (k + 2) * sizeof *d->rdma_values);
          d->rdma_keys[k + 1] = NULL;
          d->rdma_values[k + 1] = NULL;
          d->rdma_len++;
        }
      d->rdma_keys[k] = steal_ptr (s->rdma_keys[i]);
      d->rdma_values[k] = steal_ptr (s->rdma_values[i]);
    }
}

static void
merge_unified (oci_resources *d, oci_resources *s)
{
  for (size_t i = 0; i < s->unified_len; i++)
    {
      size_t k;
      for (k = 0; k < d->unified_len; k++)
        if (strcmp (d->unified_keys[k], s->unified_keys[i]) == 0)
          break;
      if (k < d->unified_len)
        {
          free (d->unified_values[k]);
          free (d->unified_keys[k]);
        }
      else
        {
          d->unified_keys = xrealloc (d->unified_keys, (k + 2) * sizeof *d->unified_keys);
          d->unified_values = xrealloc (d->unified_values, (k + 2) * sizeof *d->unified_values);
          d->unified_keys[k + 1] = NULL;
          d->unified_values[k + 1] = NULL;
          d->unified_len++;
        }
      d->unified_keys[k] = steal_ptr (s->unified_keys[i]);
      d->unified_values[k] = steal_ptr (s->unified_values[i]);
    }
}

static char *
devices_json (oci_device_cgroup *const *devs, size_t n)
{
  oci_resources tmp = { .devices = (oci_device_cgroup **)devs, .devices_len = n };
  return ocispec_generate (&oci_resources_type, &tmp, false, NULL);
}

static int
update_locked (sbx_state *s, const oci_resources *r, sbx_error **err)
{
  cleanup_cgroup sbx_cgroup *cg = NULL;
  oci_config *c = NULL;
  oci_resources *u = NULL, *saved, *devs = NULL, ap = { 0 };
  const char *status = sbx_state_status (s);
  size_t len;
  int ret = -1;

  if (strcmp (status, "stopped") == 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" is not running", s->id);
  if (load_cgroup (s, &cg, err) < 0 || sbx_state_config (s, &c, err) < 0)
    return -1;
  u = ocispec_dup (&oci_resources_type, r);
  ensure ((void **)&c->linux, sizeof *c->linux);
  saved = ensure ((void **)&c->linux->resources, sizeof *saved);

  /* sections written whole (with the saved values of the fields not
     given), so that related files stay consistent: memory.swap.max is
     swap - limit, cpu.max holds quota and period */
  if (u->memory)
    {
      merge_memory (ensure ((void **)&saved->memory, sizeof *saved->memory), u->memory);
      ap.memory = saved->memory;
    }
  if (u->cpu)
    {
      merge_cpu (ensure ((void **)&saved->cpu, sizeof *saved->cpu), u->cpu);
      ap.cpu = saved->cpu;
    }
  if (u->pids)
    {
      ocispec_free (&oci_pids_type, saved->pids);
      saved->pids = steal_ptr (u->pids);
      ap.pids = saved->pids;
    }
  if (u->block_io)
    {
      merge_blkio (ensure ((void **)&saved->block_io, sizeof *saved->block_io), u->block_io);
      ap.block_io = saved->block_io;
    }
  if (u->network)
    {
      ocispec_free (&oci_network_type, saved->network);
      saved->network = steal_ptr (u->network);
      ap.network = saved->network;
    }
  if (u->devices_len)
    {
      /* only when they change: re-writing v1 rules briefly denies access */
      cleanup_free char *before = devices_json (saved->devices, saved->devices_len);
      cleanup_free char *after = devices_json (u->devices, u->devices_len);
      TAKE_ARR (saved, u, devices, oci_device_cgroup_type);
      if (strcmp (before, after) != 0)
        {
          oci_resources tmp = { .devices = saved->devices, .devices_len = saved->devices_len };
          devs = ocispec_dup (&oci_resources_type, &tmp);
          sbx_cgroup_add_default_devices (devs);
          ap.devices = devs->devices;
          ap.devices_len = devs->devices_len;
        }
    }
  /* maps: only the entries given are written */
  ap.hugepage_limits = u->hugepage_limits;
  ap.hugepage_limits_len = u->hugepage_limits_len;
  ap.rdma_keys = u->rdma_keys;
  ap.rdma_values = u->rdma_values;
  ap.rdma_len = u->rdma_len;
  ap.unified_keys = u->unified_keys;
  ap.unified_values = u->unified_values;
  ap.unified_len = u->unified_len;

  if (sbx_cgroup_validate (&ap, err) < 0 || sbx_cgroup_apply (cg, &ap, err) < 0)
    {
      sbx_error_wrap (err, "update container \"%s\"", s->id);
      goto out;
    }
  merge_hugepages (saved, u);
  merge_rdma (saved, u);
  merge_unified (saved, u);
  {
    cleanup_free char *json = ocispec_generate (&oci_config_type, c, false, &len);
    if (sbx_write_file_atomic (s->dir_fd, "config.json", json, len, 0600, err) < 0)
      {
        sbx_error_wrap (err, "container \"%s\": save the updated config", s->id);
        goto out;
      }
  }
  ret = 0;
out:
  ocispec_free (&oci_resources_type, devs);
  ocispec_free (&oci_resources_type, u);
  oci_config_free (c);
  return ret;
}

int
sbx_container_update (const char *root, const char *id, const oci_resources *r, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  return update_locked (s, r, err);
}

/* ---------------------------------------------------------------- parsing */

int
sbx_parse_size (const char *s, int64_t *out, sbx_error **err)
{
  static const char units[] = "kmgtp";
  const char *p = s, *u;
  char *end;
  double v;
  int shift = 0;

  if (s == NULL || *s == '\0')
    return sbx_error_set (err, EINVAL, "invalid size ``");
  if (strcmp (s, "-1") == 0)
    {
      *out = -1;
      return 0;
    }
  if (*p < '0' || *p > '9')
    return sbx_error_set (err, EINVAL, "invalid size `%s`", s);
  errno = 0;
  v = strtod (p, &end);
  if (errno || end == p || !isfinite (v))
    return sbx_error_set (err, EINVAL, "invalid size `%s`", s);
  p = end;
  if (*p == ' ')
    p++;
  if (*p && (u = strchr (units, *p | 0x20)) != NULL)
    {
      shift = 10 * (int)(u - units + 1);
      p++;
      if (*p == 'i' || *p == 'I')
        {
          p++;
          if (*p != 'b' && *p != 'B')
            return sbx_error_set (err, EINVAL, "invalid size `%s`", s);
        }
    }
  if (*p == 'b' || *p == 'B')
    p++;
  if (*p)
    return sbx_error_set (err, EINVAL, "invalid size `%s` (want a number with an optional k, m, g, t or p)",
                          s);
  v = v * (double)(UINT64_C (1) << shift);
  if (v >= 9.2e18)
    return sbx_error_set (err, ERANGE, "size `%s` is too large", s);
  *out = (int64_t)v;
  return 0;
}

int
sbx_parse_duration_ms (const char *s, long long *ms, sbx_error **err)
{
  static const struct
  {
    const char *unit;
    double ms;
  } units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
                { "s", 1000 },  { "m", 60000 }, { "h", 3600000 } };
  const char *p = s;
  double total = 0;

  if (s == NULL || *s == '\0')
    return sbx_error_set (err, EINVAL, "invalid duration ``");
  if (strspn (s, "0123456789.") == strlen (s))
    {
      /* a bare number: seconds */
      char *end;
      total = strtod (s, &end) * 1000;
      if (*end)
        return sbx_error_set (err, EINVAL, "invalid duration `%s`", s);
      p = end;
    }
  while (*p)
    {
      char *end;
      double v;
      size_t best = SIZE_MAX, bl = 0;

      if ((*p < '0' || *p > '9') && *p != '.')
        return sbx_error_set (err, EINVAL, "invalid duration `%s`", s);
      v = strtod (p, &end);
      if (end == p)
        return sbx_error_set (err, EINVAL, "invalid duration `%s`", s);
      p = end;
      for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        {
          size_t l = strlen (units[k].unit);
          if (strncmp (p, units[k].unit, l) == 0 && l > bl)
            best = k, bl = l;
        }
      if (best == SIZE_MAX)
        return sbx_error_set (err, EINVAL, "invalid duration `%s` (units: ns, us, ms, s, m, h)", s);
      total += v * units[best].ms;
      p += bl;
    }
  if (total > 1e15)
    return sbx_error_set (err, ERANGE, "duration `%s` is too long", s);
  *ms = (long long)llround (total);
  return 0;
}

/* ---------------------------------------------------------------- events */

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
mem_entry (oj_writer *w, const char *key, uint64_t limit, uint64_t usage, uint64_t max, uint64_t failcnt)
{
  oj_w_key (w, key);
  oj_w_begin_object (w);
  oj_w_key (w, "limit");
  oj_w_uint (w, limit);
  oj_w_key (w, "usage");
  oj_w_uint (w, usage);
  oj_w_key (w, "max");
  oj_w_uint (w, max);
  oj_w_key (w, "failcnt");
  oj_w_uint (w, failcnt);
  oj_w_end_object (w);
}

static void
blkio_list (oj_writer *w, const char *key, const sbx_cgroup_blkio_entry *v, size_t n)
{
  oj_w_key (w, key);
  oj_w_begin_array (w);
  for (size_t i = 0; i < n; i++)
    {
      oj_w_begin_object (w);
      oj_w_key (w, "major");
      oj_w_uint (w, v[i].major);
      oj_w_key (w, "minor");
      oj_w_uint (w, v[i].minor);
      oj_w_key (w, "op");
      oj_w_string (w, v[i].op);
      oj_w_key (w, "value");
      oj_w_uint (w, v[i].value);
      oj_w_end_object (w);
    }
  oj_w_end_array (w);
}

/* Packets the egress allowlist dropped (org.sbxrun.net.*), when there is one. */
struct egress_drops
{
  bool have;
  uint64_t packets, bytes;
};

static void
write_stats (oj_writer *w, const sbx_cgroup_stats *st, const struct egress_drops *drops)
{
  /* unlimited reads as the largest value, as runc reports cgroup v2 "max" */
  uint64_t mem_limit = st->memory_limit ? st->memory_limit : UINT64_MAX;
  uint64_t swap_limit = st->memory_swap_limit ? st->memory_swap_limit : UINT64_MAX;

  oj_w_begin_object (w);
  oj_w_key (w, "cpu");
  oj_w_begin_object (w);
  oj_w_key (w, "usage");
  oj_w_begin_object (w);
  oj_w_key (w, "total");
  oj_w_uint (w, st->cpu_usage_ns);
  if (st->cpu_ncpu)
    {
      oj_w_key (w, "percpu");
      oj_w_begin_array (w);
      for (size_t i = 0; i < st->cpu_ncpu; i++)
        oj_w_uint (w, st->cpu_percpu_ns[i]);
      oj_w_end_array (w);
    }
  oj_w_key (w, "kernel");
  oj_w_uint (w, st->cpu_system_ns);
  oj_w_key (w, "user");
  oj_w_uint (w, st->cpu_user_ns);
  oj_w_end_object (w);
  oj_w_key (w, "throttling");
  oj_w_begin_object (w);
  oj_w_key (w, "periods");
  oj_w_uint (w, st->cpu_nr_periods);
  oj_w_key (w, "throttledPeriods");
  oj_w_uint (w, st->cpu_nr_throttled);
  oj_w_key (w, "throttledTime");
  oj_w_uint (w, st->cpu_throttled_ns);
  oj_w_end_object (w);
  oj_w_end_object (w);

  oj_w_key (w, "memory");
  oj_w_begin_object (w);
  oj_w_key (w, "cache");
  oj_w_uint (w, st->memory_cache);
  mem_entry (w, "usage", mem_limit, st->memory_usage, st->memory_max_usage, st->memory_failcnt);
  mem_entry (w, "swap", swap_limit, st->memory_swap_usage, 0, 0);
  mem_entry (w, "kernel", 0, st->memory_kernel_usage, 0, 0);
  mem_entry (w, "kernelTCP", 0, 0, 0, 0);
  oj_w_key (w, "raw");
  oj_w_begin_object (w);
  for (size_t i = 0; i < st->memory_stat_len; i++)
    {
      oj_w_key (w, st->memory_stat_keys[i]);
      oj_w_uint (w, st->memory_stat_values[i]);
    }
  oj_w_end_object (w);
  oj_w_end_object (w);

  oj_w_key (w, "pids");
  oj_w_begin_object (w);
  oj_w_key (w, "current");
  oj_w_uint (w, st->pids_current);
  oj_w_key (w, "limit");
  oj_w_uint (w, st->pids_limit);
  oj_w_end_object (w);

  oj_w_key (w, "blkio");
  oj_w_begin_object (w);
  blkio_list (w, "ioServiceBytesRecursive", st->blkio_bytes, st->blkio_bytes_len);
  blkio_list (w, "ioServicedRecursive", st->blkio_ios, st->blkio_ios_len);
  oj_w_end_object (w);

  oj_w_key (w, "hugetlb");
  oj_w_begin_object (w);
  for (size_t i = 0; i < st->hugetlb_len; i++)
    {
      oj_w_key (w, st->hugetlb[i].page_size);
      oj_w_begin_object (w);
      oj_w_key (w, "usage");
      oj_w_uint (w, st->hugetlb[i].usage);
      oj_w_key (w, "max");
      oj_w_uint (w, st->hugetlb[i].max_usage);
      oj_w_key (w, "failcnt");
      oj_w_uint (w, st->hugetlb[i].failcnt);
      oj_w_end_object (w);
    }
  oj_w_end_object (w);
  oj_w_key (w, "intel_rdt");
  oj_w_begin_object (w);
  oj_w_end_object (w);
  oj_w_key (w, "network_interfaces");
  oj_w_null (w);
  if (drops && drops->have)
    {
      oj_w_key (w, "egress");
      oj_w_begin_object (w);
      oj_w_key (w, "dropped_packets");
      oj_w_uint (w, drops->packets);
      oj_w_key (w, "dropped_bytes");
      oj_w_uint (w, drops->bytes);
      oj_w_end_object (w);
    }
  oj_w_end_object (w);
}

char *
sbx_stats_json (const sbx_cgroup_stats *st)
{
  oj_writer *w = oj_writer_new (false);
  write_stats (w, st, NULL);
  return oj_writer_finish (w, NULL);
}

/* One event line; data may be NULL.  */
static int
emit_event (int fd, const char *type, const char *id, const sbx_cgroup_stats *data,
            const struct egress_drops *drops, sbx_error **err)
{
  oj_writer *w = oj_writer_new (false);
  cleanup_free char *line = NULL;
  size_t len = 0;

  oj_w_begin_object (w);
  oj_w_key (w, "type");
  oj_w_string (w, type);
  oj_w_key (w, "id");
  oj_w_string (w, id);
  if (data)
    {
      oj_w_key (w, "data");
      write_stats (w, data, drops);
    }
  oj_w_end_object (w);
  line = oj_writer_finish (w, &len);
  line = xrealloc (line, len + 2);
  line[len++] = '\n';
  line[len] = '\0';
  if (sbx_write_all (fd, line, len) < 0)
    return sbx_error_sys (err, "write event");
  return 0;
}

/* state_dirfd (unlocked) and pid locate the egress policy's counters.  */
static int
emit_stats (int fd, sbx_cgroup *cg, const char *id, int state_dirfd, pid_t pid, sbx_error **err)
{
  sbx_cgroup_stats st;
  struct egress_drops drops = { 0 };
  int r;

  if (sbx_cgroup_get_stats (cg, &st, err) < 0)
    return sbx_error_wrap (err, "container \"%s\": stats", id);
  if (state_dirfd >= 0)
    drops.have = sbx_net_container_counters (state_dirfd, id, pid, &drops.packets, &drops.bytes, NULL) == 0;
  r = emit_event (fd, "stats", id, &st, &drops, err);
  sbx_cgroup_stats_release (&st);
  return r;
}

static int
emit_ooms (int fd, sbx_cgroup_oom_watch *w, const char *id, sbx_error **err)
{
  uint64_t n = 0;
  if (w == NULL)
    return 0;
  if (sbx_cgroup_oom_read (w, &n, err) < 0)
    return -1;
  /* one line per notification, as runc: a burst of kills is one event */
  if (n && emit_event (fd, "oom", id, NULL, NULL, err) < 0)
    return -1;
  return 0;
}

int
sbx_container_events (const char *root, const char *id, const sbx_events_opts *o, sbx_error **err)
{
  cleanup_cgroup sbx_cgroup *cg = NULL;
  cleanup_close int pidfd = -1, state_dirfd = -1;
  sbx_cgroup_oom_watch *ow = NULL;
  long long next;
  pid_t pid;
  unsigned long long pid_start;
  int ret = -1;

  {
    /* everything needed is read under the lock, which is not held while
       waiting: start, kill and delete must keep working */
    cleanup_state sbx_state *s = NULL;
    if (sbx_state_open (root, id, &s, err) < 0)
      return -1;
    pid = s->st->pid;
    pid_start = s->st->pid_start;
    /* without pidfds (old kernels, valgrind) the init is polled */
    pidfd = sbx_pidfd_open (pid);
    if (strcmp (sbx_state_status (s), "stopped") == 0)
      return sbx_error_set (err, ESRCH, "container \"%s\" is not running", id);
    if (load_cgroup (s, &cg, err) < 0)
      return -1;
    /* A second open of the state directory, without the lock, for the
       egress counters (their namespace is found from its net.json).  */
    state_dirfd = openat (s->root_fd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (o->stats_only)
    return emit_stats (o->out_fd, cg, id, state_dirfd, pid, err);

  {
    cleanup_error sbx_error *e = NULL;
    if (sbx_cgroup_oom_watch_open (cg, &ow, &e) < 0)
      sbx_debug ("events: %s", e->msg);
  }
  next = o->interval_ms > 0 ? now_ms () + o->interval_ms : -1;
  for (;;)
    {
      struct pollfd p[2] = { { pidfd, POLLIN, 0 }, { ow ? sbx_cgroup_oom_watch_fd (ow) : -1, POLLIN, 0 } };
      int timeout = -1, r;

      if (next >= 0)
        {
          long long left = next - now_ms ();
          timeout = left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
        }
      if (pidfd < 0 && (timeout < 0 || timeout > 200))
        timeout = 200;
      r = poll (p, 2, timeout);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          sbx_error_sys (err, "poll");
          goto out;
        }
      if ((p[1].revents & POLLIN) && emit_ooms (o->out_fd, ow, id, err) < 0)
        goto out;
      if ((p[0].revents & (POLLIN | POLLHUP)) || (pidfd < 0 && sbx_pid_start_time (pid) != pid_start))
        {
          /* the init is gone: report an OOM that killed it, then stop */
          if (emit_ooms (o->out_fd, ow, id, err) < 0)
            goto out;
          break;
        }
      if (next >= 0 && now_ms () >= next)
        {
          if (emit_stats (o->out_fd, cg, id, state_dirfd, pid, err) < 0)
            goto out;
          next += o->interval_ms;
          if (next < now_ms ())
            next = now_ms () + o->interval_ms;
        }
    }
  ret = 0;
out:
  sbx_cgroup_oom_watch_free (ow);
  return ret;
}
