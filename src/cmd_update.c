/* cmd_update.c - `sbxrun update [OPTIONS] ID`: change the resource limits of
 * a running container.  --resources FILE (or - for stdin, as containerd
 * sends it) takes a linux.resources JSON object; the other options set one
 * field each and win over the file.  Memory sizes take runc's suffixes
 * (512k, 64m, 1g; -1 = unlimited).  */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"

enum
{
  OPT_RESOURCES,
  OPT_MEMORY,
  OPT_MEMORY_SWAP,
  OPT_MEMORY_RESERVATION,
  OPT_CPU_SHARES,
  OPT_CPU_QUOTA,
  OPT_CPU_PERIOD,
  OPT_CPUSET_CPUS,
  OPT_CPUSET_MEMS,
  OPT_PIDS_LIMIT,
  OPT_BLKIO_WEIGHT,
  N_OPTS
};

static const sbx_opt opts[] = {
  [OPT_RESOURCES] = { "resources", 'r', true, "FILE", "linux.resources JSON to apply (- for stdin)" },
  [OPT_MEMORY] = { "memory", 0, true, "SIZE", "memory limit (e.g. 512m; -1 = unlimited)" },
  [OPT_MEMORY_SWAP] = { "memory-swap", 0, true, "SIZE", "memory + swap limit (-1 = unlimited)" },
  [OPT_MEMORY_RESERVATION] = { "memory-reservation", 0, true, "SIZE", "memory soft limit" },
  [OPT_CPU_SHARES] = { "cpu-shares", 0, true, "N", "CPU shares (relative weight)" },
  [OPT_CPU_QUOTA] = { "cpu-quota", 0, true, "US", "CPU time per period in microseconds (-1 = none)" },
  [OPT_CPU_PERIOD] = { "cpu-period", 0, true, "US", "CPU CFS period in microseconds" },
  [OPT_CPUSET_CPUS] = { "cpuset-cpus", 0, true, "LIST", "CPUs to run on (0-3,5)" },
  [OPT_CPUSET_MEMS] = { "cpuset-mems", 0, true, "LIST", "memory nodes to use (0-1)" },
  [OPT_PIDS_LIMIT] = { "pids-limit", 0, true, "N", "maximum number of tasks (<= 0 = unlimited)" },
  [OPT_BLKIO_WEIGHT] = { "blkio-weight", 0, true, "N", "block IO weight (10-1000)" },
  /* runc's spelling, which scripts written for it use */
  [N_OPTS] = { "cpu-share", 0, true, "N", "the same as --cpu-shares" },
  { 0 },
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  const char **vals = data;
  if (key == N_OPTS)
    key = OPT_CPU_SHARES;
  if (key < 0 || key >= N_OPTS)
    return sbx_error_set (err, EINVAL, "unknown option");
  vals[key] = arg;
  return 0;
}

static int
number (const char *s, long long min, long long max, long long *out, sbx_error **err)
{
  if (sbx_parse_int64 (s, out) < 0 || *out < min || *out > max)
    return sbx_error_set (err, EINVAL, "invalid value `%s` (want an integer in [%lld, %lld])", s, min, max);
  return 0;
}

static void *
ensure (void **p, size_t size)
{
  if (*p == NULL)
    *p = xmalloc0 (size);
  return *p;
}

static int
read_resources (const char *file, oci_resources **out, sbx_error **err)
{
  cleanup_free char *text = NULL, *msg = NULL;
  size_t len = 0;

  if (strcmp (file, "-") == 0 ? sbx_read_fd (0, 16 << 20, &text, &len, err)
                              : sbx_read_file (file, 16 << 20, &text, &len, err) < 0)
    return sbx_error_wrap (err, "--resources `%s`", file);
  *out = ocispec_parse (&oci_resources_type, text, len, &msg);
  if (*out == NULL)
    return sbx_error_set (err, EINVAL, "--resources `%s`: %s", file, msg);
  return 0;
}

