/* cgroup_internal.h - what the files of src/libsbx/cgroup share, and
 * the pure (text in, values out) helpers the unit tests call directly.
 *
 * A manager is a list of hierarchies.  On a pure cgroup v2 host that is one
 * entry (the unified mount); on a v1/hybrid host one entry per mounted v1
 * hierarchy (named ones such as name=systemd included) plus, when
 * <root>/unified is a cgroup2 mount, that unified hierarchy: processes are
 * placed there too (process tracking, cgroup.kill/cgroup.freeze) and the
 * controllers it carries (hugetlb on some hosts) are driven through it with
 * the v2 file names.  */
#ifndef SBX_CGROUP_INTERNAL_H
#define SBX_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "core/core.h"
#include "ocispec.h"

#define SBX_CGROUP_ROOT "/sys/fs/cgroup"

/* Bounds of the waiting loops (kill, freeze, rmdir), in milliseconds.  */
#define SBX_CG_KILL_TIMEOUT_MS 5000
#define SBX_CG_FREEZE_TIMEOUT_MS 10000
#define SBX_CG_RMDIR_TIMEOUT_MS 2000

typedef struct sbx_cg_hier
{
  bool unified;      /* a cgroup2 hierarchy */
  char *controllers; /* v1: as in /proc/self/cgroup ("cpu,cpuacct", "name=systemd"); v2: "" */
  char *mountpoint;  /* where it is mounted ("/sys/fs/cgroup/memory") */
  char *mount_root;  /* the hierarchy path the mount shows (usually "/") */
  char *own;         /* the calling process's cgroup in this hierarchy */
  char *path;        /* the container's cgroup, hierarchy-relative ("/a/b/ctr") */
  char *dir;         /* its directory: mountpoint + path below mount_root */
  int fd;            /* O_PATH|O_DIRECTORY fd of dir, or -1 (not opened / gone) */
  bool created;      /* create() made dir (so a failed create removes it) */
  size_t made_from;  /* this process made the levels of dir from this length
                        of it on (0: none): realtime budgets go down them */
  bool parent_ours;  /* the parent of dir did not exist at plan time (this create
                        makes it) or is shared so with a pod sandbox: destroy
                        removes it once empty (saved with the description) */
  int refused;       /* v1, rootless: the errno of the mkdir the kernel refused
                        (the hierarchy is then left out, see sbx_cgroup.left) */
  bool early;        /* made by sbx_cgroup_make_early (create skips it) */
} sbx_cg_hier;

typedef struct sbx_cg_systemd sbx_cg_systemd;

struct sbx_cgroup
{
  sbx_cgroup_mode mode;
  /* the systemd driver (cgroup/systemd.c): the unit, the bus (opened when
     needed) and the placeholder holding a new scope until the init is in */
  char *unit;
  /* planned, for sbx_cgroup_make (NULL in a loaded cgroup): the slice,
     the unit's cgroup path that systemd must report, the container id */
  char *slice, *unit_path, *id;
  sbx_cg_systemd *bus;
  bool user_bus; /* the unit is the user's systemd's (rootless): its bus */
  char *placed_from; /* rootless, from a cgroup that may not reach the unit's
                        (sbx_cg_systemd_user_must_place): sbxrun's own
                        cgroup; systemd places the init (make_with) */
  pid_t hold;
  /* the unit existed already (UnitExists): another's, never stopped or
     emptied by this create's cleanup */
  bool foreign;
  int64_t pids_after; /* pids.limit to set once the placeholder is gone (0: none) */
  sbx_cg_hier *h;
  size_t n;
  /* rootless on v1 (sbx_cgroup_allow_partial): the hierarchies where the
     caller may not create the cgroup are moved from h to left by create
     instead of failing it; saved with the description ('x' lines) */
  bool partial_ok;
  sbx_cg_hier *left;
  size_t nleft;
  /* staging of the init (sbx_cgroup_stage_*): cgroup.procs of the
     container's cgroup (in) and of the runtime's own cgroup (out), per
     hierarchy, opened by sbx_cgroup_make; NULL when not prepared */
  int *stage_in, *stage_out;
  bool staged_out;
  bool late; /* sbx_cgroup_make_early: the rest is made after the clone */
};

/* stage.c: close the staging fds (stage_in, stage_out).  */
void sbx_cg_stage_close (sbx_cgroup *cg);

