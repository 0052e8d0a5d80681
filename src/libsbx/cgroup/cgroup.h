/* cgroup/cgroup.h - one cgroup manager interface, with cgroup v2 and v1/hybrid
 * backends (cgroup/v2.c, cgroup/v1.c) chosen from what the host mounts.
 *
 * Lifecycle: sbx_cgroup_plan() and sbx_cgroup_make() before the container
 * process runs (the
 * returned manager can give an O_PATH dirfd for clone3 CLONE_INTO_CGROUP on
 * v2), sbx_cgroup_apply() for linux.resources, then enter/kill/freeze/stats,
 * and sbx_cgroup_destroy() on delete.  A manager can be re-opened from the
 * path saved in the state directory (sbx_cgroup_load).  */
#ifndef SBX_CGROUP_CGROUP_H
#define SBX_CGROUP_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
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
   cgroup -- see sbxrun(1)) and create the cgroup(s).  With systemd_cgroup,
   cgroups_path is slice:prefix:name and systemd makes the cgroup, a
   transient unit (cgroup/systemd.c).
   On v1 hosts "own cgroup" is per hierarchy (from /proc/self/cgroup), so the
   same cgroupsPath can land at different paths in different hierarchies.
   In two steps, so that the paths can be recorded (describe) before
   anything exists: plan resolves them, make creates the cgroups (on
   failure, what it made is removed again; sbx_cgroup_free after).
   With systemd_cgroup, plan computes the unit and its cgroup without asking
   systemd; make starts the unit and checks systemd put it there.  With
   rootless too, the unit is the user's systemd's (its user bus), below
   user@UID.service, in user.slice when cgroups_path names no slice.  */
int sbx_cgroup_plan (const char *id, const char *cgroups_path, bool systemd_cgroup, bool rootless,
                     sbx_cgroup **out, sbx_error **err);
int sbx_cgroup_make (sbx_cgroup *cg, sbx_error **err);
/* Rootless --systemd-cgroup from a cgroup that may not reach the unit's
   (a login session's session-N.scope: the kernel's common-ancestor rule,
   see cgroup/systemd_user.c), decided by plan: the container process
   cannot be cloned into the cgroup.  It is then started first, without
   one (no CLONE_INTO_CGROUP, no staging), and make_with has systemd start
   the unit with it as its process (the user manager asks the system
   manager to move it), checks where it landed, and takes the unit's
   cgroup as make does.  sbx_cgroup_make refuses such a cgroup.  A slice
   as the unit is refused by plan there (systemd places processes only in
   scopes).  */
bool sbx_cgroup_placed_by_systemd (const sbx_cgroup *cg);
int sbx_cgroup_make_with (sbx_cgroup *cg, pid_t pid, sbx_error **err);
/* The same for a process of a loaded cgroup (exec's joiner): the kernel
   would refuse its cgroup.procs write, so systemd moves pid into the unit
   (AttachProcessesToUnit); checked where it landed.  Only where
   sbx_cgroup_placed_by_systemd (decided again at load).  */
int sbx_cgroup_attach_by_systemd (sbx_cgroup *cg, pid_t pid, sbx_error **err);
/* Before make, for an unprivileged caller (rootless): on a v1 host make
   creates the cgroup in the hierarchies where the kernel lets the caller
   (the ones delegated to the user) and leaves the others out, as runc
   does; it still fails when it may create it in none.  A limit or a
   pause that needs a left-out hierarchy is refused naming it.  No effect
   on cgroup v2 (one hierarchy).  */
void sbx_cgroup_allow_partial (sbx_cgroup *cg);
/* After make: a sentence naming the hierarchies left out (with the
   directory and error of the first) and what that costs, for a warning;
   NULL when none.  malloc'd.  */
char *sbx_cgroup_left_out (const sbx_cgroup *cg);
/* Before make, for a cgroup that may exist already: refuse one that is
   frozen (v1 freezer, v2 cgroup.freeze, also through an ancestor), where
   the container would hang; warn if it has processes.  */
int sbx_cgroup_check_existing (sbx_cgroup *cg, sbx_error **err);
/* The container's init is in the cgroup for good: with --systemd-cgroup,
   the placeholder that kept the new scope alive until then goes (and
   pids.limit, raised by one for it, is set as configured).  */
