/* cgroup.h - one cgroup manager interface, with cgroup v2 and v1/hybrid
 * backends (cgroup_v2.c, cgroup_v1.c) chosen from what the host mounts.
 *
 * Lifecycle: sbx_cgroup_create() before the container process runs (the
 * returned manager can give an O_PATH dirfd for clone3 CLONE_INTO_CGROUP on
 * v2), sbx_cgroup_apply() for linux.resources, then enter/kill/freeze/stats,
 * and sbx_cgroup_destroy() on delete.  A manager can be re-opened from the
 * path saved in the state directory (sbx_cgroup_load).  */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

typedef enum
{
  SBX_CGROUP_NONE = 0, /* no usable cgroup fs */
  SBX_CGROUP_V1,       /* v1 controllers (with a cgroup2 mount on hybrid hosts) */
  SBX_CGROUP_V2        /* pure unified hierarchy */
} sbx_cgroup_mode;

typedef struct sbx_cgroup sbx_cgroup;

sbx_cgroup_mode sbx_cgroup_host_mode (void);

/* Resolve linux.cgroupsPath (absolute: below the hierarchy roots; relative:
   below the caller's own cgroup; absent: "/sbxrun/<id>" below the caller's own
   cgroup -- see sbxrun(1)) and create the cgroup(s).  systemd_cgroup with a
   slice:prefix:name path gives a clear "not supported" error for now.
   On v1 hosts "own cgroup" is per hierarchy (from /proc/self/cgroup), so the
   same cgroupsPath can land at different paths in different hierarchies.  */
int sbx_cgroup_create (const char *id, const char *cgroups_path, bool systemd_cgroup, sbx_cgroup **out,
                       sbx_error **err);
/* Re-open from a saved description (the string from sbx_cgroup_describe).  */
int sbx_cgroup_load (const char *saved, sbx_cgroup **out, sbx_error **err);
/* A string to save in the state dir, for sbx_cgroup_load.  malloc'd.  */
char *sbx_cgroup_describe (const sbx_cgroup *cg);
/* The cgroup path relative to the hierarchy root (e.g. "/a/b/ctr").  On v1
   hosts, where each hierarchy has its own path, the one in the memory
   hierarchy (else the first mounted one): see sbx_cgroup_controller_path.  */
const char *sbx_cgroup_path (const sbx_cgroup *cg);
sbx_cgroup_mode sbx_cgroup_get_mode (const sbx_cgroup *cg);
/* The path in the hierarchy carrying controller ("memory", "name=systemd";
   "" = the unified hierarchy); NULL if the host has no such hierarchy.  */
const char *sbx_cgroup_controller_path (const sbx_cgroup *cg, const char *controller);
/* v2 only: an O_PATH|O_DIRECTORY fd of the cgroup for CLONE_INTO_CGROUP
   (clone3 accepts O_PATH), owned by the manager; else -1.  */
int sbx_cgroup_dirfd (const sbx_cgroup *cg);

int sbx_cgroup_apply (sbx_cgroup *cg, const oci_resources *r, sbx_error **err);
int sbx_cgroup_enter (sbx_cgroup *cg, pid_t pid, sbx_error **err);
/* All pids in the cgroup and its sub-cgroups, in every hierarchy: sorted,
   no duplicates (malloc'd array).  */
int sbx_cgroup_pids (sbx_cgroup *cg, pid_t **pids, size_t *n, sbx_error **err);
/* Signal every process; SIGKILL (cgroup.kill where available) also waits,
   bounded, until the cgroup is empty, thawing a v1 freezer first.  */
int sbx_cgroup_kill (sbx_cgroup *cg, int signo, sbx_error **err);
/* Freeze (and wait, bounded, until frozen) or thaw.  */
int sbx_cgroup_freeze (sbx_cgroup *cg, bool frozen, sbx_error **err);
/* Is the cgroup frozen (for state "paused")?  */
bool sbx_cgroup_is_frozen (sbx_cgroup *cg);
/* Counters for `sbxrun events --stats`; what the host cannot give stays 0
   (has_* false).  CPU times in nanoseconds, memory in bytes.  */
typedef struct
{
  bool has_cpu, has_memory, has_pids;
  uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
  uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_ns;
  uint64_t memory_usage, memory_max_usage, memory_limit; /* limit 0 = unlimited */
  uint64_t memory_swap_usage, memory_failcnt;
  uint64_t memory_oom, memory_oom_kill; /* memory.events (v2) / oom_control (v1) */
  uint64_t pids_current, pids_limit;    /* limit 0 = unlimited */
} sbx_cgroup_stats;
int sbx_cgroup_get_stats (sbx_cgroup *cg, sbx_cgroup_stats *st, sbx_error **err);
/* Kill what is left and remove the cgroup(s); succeeds if already gone.  */
int sbx_cgroup_destroy (sbx_cgroup *cg, sbx_error **err);
void sbx_cgroup_free (sbx_cgroup *cg);

#endif