/* ---- discovery (cgroup/discovery.c); every parser takes the text so it is testable */

/* Build the hierarchy list of a host in `mode` from the text of
   /proc/self/cgroup and /proc/self/mountinfo.  root is where cgroup file
   systems live ("/sys/fs/cgroup").  Fills controllers, mountpoint,
   mount_root and own; path and dir stay NULL, fd -1.  */
int sbx_cg_hierarchies_from_text (sbx_cgroup_mode mode, const char *root, const char *proc_cgroup,
                                  const char *mountinfo, sbx_cg_hier **out, size_t *n, sbx_error **err);
/* Remember the mountinfo text the plan was made from, for
   sbx_cgroup_host_layout_read in the init.  */
void sbx_cg_note_mountinfo (const char *text);
/* Resolve linux.cgroupsPath against `own` (the caller's cgroup in one
   hierarchy): absolute -> itself, relative -> below own, NULL/"" ->
   own/sbxrun/<id>.  The result is normalized ("/a/b", no "//", no trailing
   "/").  ".." or "." components, tabs and newlines are rejected, and so is
   the systemd form "slice:prefix:name" (also when systemd_cgroup).  */
int sbx_cg_resolve_path (const char *own, const char *cgroups_path, const char *id, bool systemd_cgroup,
                         char **out, sbx_error **err);
/* mountpoint + (path below mount_root); error if path is outside the mount.  */
int sbx_cg_dir_for (const char *mountpoint, const char *mount_root, const char *path, char **out,
                    sbx_error **err);
void sbx_cg_hiers_free (sbx_cg_hier *h, size_t n);
/* The lines of text (NULL-terminated, malloc'd; empty lines dropped).  */
char **sbx_cg_split_lines (const char *text, size_t *n);
/* cgroupsPath in systemd's "slice:prefix:name" form.  */
bool sbx_cg_is_systemd_form (const char *p);
/* The hierarchy (v1 or unified) carrying controller (e.g. "memory",
   "name=systemd"); NULL if none.  For a unified hierarchy this checks the
   cgroup.controllers file of its mount root.  */
sbx_cg_hier *sbx_cg_find (sbx_cgroup *cg, const char *controller);
sbx_cg_hier *sbx_cg_find_v1 (sbx_cgroup *cg, const char *controller);
sbx_cg_hier *sbx_cg_unified (sbx_cgroup *cg);
/* The left-out hierarchy (sbx_cgroup.left) carrying a v1 controller.  */
const sbx_cg_hier *sbx_cg_find_left (const sbx_cgroup *cg, const char *controller);

/* ---- unit conversions and validation (cgroup/v2.c; device lines in
   cgroup/v1.c) */

/* cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 0 (unset) -> 0.  */
uint64_t sbx_cg_shares_to_weight (uint64_t shares);
/* blkio.weight [10, 1000] -> io.weight [1, 10000]; 0 -> 0.  */
uint64_t sbx_cg_blkio_to_io_weight (uint64_t weight);
/* linux.resources.memory.swap (memory+swap) -> memory.swap.max.
   Returns 1 with *out set (-1 = "max"), 0 when there is nothing to write,
   <0 on invalid combinations.  */
int sbx_cg_swap_v2 (const oci_memory *m, int64_t *out, sbx_error **err);
/* One v1 devices.allow/devices.deny line ("c 1:3 rwm", "a") for rule i.  */
int sbx_cg_device_line (const oci_device_cgroup *d, size_t i, char *buf, size_t len, sbx_error **err);
/* The four blockIO.throttle* lists: v1 file, v2 io.max key, field name
   ("blockIO.throttleReadBpsDevice"); sbx_cg_throttle_list gives list t of b.  */
typedef struct
{
  size_t off_arr, off_len;
  const char *v1_file, *v2_key, *field;
} sbx_cg_throttle_kind;
#define SBX_CG_THROTTLE_KINDS 4
extern const sbx_cg_throttle_kind sbx_cg_throttles[SBX_CG_THROTTLE_KINDS];
oci_blkio_throttle *const *sbx_cg_throttle_list (const oci_blkio *b, size_t t, size_t *len);
/* A linux.resources.unified key must name a file of the cgroup itself.  */
int sbx_cg_check_unified_key (const char *key, sbx_error **err);
/* base + "/" + sub with ".", ".." and empty components resolved as text
   (exec --cgroup); NULL if the result is not base or below it.  */
