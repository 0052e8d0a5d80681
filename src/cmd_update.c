/* cmd_update.c - `sbxrun update [OPTIONS] ID`: change the resource limits of
 * a running container.  --resources FILE (or - for stdin, as containerd
 * sends it) takes a linux.resources JSON object; the other options set one
 * field each and win over the file.  Memory sizes take runc's suffixes
 * (512k, 64m, 1g; -1 = unlimited).  */
#include <config.h>

#include <errno.h>
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
  OPT_CPU_RT_PERIOD,
  OPT_CPU_RT_RUNTIME,
  OPT_CPUSET_CPUS,
  OPT_CPUSET_MEMS,
  OPT_PIDS_LIMIT,
  OPT_BLKIO_WEIGHT,
  N_OPTS
};
_Static_assert (N_OPTS - OPT_MEMORY == SBX_UPDATE_N, "one flag per sbx_update_field, in order");

static const sbx_opt opts[] = {
  [OPT_RESOURCES] = { "resources", 'r', true, "FILE", "linux.resources JSON to apply (- for stdin)" },
  [OPT_MEMORY] = { "memory", 0, true, "SIZE", "memory limit (e.g. 512m; -1 = unlimited)" },
  [OPT_MEMORY_SWAP] = { "memory-swap", 0, true, "SIZE", "memory + swap limit (-1 = unlimited)" },
  [OPT_MEMORY_RESERVATION] = { "memory-reservation", 0, true, "SIZE", "memory soft limit" },
  [OPT_CPU_SHARES] = { "cpu-shares", 0, true, "N", "CPU shares (relative weight)" },
  [OPT_CPU_QUOTA] = { "cpu-quota", 0, true, "US", "CPU time per period in microseconds (-1 = none)" },
  [OPT_CPU_PERIOD] = { "cpu-period", 0, true, "US", "CPU CFS period in microseconds" },
  [OPT_CPU_RT_PERIOD] = { "cpu-rt-period", 0, true, "US", "realtime period in microseconds (cgroup v1)" },
  [OPT_CPU_RT_RUNTIME] = { "cpu-rt-runtime", 0, true, "US", "realtime time per period in microseconds (v1)" },
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
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  const char *v[N_OPTS] = { 0 };
  sbx_update_opts o = { 0 };
  int i = sbx_cli_parse (&sbx_cmd_update, argc, argv, on_opt, v, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_update, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  o.resources_file = v[OPT_RESOURCES];
  for (int k = OPT_MEMORY; k < N_OPTS; k++)
    o.flags[k - OPT_MEMORY] = v[k];
  return sbx_container_update_from (g->root, argv[i], &o, err);
}

const sbx_command sbx_cmd_update = {
  .name = "update",
  .args = "ID",
  .summary = "change the resource limits of a running container",
  .opts = opts,
  .run = run,
};
