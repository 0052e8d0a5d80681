/* container/update.c - update: linux.resources of a live container, merged
 * into the saved config.json and written to the cgroup; the command line's
 * --resources file and single-field flags laid into an oci_resources.  */
#include <config.h>
#include "container/container.h"

#include "egress/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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
  if (sbx_container_load_cgroup (s, &cg, err) < 0 || sbx_state_config (s, &c, err) < 0)
    return -1;
  u = ocispec_dup (&oci_resources_type, r);
  ensure ((void **)&c->linux, sizeof *c->linux);
  saved = ensure ((void **)&c->linux->resources, sizeof *saved);

  /* sections written whole (with the saved values of the fields not
     given), so that related files stay consistent: memory.swap.max is
     swap - limit, cpu.max holds quota and period */
  /* An unlimited memory with the swap left as saved could never be
     written (memory + swap below memory): as runc, swap goes unlimited
     with it unless the update gives it.  */
  if (u->memory && u->memory->has_limit && u->memory->limit == -1 && !u->memory->has_swap)
    {
      u->memory->swap = -1;
      u->memory->has_swap = true;
    }
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

/* ---------------------------------------------------------- command line */

static int
number (const char *s, long long min, long long max, long long *out, sbx_error **err)
{
  if (sbx_parse_int64 (s, out) < 0 || *out < min || *out > max)
    return sbx_error_set (err, EINVAL, "invalid value `%s` (want an integer in [%lld, %lld])", s, min, max);
  return 0;
}

static int
read_resources (const char *file, oci_resources **out, sbx_error **err)
{
  cleanup_free char *text = NULL, *msg = NULL;
  size_t len = 0;

  if ((strcmp (file, "-") == 0 ? sbx_read_fd (0, 16 << 20, &text, &len, err)
                               : sbx_read_file (file, 16 << 20, &text, &len, err))
      < 0)
    return sbx_error_wrap (err, "--resources `%s`", file);
  *out = ocispec_parse (&oci_resources_type, text, len, &msg);
  if (*out == NULL)
    return sbx_error_set (err, EINVAL, "--resources `%s`: %s", file, msg);
  return 0;
}

/* Lay the single-field flags over r.  */
static int
apply_flags (const char *const *v, oci_resources *r, sbx_error **err)
{
  static const struct
  {
    int key;
    const char *flag;
    size_t off_val, off_has;
  } mem[] = {
    { SBX_UPDATE_MEMORY, "memory", offsetof (oci_memory, limit), offsetof (oci_memory, has_limit) },
    { SBX_UPDATE_MEMORY_SWAP, "memory-swap", offsetof (oci_memory, swap), offsetof (oci_memory, has_swap) },
    { SBX_UPDATE_MEMORY_RESERVATION, "memory-reservation", offsetof (oci_memory, reservation),
      offsetof (oci_memory, has_reservation) },
  };
  /* 64-bit fields, signed or not (min 0 for the unsigned ones) */
  static const struct
  {
    int key;
    const char *flag;
    long long min, max;
    size_t off_val, off_has;
  } cpu[] = {
    { SBX_UPDATE_CPU_SHARES, "cpu-shares", 0, 262144, offsetof (oci_cpu, shares),
      offsetof (oci_cpu, has_shares) },
    { SBX_UPDATE_CPU_QUOTA, "cpu-quota", -1, LLONG_MAX, offsetof (oci_cpu, quota),
      offsetof (oci_cpu, has_quota) },
    { SBX_UPDATE_CPU_PERIOD, "cpu-period", 0, LLONG_MAX, offsetof (oci_cpu, period),
      offsetof (oci_cpu, has_period) },
    { SBX_UPDATE_CPU_RT_PERIOD, "cpu-rt-period", 0, LLONG_MAX, offsetof (oci_cpu, realtime_period),
      offsetof (oci_cpu, has_realtime_period) },
    { SBX_UPDATE_CPU_RT_RUNTIME, "cpu-rt-runtime", -1, LLONG_MAX, offsetof (oci_cpu, realtime_runtime),
      offsetof (oci_cpu, has_realtime_runtime) },
  };
  long long n;

  for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++)
    if (v[mem[i].key])
      {
        int64_t size;
        oci_memory *m = ensure ((void **)&r->memory, sizeof *r->memory);
        if (sbx_parse_size (v[mem[i].key], &size, err) < 0)
          return sbx_error_wrap (err, "--%s", mem[i].flag);
        *(int64_t *)((char *)m + mem[i].off_val) = size;
        *(bool *)((char *)m + mem[i].off_has) = true;
      }
  for (size_t i = 0; i < sizeof cpu / sizeof cpu[0]; i++)
    if (v[cpu[i].key])
      {
        oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
        int64_t val;
        if (number (v[cpu[i].key], cpu[i].min, cpu[i].max, &n, err) < 0)
          return sbx_error_wrap (err, "--%s", cpu[i].flag);
        val = n; /* the unsigned fields take no negative value */
        memcpy ((char *)c + cpu[i].off_val, &val, sizeof val);
        *(bool *)((char *)c + cpu[i].off_has) = true;
      }
  if (v[SBX_UPDATE_CPUSET_CPUS])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      free (c->cpus);
      c->cpus = xstrdup (v[SBX_UPDATE_CPUSET_CPUS]);
    }
  if (v[SBX_UPDATE_CPUSET_MEMS])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      free (c->mems);
      c->mems = xstrdup (v[SBX_UPDATE_CPUSET_MEMS]);
    }
  if (v[SBX_UPDATE_PIDS_LIMIT])
    {
      oci_pids *p = ensure ((void **)&r->pids, sizeof *r->pids);
      if (number (v[SBX_UPDATE_PIDS_LIMIT], LLONG_MIN, LLONG_MAX, &n, err) < 0)
        return sbx_error_wrap (err, "--pids-limit");
      p->limit = n;
      p->has_limit = true;
    }
  if (v[SBX_UPDATE_BLKIO_WEIGHT])
    {
      oci_blkio *b = ensure ((void **)&r->block_io, sizeof *r->block_io);
      if (number (v[SBX_UPDATE_BLKIO_WEIGHT], 10, 1000, &n, err) < 0)
        return sbx_error_wrap (err, "--blkio-weight");
      b->weight = (uint16_t)n;
      b->has_weight = true;
    }
  return 0;
}

int
sbx_container_update_from (const char *root, const char *id, const sbx_update_opts *o, sbx_error **err)
{
  oci_resources *r = NULL;
  bool any = o->resources_file != NULL;
  int ret;

  for (int k = 0; k < SBX_UPDATE_N; k++)
    any |= o->flags[k] != NULL;
  if (!any)
    return sbx_error_set (err, EINVAL, "update: nothing to change (see `sbxrun update --help`)");
  if (o->resources_file)
    {
      if (read_resources (o->resources_file, &r, err) < 0)
        return -1;
    }
  else
    r = xmalloc0 (sizeof *r);
  ret = apply_flags (o->flags, r, err);
  if (ret == 0)
    ret = sbx_container_update (root, id, r, err);
  ocispec_free (&oci_resources_type, r);
  return ret;
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