char *sbx_cg_join_below (const char *base, const char *sub);
/* Is word in list (separated by spaces, commas or newlines)?  */
bool sbx_cg_has_word (const char *list, const char *word);

/* ---- file helpers (cgroup/files.c) */

/* Make sure h->fd is open (O_PATH|O_DIRECTORY of h->dir).  */
int sbx_cg_open (sbx_cg_hier *h, sbx_error **err);
bool sbx_cg_exists (sbx_cg_hier *h, const char *file);
/* One write(2) of value to file.  field (may be NULL) is the config field
   for the message: "linux.resources.<field>: write <file> = <value>".  */
int sbx_cg_write (sbx_cg_hier *h, const char *file, const char *value, const char *field, sbx_error **err);
int sbx_cg_writef (sbx_cg_hier *h, const char *file, const char *field, sbx_error **err, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));
/* Read a file of the cgroup, trailing newline stripped.  */
int sbx_cg_read (sbx_cg_hier *h, const char *file, char **out, sbx_error **err);
int sbx_cg_read_at (int dirfd, const char *file, char **out, sbx_error **err);
/* "key value" lines (cgroup.events, memory.events): the value of key.  */
int sbx_cg_read_keyed (sbx_cg_hier *h, const char *file, const char *key, long long *value, sbx_error **err);
/* mkdir h->dir level by level below the mount (existing levels are fine),
   calling level(parent, dir) for each level, then open h->fd.  */
int sbx_cg_mkdir (sbx_cg_hier *h, int (*level) (const char *parent, const char *dir, sbx_error **err),
                  sbx_error **err);
/* Undo a failed create: remove the leaf directories create() made.  */
void sbx_cg_undo_create (sbx_cgroup *cg);
/* (cgroup/v2.c) Numeric file ("max" reads as 0); false if absent or not a
   number.  */
bool sbx_cg_read_u64 (sbx_cg_hier *h, const char *file, uint64_t *out);
/* Keyed value, 0 if absent.  */
uint64_t sbx_cg_keyed_u64 (sbx_cg_hier *h, const char *file, const char *key);
/* hugepageLimits pageSize: digits + KB/MB/GB (the hugetlb file infix).  */
bool sbx_cg_valid_page_size (const char *s);
/* Write linux.resources.hugepageLimits: hugetlb.<size>.<limit_file> and,
   where the kernel has it, hugetlb.<size>.rsvd.<limit_file> (v1
   "limit_in_bytes", v2 "max").  */
int sbx_cg_hugetlb_write (sbx_cg_hier *h, const oci_resources *r, const char *limit_file, sbx_error **err);
/* Write rdma.max lines for linux.resources.rdma (same format on v1 and v2).  */
int sbx_cg_rdma_write (sbx_cg_hier *h, const oci_resources *r, sbx_error **err);
/* Append the pids of cgroup.procs of h and (recursively) its children.  */
int sbx_cg_collect_pids (sbx_cg_hier *h, pid_t **pids, size_t *n, sbx_error **err);
/* Remove the directory h->dir and its sub-cgroups (retrying on EBUSY for a
   while); ENOENT is success.  */
int sbx_cg_remove (sbx_cg_hier *h, sbx_error **err);
/* Signal every pid of the cgroup once; *seen = how many there were.  */
int sbx_cg_signal_all (sbx_cgroup *cg, int signo, size_t *seen, sbx_error **err);
void sbx_cg_sleep_ms (int ms);

/* ---- stats helpers (cgroup/stats.c) */

/* Read a "key value" file (memory.stat) into st->memory_stat_*.  */
bool sbx_cg_read_stat_map (sbx_cg_hier *h, const char *file, sbx_cgroup_stats *st);
/* The value of key in st->memory_stat_* (0 if absent).  */
uint64_t sbx_cg_stat_value (const sbx_cgroup_stats *st, const char *key);
void sbx_cg_blkio_add (sbx_cgroup_blkio_entry **v, size_t *n, uint64_t major, uint64_t minor, const char *op,
                       uint64_t value);
/* The host's huge page sizes in the hugetlb file infix form ("2MB", "1GB"),
   from /sys/kernel/mm/hugepages; NULL-terminated, malloc'd.  */