int sbx_cgroup_placed (sbx_cgroup *cg, sbx_error **err);
/* A parent directory that did not exist when the cgroup was planned (a
   pod's cgroup, made with its sandbox's) is removed by destroy once empty;
   one that existed is left, as are the levels above it (the slice with
   --systemd-cgroup is systemd's).  A pod member shares that with its
   sandbox: the hierarchies where the saved description of the sandbox's
   cgroup (sbx_cgroup_describe) says so for the same parent are marked in
   cg too (before describe), so that whichever of them goes last removes
   it.  */
void sbx_cgroup_share_parent (sbx_cgroup *cg, const char *sandbox_saved);
/* Re-open from a saved description (the string from sbx_cgroup_describe).  */
int sbx_cgroup_load (const char *saved, sbx_cgroup **out, sbx_error **err);
/* A string to save in the state dir, for sbx_cgroup_load.  malloc'd.  */
char *sbx_cgroup_describe (const sbx_cgroup *cg);
/* The cgroup path relative to the hierarchy root (e.g. "/a/b/ctr").  On v1
   hosts, where each hierarchy has its own path, the one in the memory
   hierarchy (else the first mounted one): see sbx_cgroup_controller_path.  */
const char *sbx_cgroup_path (const sbx_cgroup *cg);
/* The path in the hierarchy carrying controller ("memory", "name=systemd";
   "" = the unified hierarchy); NULL if the host has no such hierarchy.  */
const char *sbx_cgroup_controller_path (const sbx_cgroup *cg, const char *controller);
/* v2 only: an O_PATH|O_DIRECTORY fd of the cgroup for CLONE_INTO_CGROUP
   (clone3 accepts O_PATH), owned by the manager; else -1.  */
int sbx_cgroup_dirfd (const sbx_cgroup *cg);
/* The same for the unified hierarchy of any host (pure v2 or hybrid), for
   CLONE_INTO_CGROUP (which places the child there only); -1 if none.  */
int sbx_cgroup_clone_fd (const sbx_cgroup *cg);
/* The container's directory in the unified (v2) hierarchy, also on hybrid
   hosts, and its depth below the hierarchy root ("/a/b" = 2) in *level;
   NULL when there is none.  For nftables' "socket cgroupv2" match.  */
const char *sbx_cgroup_unified_dir (sbx_cgroup *cg, int *level);

/* Write linux.resources; also used by `update` with only the sections that
   change (each complete).  Device rules (v1 devices.allow/deny, v2 an eBPF
   program replacing the one attached before) are evaluated in order, the
   last matching rule winning for each of r/w/m; what no rule matches is
   allowed, so lists normally start with a deny-all rule.  */
int sbx_cgroup_apply (sbx_cgroup *cg, const oci_resources *r, sbx_error **err);
/* Check linux.resources (or the sections of an update) against the spec's
   meaning (-1 is the only "unlimited") and the ranges the kernel takes
   without changing the value, touching nothing: create calls it before
   anything exists.  */
int sbx_cgroup_validate (const oci_resources *r, sbx_error **err);
/* The linux.resources members that ask for a limit (devices rules are
   not limits), comma-separated, or NULL when none.  Allocated.  */
char *sbx_cgroup_limits_named (const oci_resources *r);
int sbx_cgroup_enter (sbx_cgroup *cg, pid_t pid, sbx_error **err);
/* Placement and staging of the container init.  A move of a whole process
   by pid (cgroup.procs) takes the kernel's global threadgroup lock, which
   waits for an RCU grace period (5-50 ms on a loaded host); a thread that
   moves itself through a v1 `tasks` file does not.  So the init is born in
   the v2 cgroup (CLONE_INTO_CGROUP through sbx_cgroup_clone_fd, also on
   hybrid hosts) and, being a single thread, moves itself into the v1
   hierarchies (stage_arrive) through descriptors that stage_prepare opened
   in the runtime (open-time credentials and cgroup namespace decide the
   permission, so this also works from a user or cgroup namespace).  There
   it creates its cgroup namespace (rooted at the container's cgroup).
   With `limited` (the config limits memory or pids: a 192 KiB memory
   limit must still run /bin/true, pids.max = 1 still runs hooks), stage_leave
   then moves it to the runtime's own cgroups in the hierarchies of those
   controllers for the rest of its setup (mounts, hooks, pivot), so that
   the runtime's own work is not charged to the container; with `nodes`
   (linux.devices under device rules, which on v1 may deny their mknod)
   likewise in the v1 devices hierarchy; and
   stage_enter puts it back before it reports "created"; without it the
   init sets up in the container's cgroup (crun and runc do so).  arrive is
   a no-op when nothing was prepared (the parent moved the child by pid),
   leave fails harmlessly (the init stays in), enter is a no-op unless
   leave succeeded.  */