/* Lay the single-field options over r.  */
static int
apply_flags (const char **v, oci_resources *r, sbx_error **err)
{
  static const struct
  {
    int key;
    size_t off_val, off_has;
  } mem[] = {
    { OPT_MEMORY, offsetof (oci_memory, limit), offsetof (oci_memory, has_limit) },
    { OPT_MEMORY_SWAP, offsetof (oci_memory, swap), offsetof (oci_memory, has_swap) },
    { OPT_MEMORY_RESERVATION, offsetof (oci_memory, reservation), offsetof (oci_memory, has_reservation) },
  };
  long long n;

  for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++)
    if (v[mem[i].key])
      {
        int64_t size;
        oci_memory *m = ensure ((void **)&r->memory, sizeof *r->memory);
        if (sbx_parse_size (v[mem[i].key], &size, err) < 0)
          return sbx_error_wrap (err, "--%s", opts[mem[i].key].name);
        *(int64_t *)((char *)m + mem[i].off_val) = size;
        *(bool *)((char *)m + mem[i].off_has) = true;
      }
  if (v[OPT_CPU_SHARES])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      if (number (v[OPT_CPU_SHARES], 0, 262144, &n, err) < 0)
        return sbx_error_wrap (err, "--cpu-shares");
      c->shares = (uint64_t)n;
      c->has_shares = true;
    }
  if (v[OPT_CPU_QUOTA])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      if (number (v[OPT_CPU_QUOTA], -1, LLONG_MAX, &n, err) < 0)
        return sbx_error_wrap (err, "--cpu-quota");
      c->quota = n;
      c->has_quota = true;
    }
  if (v[OPT_CPU_PERIOD])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      if (number (v[OPT_CPU_PERIOD], 0, LLONG_MAX, &n, err) < 0)
        return sbx_error_wrap (err, "--cpu-period");
      c->period = (uint64_t)n;
      c->has_period = true;
    }
  if (v[OPT_CPUSET_CPUS])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      free (c->cpus);
      c->cpus = xstrdup (v[OPT_CPUSET_CPUS]);
    }
  if (v[OPT_CPUSET_MEMS])
    {
      oci_cpu *c = ensure ((void **)&r->cpu, sizeof *r->cpu);
      free (c->mems);
      c->mems = xstrdup (v[OPT_CPUSET_MEMS]);
    }
  if (v[OPT_PIDS_LIMIT])
    {
      oci_pids *p = ensure ((void **)&r->pids, sizeof *r->pids);
      if (number (v[OPT_PIDS_LIMIT], LLONG_MIN, LLONG_MAX, &n, err) < 0)
        return sbx_error_wrap (err, "--pids-limit");
      p->limit = n;
      p->has_limit = true;
    }
  if (v[OPT_BLKIO_WEIGHT])
    {
      oci_blkio *b = ensure ((void **)&r->block_io, sizeof *r->block_io);
      if (number (v[OPT_BLKIO_WEIGHT], 10, 1000, &n, err) < 0)
        return sbx_error_wrap (err, "--blkio-weight");
      b->weight = (uint16_t)n;
      b->has_weight = true;
    }
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  const char *v[N_OPTS] = { 0 };
  oci_resources *r = NULL;
  bool any = false;
  int i, ret;

  i = sbx_cli_parse (&sbx_cmd_update, argc, argv, on_opt, v, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_update, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  for (int k = 0; k < N_OPTS; k++)
    any |= v[k] != NULL;
  if (!any)
    return sbx_error_set (err, EINVAL, "update: nothing to change (see `sbxrun update --help`)");
  if (v[OPT_RESOURCES] ? read_resources (v[OPT_RESOURCES], &r, err) < 0 : (r = xmalloc0 (sizeof *r), 0))
    return -1;
  ret = apply_flags (v, r, err);
  if (ret == 0)
    ret = sbx_container_update (g->root, argv[i], r, err);
  ocispec_free (&oci_resources_type, r);
  return ret;
}

const sbx_command sbx_cmd_update = {
  .name = "update",
  .args = "ID",
  .summary = "change the resource limits of a running container",
  .opts = opts,
  .run = run,
};