char **sbx_cg_hugepage_sizes (void);
void sbx_cg_hugetlb_add (sbx_cgroup_stats *st, const char *size, uint64_t usage, uint64_t max_usage,
                         uint64_t failcnt);

/* ---- v2 device rules as an eBPF program (cgroup/devices_bpf.c) */

struct bpf_insn;
/* Compile linux.resources.devices into a BPF_PROG_TYPE_CGROUP_DEVICE
   program (malloc'd instructions): for each access bit the request has
   (mknod, read, write), the last rule that matches the device and has that
   bit decides; no match allows.  Rules are validated (as for v1).  */
int sbx_cg_devices_compile (oci_device_cgroup *const *rules, size_t n, struct bpf_insn **out, size_t *len,
                            sbx_error **err);
/* Load that program and attach it to h's cgroup (BPF_CGROUP_DEVICE,
   BPF_F_ALLOW_MULTI), then detach the device programs of ours that were
   attached to it before (an earlier create or update; others, such as
   systemd's, stay).  n == 0 detaches all of ours.  */
int sbx_cg_devices_attach (sbx_cg_hier *h, oci_device_cgroup *const *rules, size_t n, sbx_error **err);

/* ---- the systemd driver (cgroup/systemd.c) */

/* "slice:prefix:name" (or NULL/"": system.slice, sbxrun-<id>.scope) -> the
   slice and the unit (a scope "prefix-name.scope", or name if it ends in
   ".slice").  */
int sbx_cg_systemd_parse (const char *cgroups_path, const char *id, char **slice, char **unit,
                          sbx_error **err);
/* "a-b.slice" -> "/a.slice/a-b.slice" ("-.slice" -> "").  */
int sbx_cg_systemd_expand_slice (const char *slice, char **out, sbx_error **err);
/* The cgroup path systemd gives unit in slice (both from
   sbx_cg_systemd_parse).  */
int sbx_cg_systemd_unit_path (const char *slice, const char *unit, char **out, sbx_error **err);
/* Start the planned unit (cg->unit in cg->slice, with a placeholder process
   in cg->hold for a scope, or with init > 0 that process) and wait for it;
   its ControlGroup must be cg->unit_path.  On failure nothing of it is
   left.  */
int sbx_cg_systemd_start (sbx_cgroup *cg, pid_t init, sbx_error **err);
/* The system bus, or with user the caller's user bus
   ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus).  */
int sbx_cg_systemd_open (bool user, sbx_cg_systemd **out, sbx_error **err);
/* Does systemd make (and remove) its units' cgroups in h?  Its own
   hierarchies, and on v1 those of the controllers it supports.  */
bool sbx_cg_systemd_hierarchy (const sbx_cg_hier *h);
/* systemd_user.c: rootless, the unit is the user manager's.  Its slice
   (*slice replaced by user.slice when cgroups_path names none, runc's
   default) and *path, the unit's cgroup below user@UID.service.  */
int sbx_cg_systemd_user_unit (const char *cgroups_path, const char *unit, char **slice, char **path,
                              sbx_error **err);
/* May the caller not place a process into unit_path itself: its own
   cgroup (unified hierarchy) and unit_path meet at a cgroup whose
   cgroup.procs it may not write (a login session's scope and
   user@UID.service meet at root's user-UID.slice)?  Then *own is the
   caller's cgroup (malloc'd).  False also where that cannot be told (no
   unified hierarchy, a cgroup namespace): the kernel decides.  */
bool sbx_cg_systemd_user_must_place (sbx_cgroup *cg, const char *unit_path, char **own);
/* The deepest cgroup two paths share: "/a/b/c" and "/a/b/d" -> "/a/b"
   ("/ab" and "/ac" -> "/").  malloc'd.  */
char *sbx_cg_common_ancestor (const char *a, const char *b);
/* The unified-hierarchy cgroup of pid (0: ours), from /proc/PID/cgroup's
   "0::PATH" line; NULL without one.  malloc'd.  */
char *sbx_cg_unified_of (pid_t pid);
/* Did systemd put pid at want (unified hierarchy)?  EIO naming both if not.  */
int sbx_cg_systemd_landed (const sbx_cgroup *cg, pid_t pid, const char *want, sbx_error **err);
/* Have systemd move pid into unit (AttachProcessesToUnit): rootless from
   a cgroup that may not reach the unit's, for exec.  */