int sbx_cgroup_stage_prepare (sbx_cgroup *cg, bool limited, bool nodes, sbx_error **err);
/* Late placement (v1 and hybrid hosts, the cgroupfs driver): make_early
   makes only the unified hierarchy's cgroup (none on pure v1), for the
   init to be born in, so that the v1 hierarchies (13 directories and
   their parents: a millisecond) are made by sbx_cgroup_make while the
   init already mounts its rootfs.  stage_prepare then opens the files
   after the clone, which reach the init over the sync socket: stage_fds
   lists them (at most 2n, with a text saying which slot each fills) and
   the init's stage_adopt takes them, to arrive before its cgroup
   namespace and cgroup mounts.  stage_ready is true from make_early on
   (the init moves itself in).  stage_adopt takes every fd given: adopted,
   or closed on failure.  */
bool sbx_cgroup_can_be_late (const sbx_cgroup *cg);
int sbx_cgroup_make_early (sbx_cgroup *cg, sbx_error **err);
bool sbx_cgroup_is_late (const sbx_cgroup *cg);
size_t sbx_cgroup_stage_fds (const sbx_cgroup *cg, int *fds, size_t max, char **slots);
int sbx_cgroup_stage_adopt (sbx_cgroup *cg, const int *fds, size_t nfds, const char *slots, sbx_error **err);
bool sbx_cgroup_stage_ready (const sbx_cgroup *cg);
int sbx_cgroup_stage_arrive (sbx_cgroup *cg, bool born_in_v2, sbx_error **err);
int sbx_cgroup_stage_leave (sbx_cgroup *cg, sbx_error **err);
int sbx_cgroup_stage_enter (sbx_cgroup *cg, sbx_error **err);
/* The container's cgroup.procs, one O_WRONLY fd per hierarchy (*n of them,
   malloc'd array), for a process to move itself in with
   sbx_cgroup_procs_enter_self from where paths do not reach (namespaces,
   another root): as for staging, open-time credentials decide.  Such fds
   are host files: close them before anything of the container can see
   the holder.  subs (exec --cgroup, nsubs of them) pick sub-cgroups that
   must exist: "PATH" in every hierarchy, "CONTROLLER[,CONTROLLER...]:PATH"
   in the v1 hierarchies of those controllers (winning over PATH); PATH is
   relative to the container's cgroup and may not leave it.  */
int sbx_cgroup_procs_open (sbx_cgroup *cg, char *const *subs, size_t nsubs, int **fds, size_t *n,
                           sbx_error **err);
int sbx_cgroup_procs_enter_self (const int *fds, size_t n, sbx_error **err);
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
/* The same for the cgroup of a saved description (sbx_cgroup_describe);
   false if it cannot be loaded.  */
bool sbx_cgroup_saved_is_frozen (const char *saved);
/* Counters for `sbxrun events --stats`; what the host cannot give stays 0
   (has_* false).  CPU times in nanoseconds, memory in bytes.  The arrays
   are malloc'd: release with sbx_cgroup_stats_release.  */
typedef struct
{
  uint64_t major, minor;
  const char *op; /* "Read", "Write", "Sync", "Async", "Discard", "Total" (static strings) */
  uint64_t value;
} sbx_cgroup_blkio_entry;

typedef struct
{
  char page_size[16]; /* "2MB", "1GB" */
  uint64_t usage, max_usage, failcnt;
} sbx_cgroup_hugetlb_stat;

typedef struct
{
  bool has_cpu, has_memory, has_pids, has_blkio;
  uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
  uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_ns;
  uint64_t *cpu_percpu_ns; /* v1 cpuacct.usage_percpu */
  size_t cpu_ncpu;
  uint64_t memory_usage, memory_max_usage, memory_limit; /* limit 0 = unlimited */
  uint64_t memory_swap_usage, memory_swap_limit, memory_failcnt;
  uint64_t memory_cache;                /* page cache (v1 "cache", v2 "file") */
  uint64_t memory_kernel_usage;         /* v1 memory.kmem.usage_in_bytes, v2 "kernel" */
  uint64_t memory_oom, memory_oom_kill; /* memory.events (v2) / oom_control (v1) */
  char **memory_stat_keys;              /* memory.stat, as it reads */
  uint64_t *memory_stat_values;
  size_t memory_stat_len;
  uint64_t pids_current, pids_limit;               /* limit 0 = unlimited */
  sbx_cgroup_blkio_entry *blkio_bytes, *blkio_ios; /* io_service_bytes / io_serviced */
  size_t blkio_bytes_len, blkio_ios_len;
  sbx_cgroup_hugetlb_stat *hugetlb;
  size_t hugetlb_len;
} sbx_cgroup_stats;
int sbx_cgroup_get_stats (sbx_cgroup *cg, sbx_cgroup_stats *st, sbx_error **err);
void sbx_cgroup_stats_release (sbx_cgroup_stats *st);

/* OOM notifications (`sbxrun events`): v1 an eventfd registered through
   cgroup.event_control for memory.oom_control, v2 an inotify watch of
   memory.events.  The fd polls readable when something may have happened;
   then sbx_cgroup_oom_read says how many new OOM events there were.  */
typedef struct sbx_cgroup_oom_watch sbx_cgroup_oom_watch;
int sbx_cgroup_oom_watch_open (sbx_cgroup *cg, sbx_cgroup_oom_watch **out, sbx_error **err);
int sbx_cgroup_oom_watch_fd (const sbx_cgroup_oom_watch *w);
/* Drain the fd (non-blocking) and count new events since the last call.  */
int sbx_cgroup_oom_read (sbx_cgroup_oom_watch *w, uint64_t *n_new, sbx_error **err);
void sbx_cgroup_oom_watch_free (sbx_cgroup_oom_watch *w);

/* The runtime-spec's default devices (null, zero, full, random, urandom,
   tty, ptmx, the pts nodes) and mknod of every node, appended to a non-empty
   linux.resources.devices so that they stay usable whatever the user's
   rules deny.  */
void sbx_cgroup_add_default_devices (oci_resources *r);

/* The host's mounted cgroup hierarchies, for a container's cgroup mount
   that repeats them (fs/mounts.c).  A mount that another covers (a tmpfs
   over cgroup2 at unified) is left out: statfs decides what is there.  */
typedef struct
{
  char *name; /* its entry under base, e.g. "cpu" or "unified" */
  char *path; /* host mount point */
  char *opts; /* v1: the options that mount the same hierarchy again (no rw/ro,
                 no release_agent); v2: NULL */
  char *own;  /* host directory of the caller's own cgroup in it (from
                 /proc/self/cgroup; path when not found) */
  bool v2;
  bool in_base; /* directly under base (a hierarchy the tmpfs repeats) */
} sbx_cgroup_host_hierarchy;

typedef struct
{
  sbx_cgroup_host_hierarchy *h;
  size_t n;
  char *base; /* host directory holding the v1 hierarchies; NULL without v1 */
  size_t nv1;
} sbx_cgroup_host_layout;

/* self_cgroup: the /proc/self/cgroup text the own directories come from
   (NULL: read it now).  */
int sbx_cgroup_host_layout_read (sbx_cgroup_host_layout *l, const char *self_cgroup, sbx_error **err);
/* The init joined another mount namespace: the runtime's mountinfo, which
   sbx_cgroup_host_layout_read reuses otherwise, says nothing of it.  */
void sbx_cgroup_forget_mountinfo (void);
void sbx_cgroup_host_layout_free (sbx_cgroup_host_layout *l);

/* Kill what is left and remove the cgroup(s); succeeds if already gone.  */
int sbx_cgroup_destroy (sbx_cgroup *cg, sbx_error **err);
void sbx_cgroup_free (sbx_cgroup *cg);

#endif