int sbx_cg_systemd_attach (sbx_cg_systemd *s, const char *unit, pid_t pid, sbx_error **err);
/* Is path (hierarchy-relative) inside a user manager's cgroup,
   "/user.slice/.../user@UID.service/..."?  */
bool sbx_cg_systemd_in_user_manager (const char *path);
/* "/user.slice/user-UID.slice/user@UID.service": the cgroup of the user
   manager of the caller (of the host uid its euid maps to).  */
char *sbx_cg_systemd_user_root (void);
/* The unit properties for r (SetUnitProperties, runtime).  */
int sbx_cg_systemd_set (sbx_cg_systemd *s, const char *unit, const oci_resources *r, sbx_error **err);
/* Stop the unit, wait until systemd has unloaded it; a unit already gone is
   success.  */
int sbx_cg_systemd_stop (sbx_cg_systemd *s, const char *unit, sbx_error **err);
void sbx_cg_systemd_close (sbx_cg_systemd *s);
/* Kill and reap the placeholder (cg->hold), if any.  */
void sbx_cg_systemd_release (sbx_cgroup *cg);

/* linux.resources.devices as DeviceAllow= entries (cgroup/systemd_devices.c):
   a superset of what the rules allow (our own filter is the exact one).
   True: DevicePolicy=strict with these entries (*out, *nout; free with
   sbx_cg_sd_devices_free); false: a block list systemd cannot express, so
   DevicePolicy=auto and no entries.  proc_devices: the text of
   /proc/devices (NULL: read it).  */
typedef struct
{
  char *path;     /* /dev/char/1:3, char-pts, block-* ... */
  char access[4]; /* some of "rwm", in that order */
} sbx_cg_sd_device;
bool sbx_cg_systemd_devices (oci_device_cgroup *const *rules, size_t n, const char *proc_devices,
                             sbx_cg_sd_device **out, size_t *nout);
void sbx_cg_sd_devices_free (sbx_cg_sd_device *v, size_t n);

/* ---- backends */

typedef struct
{
  int (*create) (sbx_cgroup *cg, sbx_error **err);
  int (*apply) (sbx_cgroup *cg, const oci_resources *r, sbx_error **err);
  int (*enter) (sbx_cgroup *cg, pid_t pid, sbx_error **err);
  int (*kill) (sbx_cgroup *cg, int signo, sbx_error **err);
  int (*freeze) (sbx_cgroup *cg, bool frozen, sbx_error **err);
  bool (*is_frozen) (sbx_cgroup *cg);
  int (*stats) (sbx_cgroup *cg, sbx_cgroup_stats *st, sbx_error **err);
} sbx_cg_ops;

extern const sbx_cg_ops sbx_cg_v1_ops;
extern const sbx_cg_ops sbx_cg_v2_ops;

/* cgroup/v2.c pieces the v1 backend uses for the unified hierarchy of hybrid
   hosts.  */
/* Enable controllers (NULL-terminated names) in cgroup.subtree_control of
   every ancestor of h->path from the mount root down to its parent, where
   not enabled yet.  The cgroup itself never gets controllers for children,
   so processes can live in it.  */
int sbx_cg_v2_enable (sbx_cg_hier *h, const char *const *ctrls, sbx_error **err);
/* Is controller usable in the cgroup (its cgroup.controllers)?  */
bool sbx_cg_v2_available (sbx_cg_hier *h, const char *controller);
int sbx_cg_v2_apply_hugetlb (sbx_cg_hier *h, const oci_resources *r, sbx_error **err);
int sbx_cg_v2_apply_rdma (sbx_cg_hier *h, const oci_resources *r, sbx_error **err);
/* Write linux.resources.unified; with only_present (hybrid) keys must belong
   to a controller of h.  */
int sbx_cg_v2_apply_unified (sbx_cg_hier *h, const oci_resources *r, bool hybrid, sbx_error **err);
int sbx_cg_v2_freeze_hier (sbx_cg_hier *h, bool frozen, sbx_error **err);
/* hugetlb.<size>.current / .events of every host page size into st.  */
void sbx_cg_v2_hugetlb_stats (sbx_cg_hier *h, sbx_cgroup_stats *st);
bool sbx_cg_v2_is_frozen_hier (sbx_cg_hier *h);

#endif
