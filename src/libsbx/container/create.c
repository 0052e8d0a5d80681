/* container/create.c - create (the runtime side; the child side is init.c)
 * and run (create, start and supervise in one).  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "container/init_internal.h"
#include "core/core.h"
#include "egress/egress.h"
#include "fs/fs.h"
#include "process/process.h"
#include "security/security.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* ---------------------------------------------------------------- helpers */

static void
creator_release (sbx_creator *cr)
{
  /* normally closed right after the spawn already (run takes c after) */
  sbx_bind_sources_close (cr->bind_trees, cr->bind_trees && cr->c ? cr->c->mounts_len : 0);
  sbx_bind_sources_close (cr->dev_trees, cr->dev_trees && cr->c ? sbx_fs_dev_nodes_len (cr->c) : 0);
  oci_config_free (cr->c);
  free (cr->bundle);
  free (cr->rootfs);
  sbx_state_free (cr->state);
  sbx_cgroup_free (cr->cg);
  sbx_seccomp_free (cr->sc);
  sbx_landlock_free (cr->landlock);
  sbx_process_ns_plan_close (&cr->plan);
  if (cr->sync_parent >= 0)
    close (cr->sync_parent);
  if (cr->sync_child >= 0)
    close (cr->sync_child);
  if (cr->start_listen >= 0)
    close (cr->start_listen);
  if (cr->overlay_fd >= 0)
    close (cr->overlay_fd);
  free (cr->bind_trees);
  free (cr->dev_trees);
}

/* A unix socket address for `name` inside a directory fd: through
   /proc/self/fd, so long state paths never overflow sun_path.  */
socklen_t
sbx_dir_sockaddr (int dirfd, const char *name, struct sockaddr_un *sa)
{
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  snprintf (sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dirfd, name);
  return sizeof *sa;
}

int
sbx_write_pid_file (const char *path, pid_t pid, sbx_error **err)
{
  cleanup_free char *d = xstrdup (path);
  cleanup_close int dfd = -1;
  char *slash = strrchr (d, '/'), buf[32];
  const char *base = slash ? slash + 1 : d;
  int n = snprintf (buf, sizeof buf, "%d", pid);

  if (*base == '\0' || strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
    return sbx_error_set (err, EINVAL, "pid file `%s`: not a file name", path);
  /* The directory is the caller's choice and is resolved like any path
     they give (/var/run -> /run); only what is created in it is guarded
     (see sbx_write_file_atomic): a symlink at the final name is replaced,
     never written through.  */
  if (slash)
    *slash = '\0';
  dfd = open (slash ? (*d ? d : "/") : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return sbx_error_sys (err, "pid file `%s`: directory", path);
  if (sbx_write_file_atomic (dfd, base, buf, n, 0644, err) < 0)
    return sbx_error_wrap (err, "pid file `%s`", path);
  return 0;
}

static bool
any_idmapped_mount (const oci_config *c)
{
  for (size_t i = 0; i < c->mounts_len; i++)
    if (c->mounts[i] && sbx_fs_mount_idmapped (c->mounts[i]))
      return true;
  return false;
}

/* upper/ and work/ in the state dir and the detached overlay the init
   attaches (fs.h).  */
static int
make_overlay (sbx_creator *cr, sbx_error **err)
{
  cleanup_free char *upper = xasprintf ("%s/" SBX_OVERLAY_UPPER, cr->state->dir);
  cleanup_free char *work = xasprintf ("%s/" SBX_OVERLAY_WORK, cr->state->dir);
  if (sbx_fs_overlay_dirs (cr->state->dir_fd, cr->rootfs, err) < 0)
    return -1;
  cr->overlay_fd = sbx_fs_overlay_mount_fd (cr->rootfs, upper, work, err);
  return cr->overlay_fd < 0 ? -1 : 0;
}

/* --from-snapshot: fill the state dir from the snapshot (fs.h); a whole
   rootfs copy becomes the container's rootfs.  */
static int
fork_snapshot (const sbx_create_opts *o, sbx_creator *cr, sbx_error **err)
{
  char *forked_root = NULL;
  bool flag_overlay = cr->overlay;
  if (sbx_fs_snapshot_fork (o->root, o->from_snapshot, cr->state->dir_fd, cr->state->dir, cr->rootfs,
                            &cr->overlay, &forked_root, err)
      < 0)
    return -1;
  if (cr->overlay && !(cr->plan.new_flags & CLONE_NEWNS))
    return sbx_error_set (err, EINVAL,
                          "--from-snapshot: an overlay snapshot needs a new mount namespace in "
                          "linux.namespaces");
  if (forked_root == NULL)
    return 0;
  if (flag_overlay)
    {
      free (forked_root);
      return sbx_error_set (err, EINVAL,
                            "--from-snapshot `%s`: a whole-rootfs snapshot cannot be used with "
                            "--overlay or " SBX_OVERLAY_ANNOTATION,
                            o->from_snapshot);
    }
  free (cr->rootfs);
  cr->rootfs = forked_root;
  free (cr->state->st->rootfs);
  cr->state->st->rootfs = xstrdup (forked_root);
  return 0;
}

static char *
state_json_for_hooks (sbx_creator *cr, const char *status)
{
  return sbx_state_json (cr->state, cr->c, status, false);
}

static int
run_hooks (sbx_creator *cr, const char *kind, oci_hook *const *h, size_t n, const char *status,
           sbx_error **err)
{
  cleanup_free char *json = NULL;
  if (n == 0)
    return 0;
  json = state_json_for_hooks (cr, status);
  return sbx_process_hooks_run (kind, h, n, json, err);
}

static pid_t
spawn_init (sbx_creator *cr, int *pidfd, sbx_error **err)
{
  struct clone_args ca
      = { .flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)pidfd, .exit_signal = SIGCHLD };
  cleanup_close int own_pidns = -1, own_timens = -1;
  pid_t pid;

  /* The time and cgroup namespaces are made by the child: time offsets must
     be written before anyone enters, and the cgroup namespace must be rooted
     at the container's cgroup, which v1 can only join after clone.  A pid
     namespace joined by path is joined by the child for its own child (the
     init proper), so that no neighbour sees the setup (init.c).  */
  ca.flags |= cr->plan.new_flags & ~(CLONE_NEWTIME | CLONE_NEWCGROUP);
  for (size_t i = 0; i < cr->plan.njoin; i++)
    if (cr->plan.join_types[i] == CLONE_NEWPID && !cr->fork_init)
      {
        /* A kernel that cannot mount procfs for another pid namespace:
           the init is born in it and sets up there, seen by the
           neighbours.  Go back to our own namespace right after the clone
           so that the hooks we run later stay in the runtime's.  */
        own_pidns = open ("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_pidns < 0)
          return sbx_error_sys (err, "open /proc/self/ns/pid");
        if (setns (cr->plan.join_fds[i], CLONE_NEWPID) < 0)
          return sbx_error_sys (err, "join pid namespace");
      }
    else if (cr->plan.join_types[i] == CLONE_NEWTIME)
      {
        /* Likewise a time namespace: it too applies to our children.  */
        own_timens = open ("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
        if (own_timens < 0)
          return sbx_error_sys (err, "open /proc/self/ns/time");
        if (setns (cr->plan.join_fds[i], CLONE_NEWTIME) < 0)
          return sbx_error_sys (err, "join time namespace");
      }
  /* systemd places it (sbx_cgroup_placed_by_systemd): born in ours */
  pid = sbx_process_spawn_in_cgroup (&ca, cr->cg && !sbx_cgroup_placed_by_systemd (cr->cg) ? cr->cg : NULL,
                                     "the container process", err);
  if (pid == 0)
    {
      cr->born_in_v2 = (ca.flags & CLONE_INTO_CGROUP) != 0;
      sbx_init_main (cr);
    }
  if (((own_pidns >= 0 && setns (own_pidns, CLONE_NEWPID) < 0)
       || (own_timens >= 0 && setns (own_timens, CLONE_NEWTIME) < 0))
      && pid > 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      return sbx_error_sys (err, "return to the runtime's pid/time namespace");
    }
  return pid;
}

int
sbx_receive_pty (int sync, const char *console_socket, int *pty_out, sbx_error **err)
{
  cleanup_close int pty = -1;

  if (sbx_process_sync_expect (sync, SYNC_PTY, &pty, err) < 0)
    return -1;
  if (console_socket)
    {
      cleanup_close int cs = sbx_unix_connect (console_socket, err);
      if (cs < 0 || sbx_process_send_fd (cs, pty, "/dev/ptmx", err) < 0)
        return sbx_error_wrap (err, "--console-socket `%s`", console_socket);
      *pty_out = -1;
      return 0;
    }
  /* Foreground: the process starts at the size of our terminal.  */
  struct winsize ws;
  if (ioctl (0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
    ioctl (pty, TIOCSWINSZ, &ws);
  *pty_out = steal_fd (&pty);
  return 0;
}

/* Kill and reap a half-created init.  */
static void
kill_init (pid_t pid, int pidfd)
{
  if (pid <= 0)
    return;
  if (pidfd >= 0)
    syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  else
    kill (pid, SIGKILL);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

/* The kernel charges a memory cgroup in per-CPU batches of 64 pages: the
   first charge of an empty cgroup whose limit is at least that takes the
   whole batch into one CPU's cache, and a charge from another CPU then
   finds no room and OOM-kills before the cache is drained (asynchronous).
   Measured with /bin/true under 256 KiB on a busy 2-CPU host: 3 runs in 60
   killed during setup, none under 252 KiB.  So while the init sets up in
   the container's cgroup, a limit within a few batches is held just below
   one batch (stricter, never looser), which makes every charge exact; the
   configured limit is back before "created".  Returns the limit to
   restore, or 0.  */
static int64_t
setup_memory_cap (const oci_resources *r, int64_t *cap)
{
  int64_t batch = 64 * (int64_t)sysconf (_SC_PAGESIZE);
  const oci_memory *m = r ? r->memory : NULL;
  if (m == NULL || !m->has_limit || m->limit < batch || m->limit >= 4 * batch)
    return 0;
  *cap = batch - sysconf (_SC_PAGESIZE);
  return m->limit;
}

/* Limits that the runtime's own setup could run into: then the init sets
   up outside the cgroups that carry them (cgroup.h, staging).  */
static bool
setup_limited (const oci_resources *r)
{
  const oci_memory *m = r ? r->memory : NULL;
  if (m && ((m->has_limit && m->limit > 0) || (m->has_swap && m->swap > 0)))
    return true;
  return r && r->pids && r->pids->limit > 0;
}

static int
set_memory_limit (sbx_cgroup *cg, int64_t limit, sbx_error **err)
{
  oci_memory m = { .limit = limit, .has_limit = true };
  oci_resources r = { .memory = &m };
  return sbx_cgroup_apply (cg, &r, err);
}

/* A pid namespace joined by path: the setup process *pid forks the init
   into it (init.c fork_init) and exits.  The init is our child: put it in
   the container's cgroup by pid (it holds no cgroup fd), take it as the
   container process and let it go on.  */
static int
take_forked_init (sbx_creator *cr, pid_t *pid, int *pidfd, sbx_error **err)
{
  cleanup_free char *text = NULL;
  long long n;
  pid_t init;
  int fd;

  if (sbx_process_sync_expect_text (cr->sync_parent, SYNC_CHILD_PID, NULL, &text, err) < 0)
    return -1;
  if (sbx_parse_int64 (text, &n) < 0 || n <= 0)
    return sbx_error_set (err, EPROTO, "create: bad pid `%s` from the setup process", text);
  init = (pid_t)n;
  /* Not reaped, so the pid is still this child's.  */
  fd = sbx_pidfd_open (init);
  if (fd < 0)
    {
      sbx_error_sys (err, "pidfd_open the container process");
      kill (init, SIGKILL);
      waitpid (init, NULL, 0);
      return -1;
    }
  kill_init (*pid, *pidfd); /* it exited, or will at once: reap it */
  close (*pidfd);
  *pid = init;
  *pidfd = fd;
  cr->state->st->pid = init;
  if (cr->cg && sbx_cgroup_enter (cr->cg, init, err) < 0)
    return -1;
  return sbx_process_sync_send (cr->sync_parent, SYNC_GO, -1, err);
}

/* An unprivileged caller that may not make the container's cgroup (no
   delegated subtree): like runc, run without one when nothing asks for a
   limit, and refuse when linux.resources does (docs/rootless.md); never
   after the user's systemd refused (--systemd-cgroup, as runc).  Returns
   1 to go on without a cgroup, or <0 with ERR.  */
static int
rootless_without_cgroup (const sbx_create_opts *o, sbx_creator *cr, sbx_error **err)
{
  int e = (*err)->errno_;
  if (!o->rootless || o->systemd_cgroup || (e != EACCES && e != EPERM && e != EROFS))
    return -1;
  cleanup_free char *limits = sbx_cgroup_limits_named (cr->c->linux ? cr->c->linux->resources : NULL);
  if (limits)
    return sbx_error_set (err, 0,
                          "linux.resources: %s requested, but an unprivileged caller has no writable "
                          "cgroup to apply them in (%s: %s); remove them, or run where a cgroup "
                          "subtree is delegated to the user",
                          limits, (*err)->msg, strerror (e));
  sbx_warn ("rootless: no writable cgroup (%s: %s): the container runs without memory, cpu, pids "
            "and I/O limits, and cannot be paused or updated",
            (*err)->msg, strerror (e));
  sbx_error_freep (err);
  sbx_cgroup_destroy (cr->cg, NULL);
  sbx_cgroup_free (cr->cg);
  cr->cg = NULL;
  free (cr->state->st->cgroup);
  cr->state->st->cgroup = NULL;
  return sbx_state_save (cr->state, err) < 0 ? -1 : 1;
}

/* Rootless on cgroup v1 with some hierarchies delegated: the container is
   in those only (sbx_cgroup_allow_partial); say once which it is not in.
   The saved description then lists them, for update's and pause's
   messages.  */
static int
rootless_partial_cgroup (sbx_creator *cr, sbx_error **err)
{
  cleanup_free char *left = sbx_cgroup_left_out (cr->cg);
  if (left == NULL)
    return 0;
  sbx_warn ("rootless: %s", left);
  free (cr->state->st->cgroup);
  cr->state->st->cgroup = sbx_cgroup_describe (cr->cg);
  return sbx_state_save (cr->state, err);
}

/* linux.resources into the container's new cgroup, the memory limit held
   at *restore_limit's cap (setup_memory_cap).  */
static int
apply_resources (sbx_creator *cr, int64_t *restore_limit, sbx_error **err)
{
  oci_resources *r = cr->c->linux ? cr->c->linux->resources : NULL;
  int64_t cap = 0;

  if (r)
    {
      sbx_cgroup_add_default_devices (r);
      if (sbx_cgroup_apply (cr->cg, r, err) < 0)
        return -1;
      *restore_limit = setup_memory_cap (r, &cap);
      if (*restore_limit && set_memory_limit (cr->cg, cap, err) < 0)
        return sbx_error_wrap (err,
                               "linux.resources.memory.limit: hold it below one charge batch during setup");
    }
  return 0;
}

/* Rootless --systemd-cgroup where the container process could not be
   cloned into the unit's cgroup (sbx_cgroup_placed_by_systemd): systemd
   starts the unit with it, before it sets anything up (it waits for
   SYNC_GO), then the limits as in prepare.  No staging: the init sets up
   inside its cgroup, under its limits (as runc's and crun's do), since
   the way back to the runtime's cgroup is as closed as the way in.  */
static int
place_by_systemd (sbx_creator *cr, pid_t pid, int64_t *restore_limit, sbx_error **err)
{
  if (sbx_cgroup_make_with (cr->cg, pid, err) < 0)
    return -1;
  sbx_test_kill_point ("create:cgroup");
  if (apply_resources (cr, restore_limit, err) < 0)
    return -1;
  sbx_test_kill_point ("create:resources");
  return 0;
}

/* The made cgroup's staging files (the init moves itself in through them:
   cgroup.h) and limits.  *staged: false when the files could not be
   opened, and the init must be placed by pid.  */
static int
stage_and_limit (sbx_creator *cr, bool *staged, int64_t *restore_limit, sbx_error **err)
{
  const oci_resources *r = cr->c->linux ? cr->c->linux->resources : NULL;
  bool nodes = r && r->devices_len && cr->c->linux->devices_len;
  cleanup_error sbx_error *e = NULL;

  *staged = sbx_cgroup_stage_prepare (cr->cg, setup_limited (r), nodes, &e) == 0;
  if (!*staged)
    sbx_debug ("cgroup: the runtime places the init by pid: %s", e->msg);
  return apply_resources (cr, restore_limit, err);
}

/* Late placement (cgroup.h): on v1 and hybrid hosts the v1 cgroups are
   made while the init mounts its rootfs, which it stops only before its
   cgroup namespace and cgroup mounts.  Only where the init needs nothing of
   them before: no user namespace (its maps, its own moves), no pid
   namespace joined by path (fork_init), no host root, no CPU affinity for
   the setup (joining a cpuset resets it), no snapshot or carried rootfs.  */
static bool
late_cgroup_wanted (const sbx_create_opts *o, const sbx_creator *cr)
{
  const oci_config *c = cr->c;
  return sbx_cgroup_can_be_late (cr->cg) && !o->rootless && !o->systemd_cgroup && !o->from_snapshot
         && !o->carry && !((cr->plan.new_flags | cr->plan.join_flags) & CLONE_NEWUSER) && !cr->fork_init
         && !cr->host_root && (cr->plan.new_flags & CLONE_NEWNS)
         && !(c->process && c->process->exec_cpu_affinity);
}

/* The rest of late placement, once the init runs: the v1 cgroups, their
   limits, and the files the init moves itself in through (SYNC_CGROUP).  */
static int
late_cgroup (sbx_creator *cr, pid_t pid, int64_t *restore_limit, sbx_error **err)
{
  cleanup_free char *slots = NULL;
  int fds[SBX_MAX_SEND_FDS];
  bool staged;
  size_t n;

  if (sbx_cgroup_make (cr->cg, err) < 0)
    return -1;
  sbx_test_kill_point ("create:cgroup");
  if (stage_and_limit (cr, &staged, restore_limit, err) < 0
      || (!staged && sbx_cgroup_enter (cr->cg, pid, err) < 0))
    return -1;
  sbx_test_kill_point ("create:resources");
  n = sbx_cgroup_stage_fds (cr->cg, fds, SBX_MAX_SEND_FDS, &slots);
  {
    /* An init that failed meanwhile has hung up: its error waits to be
       read where the runtime expects its next step.  */
    cleanup_error sbx_error *se = NULL;
    int sr = sbx_process_sync_send_fds (cr->sync_parent, SYNC_CGROUP, fds, n, slots, &se);
    if (sr < 0 && sr != SBX_SYNC_HUNG_UP)
      {
        if (err)
          *err = steal_ptr (se);
        return -1;
      }
  }
  return 0;
}

/* Everything of create before the init exists: the config checked, the
   state directory with the saved config, the cgroup with its limits (the
   memory limit held at *restore_limit's cap, see setup_memory_cap).  */
static int
prepare (const sbx_create_opts *o, sbx_creator *cr, sbx_net_policy **npp, int64_t *restore_limit,
         sbx_error **err)
{
  oci_config *c;
  sbx_net_policy *np = NULL;
  cleanup_net_policy sbx_net_policy *pod = NULL;
  cleanup_cgroup sbx_cgroup *cg = NULL;

  if (sbx_create_load_config (o, cr, err) < 0)
    return -1;
  c = cr->c;
  sbx_process_hooks_set_output (c);
  if (sbx_id_validate (o->id, err) < 0)
    return -1;
  if (sbx_container_find_pod_policy (o->root, o->id, c, &pod, err) < 0)
    return -1;
  if (sbx_net_policy_parse (c, cr->bundle, cr->rootfs, steal_ptr (pod), &np, err) < 0)
    return sbx_error_wrap (err, "config.json");
  *npp = np;
  sbx_net_policy_annotate (np, c);
  cr->packet_guard = np != NULL;
  if (sbx_landlock_parse (c, false, &cr->landlock, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (cr->landlock)
    sbx_config_annotate (c, SBX_LANDLOCK_EFFECTIVE, sbx_landlock_effective (cr->landlock));
  if (c->linux && c->linux->seccomp)
    {
      cleanup_free char *cache = xasprintf ("%s/.seccomp-cache", o->root);
      /* The cache sits in the root: trust the root first (state_create checks it again).  */
      cleanup_close int rfd = sbx_open_private_dir (o->root, true, "state root (--root)", err);
      if (rfd < 0)
        return -1;
      if (sbx_process_annotation_on (c, SBX_ANN_SECCOMP_FAIL_UNKNOWN)
          && sbx_seccomp_check_names (c->linux->seccomp, err) < 0)
        return sbx_error_wrap (err, "config.json");
      if (sbx_seccomp_prepare (c->linux->seccomp, cache, &cr->sc, err) < 0)
        return sbx_error_wrap (err, "config.json");
    }
  /* From here status.json is the journal (state.h): phase "creating",
     each resource recorded before it is made, so that a runtime killed
     at any point leaves what delete --force can remove.  */
  if (sbx_state_create (o->root, o->id, &cr->state, err) < 0)
    return -1;
  cr->state->st->bundle = xstrdup (cr->bundle);
  cr->state->st->rootfs = xstrdup (cr->rootfs);
  cr->state->st->created = sbx_now_rfc3339 ();
  cr->state->st->systemd_cgroup = o->systemd_cgroup;
  cr->state->st->has_systemd_cgroup = true;
  /* The cgroup is planned (nothing made yet) before the first write, so
     that write records it too; ours (cr->cg, which a failed create
     destroys) only once that write has claimed the id: a create that
     loses the id to another must not remove that one's cgroup.  */
  if (sbx_cgroup_host_mode () != SBX_CGROUP_NONE)
    {
      if (sbx_cgroup_plan (o->id, c->linux ? c->linux->cgroups_path : NULL, o->systemd_cgroup, o->rootless,
                           &cg, err)
          < 0)
        return -1;
      if (sbx_cgroup_check_existing (cg, err) < 0)
        return -1;
      sbx_container_share_pod_cgroup (o->root, o->id, c, cg);
      cr->state->st->cgroup = sbx_cgroup_describe (cg);
    }
  /* The owner's name for the hooks' state, which the init (no state
     directory there, and no NSS lookups in the container) cannot find.  */
  if (c->hooks)
    sbx_state_owner (cr->state);
  if (sbx_state_save (cr->state, err) < 0)
    return -1;
  cr->cg = steal_ptr (cg);
  sbx_test_kill_point ("create:state");
  {
    size_t len;
    cleanup_free char *json = ocispec_generate (&oci_config_type, c, false, &len);
    if (sbx_write_file_atomic (cr->state->dir_fd, "config.json", json, len, 0600, err) < 0)
      return sbx_error_wrap (err, "save config");
  }
  if (cr->cg)
    {
      sbx_test_kill_point ("create:cgroup-recorded");
      if (o->rootless)
        sbx_cgroup_allow_partial (cr->cg);
      if (sbx_cgroup_placed_by_systemd (cr->cg))
        sbx_debug ("cgroup: systemd places the container process: the unit comes once it exists");
      else if (late_cgroup_wanted (o, cr))
        {
          /* the unified one, to be born in; the rest in late_cgroup */
          if (sbx_cgroup_make_early (cr->cg, err) < 0)
            return -1;
        }
      else
        {
          if (sbx_cgroup_make (cr->cg, err) < 0)
            {
              int r = rootless_without_cgroup (o, cr, err);
              if (r <= 0)
                return r;
            }
          else if (rootless_partial_cgroup (cr, err) < 0)
            return -1;
          sbx_test_kill_point ("create:cgroup");
          bool staged; /* unstaged: spawn_init places it by pid */
          if (cr->cg && stage_and_limit (cr, &staged, restore_limit, err) < 0)
            return -1;
          sbx_test_kill_point ("create:resources");
        }
    }
  if (o->from_snapshot && fork_snapshot (o, cr, err) < 0)
    return -1;
  if (o->carry && sbx_container_carry_in (o->carry, cr->state, &cr->rootfs, err) < 0)
    return -1;
  if (cr->overlay && make_overlay (cr, err) < 0)
    return -1;
  return sbx_state_save (cr->state, err);
}

/* The init's network namespace (our child, not reaped).  */
static int
open_netns (pid_t pid, sbx_error **err)
{
  char p[64];
  int fd;
  snprintf (p, sizeof p, "/proc/%d/ns/net", pid);
  fd = open (p, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open the container's network namespace `%s`", p);
  return fd;
}

/* The maps of the container's user namespace (both NULL without one),
   recorded for exec: what create sees now, before any container code can
   change its namespace.  A rootless runtime may not read a joined one's
   (it is then left out).  */
static int
userns_maps (sbx_creator *cr, char **uid_map, char **gid_map, sbx_error **err)
{
  sbx_status_file *st = cr->state->st;
  if (!((cr->plan.new_flags | cr->plan.join_flags) & CLONE_NEWUSER))
    return 0;
  if ((cr->plan.join_flags & CLONE_NEWUSER) && cr->o->rootless)
    return 0;
  if (sbx_fs_userns_maps (cr->c, uid_map, gid_map, err) < 0)
    return -1;
  free (st->uid_map), free (st->gid_map);
  st->uid_map = *uid_map ? xstrdup (*uid_map) : NULL;
  st->gid_map = *gid_map ? xstrdup (*gid_map) : NULL;
  return 0;
}

/* The rootfs bind the init makes without a mount namespace of its own,
   journalled before it exists: its namespace (the runtime's or the one
   joined by path) and the mount under it.  */
static int
save_host_root (void *data, sbx_error **err)
{
  if (sbx_state_save (data, err) < 0)
    return -1;
  sbx_test_kill_point ("create:host-root");
  return 0;
}

static int
record_host_root (sbx_creator *cr, sbx_error **err)
{
  int nsfd = -1;
  for (size_t i = 0; i < cr->plan.njoin; i++)
    if (cr->plan.join_types[i] == CLONE_NEWNS)
      nsfd = cr->plan.join_fds[i];
  return sbx_fs_host_root_record (cr->state->st, cr->c, cr->rootfs, nsfd, save_host_root, cr->state, err);
}

/* Everything of create up to "created".  On success the init is blocked on
   start.sock; *pidfd and *pty (or -1) are for run.  */
static int
do_create (const sbx_create_opts *o, sbx_creator *cr, pid_t *pid_out, int *pidfd_out, int *pty_out,
           sbx_error **err)
{
  int sp[2];
  struct sockaddr_un sa;
  pid_t pid = -1;
  int pidfd = -1, pty = -1;
  cleanup_close int netns = -1; /* the init's, for netDevices and the egress policy */
  bool moved = false;           /* linux.netDevices went there */
  oci_config *c;
  int64_t restore_limit = 0;                    /* see setup_memory_cap */
  cleanup_net_policy sbx_net_policy *np = NULL; /* org.sbxrun.net.* (egress.h) */
  cleanup_free char *uid_map = NULL, *gid_map = NULL; /* the user namespace's, if any */

  if (prepare (o, cr, &np, &restore_limit, err) < 0)
    return -1;
  c = cr->c;
  cr->start_listen = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (cr->start_listen < 0)
    return sbx_error_sys (err, "socket");
  if (bind (cr->start_listen, (struct sockaddr *)&sa, sbx_dir_sockaddr (cr->state->dir_fd, "start.sock", &sa))
          < 0
      || listen (cr->start_listen, 4) < 0)
    return sbx_error_sys (err, "listen on `%s/start.sock`", cr->state->dir);
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    return sbx_error_sys (err, "socketpair");
  cr->sync_parent = sp[0];
  cr->sync_child = sp[1];

  /* The init's credentials in a new (or joined) user namespace may not
     reach a bind source the runtime can: open them here.  */
  if (((cr->plan.new_flags & CLONE_NEWNS) || cr->host_root)
      && ((cr->plan.new_flags | cr->plan.join_flags) & CLONE_NEWUSER || any_idmapped_mount (c))
      && sbx_bind_sources_open (c, cr->bundle, &cr->bind_trees, err) < 0)
    goto fail;
  if (userns_maps (cr, &uid_map, &gid_map, err) < 0)
    goto fail;
  /* Device nodes with their owner, made where mknod is allowed.  */
  if (((cr->plan.new_flags & CLONE_NEWNS) || cr->host_root) && uid_map && !cr->o->rootless
      && sbx_fs_dev_nodes_open (c, uid_map, gid_map, &cr->dev_trees, err) < 0)
    goto fail;
  if (cr->host_root && record_host_root (cr, err) < 0)
    goto fail;
  pid = spawn_init (cr, &pidfd, err);
  sbx_bind_sources_close (cr->bind_trees, cr->bind_trees ? c->mounts_len : 0);
  sbx_bind_sources_close (cr->dev_trees, cr->dev_trees ? sbx_fs_dev_nodes_len (c) : 0);
  if (pid < 0)
    goto fail;
  close (cr->sync_child);
  cr->sync_child = -1;
  /* Dies with us until "created" (PR_SET_PDEATHSIG), and in the cgroup:
     recorded for a delete that finds no cgroup (none on the host).  */
  cr->state->st->pid = pid;
  cr->state->st->has_pid = true;
  cr->state->st->pid_start = sbx_pid_start_time (pid);
  cr->state->st->has_pid_start = true;
  if (sbx_state_save (cr->state, err) < 0)
    goto fail;
  sbx_test_kill_point ("create:spawned");
  if (cr->cg && sbx_cgroup_placed_by_systemd (cr->cg) && place_by_systemd (cr, pid, &restore_limit, err) < 0)
    goto fail;
  /* A new network namespace exists from the clone: opened now, because an
     unprivileged runtime may only while the init is still dumpable (until
     SYNC_GO, see sbx_init_main).  A joined one, once the init is in it.  */
  if (((c->linux && c->linux->net_devices_len) || np) && (cr->plan.new_flags & CLONE_NEWNET)
      && (netns = open_netns (pid, err)) < 0)
    goto fail;

  if ((cr->plan.new_flags & CLONE_NEWUSER) && sbx_process_ns_write_id_maps (pid, c->linux, cr->o->rootless, err) < 0)
    goto fail;
  /* Our pipes, which the init holds: for process.user as its user
     namespace maps it.  */
  if ((uid_map || !((cr->plan.new_flags | cr->plan.join_flags) & CLONE_NEWUSER))
      && sbx_process_stdio_give (uid_map, c->process, err) < 0)
    goto fail;
  if (sbx_process_sync_send (cr->sync_parent, SYNC_GO, -1, err) < 0)
    goto fail;
  if (cr->cg && sbx_cgroup_is_late (cr->cg) && late_cgroup (cr, pid, &restore_limit, err) < 0)
    goto fail;
  if (sbx_process_sync_expect (cr->sync_parent, SYNC_RUNTIME_HOOKS, NULL, err) < 0)
    goto fail;
  /* Namespaces exist, no container code or hook has run yet.  */
  if (cr->host_root
      && (sbx_fs_host_root_note_bind (cr->state->st, err) < 0 || sbx_state_save (cr->state, err) < 0))
    goto fail;
  sbx_test_kill_point ("create:host-root-bound");
  if (((c->linux && c->linux->net_devices_len) || np) && netns < 0 && (netns = open_netns (pid, err)) < 0)
    goto fail;
  if (c->linux && c->linux->net_devices_len)
    {
      moved = true;
      if (sbx_process_netdev_move_in (c->linux, netns, err) < 0)
        goto fail;
    }
  if (np && sbx_container_net_install (o->root, cr->state, c, np, netns, cr->cg, o->rootless, err) < 0)
    goto fail;
  sbx_test_kill_point ("create:net");
  if (c->hooks)
    {
      /* "created", as the OCI validation suite and other runtimes have it.  */
      if (run_hooks (cr, "prestart", c->hooks->prestart, c->hooks->prestart_len, "created", err) < 0
          || run_hooks (cr, "createRuntime", c->hooks->create_runtime, c->hooks->create_runtime_len,
                        "created", err)
                 < 0)
        goto fail;
    }
  {
    /* The init builds the hooks' state itself (its copy of the config may
       be larger than one message); it only lacks its own host pid.  */
    char buf[32];
    snprintf (buf, sizeof buf, "%d", pid);
    if (sbx_process_sync_send_text (cr->sync_parent, SYNC_HOOKS_DONE, -1, buf, err) < 0)
      goto fail;
  }
  if (cr->fork_init && take_forked_init (cr, &pid, &pidfd, err) < 0)
    goto fail;
  if (c->process && c->process->terminal
      && sbx_receive_pty (cr->sync_parent, o->console_socket, &pty, err) < 0)
    goto fail;
  {
    /* The init takes the container's credentials (and a filter that needs
       CAP_SYS_ADMIN) before "created": a profile refusing what that
       needs kills it here.  */
    cleanup_error sbx_error *e = NULL;
    int r = sbx_process_sync_expect (cr->sync_parent, SYNC_CREATED, NULL, &e);
    if (sbx_expect_outcome (r, &e, pid, c, err) < 0)
      goto fail;
  }
  /* "created": the init is back in its cgroup for good (staging), so a
     new systemd scope holds without its placeholder */
  if (cr->cg && sbx_cgroup_placed (cr->cg, err) < 0)
    goto fail;
  if (restore_limit && set_memory_limit (cr->cg, restore_limit, err) < 0)
    goto fail;
  /* From outside, on the init, which only execs from here: see sched.h.  */
  if (c->process && sbx_process_sched_apply_to (pid, c->process, err) < 0)
    goto fail;
  cr->state->st->pid_start = sbx_pid_start_time (pid);
  cr->state->st->has_pid_start = true;
  if (cr->state->st->pid_start == 0)
    {
      sbx_error_set (err, ESRCH, "the container process %d is gone (or /proc/%d/stat is unreadable)", pid,
                     pid);
      goto fail;
    }
  free (cr->state->st->phase);
  cr->state->st->phase = NULL;
  sbx_test_kill_point ("create:hooks");
  if (sbx_state_save (cr->state, err) < 0)
    goto fail;
  sbx_test_kill_point ("create:created");
  if (o->pid_file && sbx_write_pid_file (o->pid_file, pid, err) < 0)
    goto fail;
  *pid_out = pid;
  *pidfd_out = pidfd;
  *pty_out = pty;
  return 0;

fail:
  if (pty >= 0)
    close (pty);
  sbx_process_netdev_move_out (c->linux, moved ? netns : -1);
  sbx_explain_oom (cr->cg, c, pid, pidfd, "during setup", err);
  kill_init (pid, pidfd);
  if (pidfd >= 0)
    close (pidfd);
  return -1;
}

/* Undo a failed create: nothing may be left behind.  */
static void
create_cleanup (sbx_creator *cr)
{
  if (cr->state) /* egress rules in a namespace joined by path (a pod's: as delete) */
    sbx_container_net_teardown (cr->state, sbx_net_teardown_prepare (cr->state->dir_fd, cr->state->id, 0));
  if (cr->state)
    {
      cleanup_error sbx_error *e = NULL;
      if (sbx_fs_host_root_release (cr->state->st, &e) < 0)
        sbx_warn ("%s", e->msg);
    }
  if (cr->cg)
    sbx_cgroup_destroy (cr->cg, NULL);
  if (cr->state && cr->o->carry)
    sbx_container_carry_back (cr->o->carry, cr->state); /* a failed reset */
  if (cr->state)
    sbx_state_remove (cr->state, NULL);
}

int
sbx_container_create (const sbx_create_opts *o, sbx_error **err)
{
  sbx_creator cr = { .o = o, .sync_parent = -1, .sync_child = -1, .start_listen = -1, .overlay_fd = -1 };
  pid_t pid;
  int pidfd = -1, pty = -1, r;

  r = do_create (o, &cr, &pid, &pidfd, &pty, err);
  if (r < 0)
    create_cleanup (&cr);
  if (pidfd >= 0)
    close (pidfd);
  if (pty >= 0)
    close (pty);
  creator_release (&cr);
  return r;
}

int
sbx_container_prepare (const sbx_create_opts *o, sbx_state **out, sbx_error **err)
{
  sbx_creator cr = { .o = o, .sync_parent = -1, .sync_child = -1, .start_listen = -1, .overlay_fd = -1 };
  cleanup_net_policy sbx_net_policy *np = NULL;
  int64_t restore_limit = 0; /* the caller writes linux.resources again */
  int r = prepare (o, &cr, &np, &restore_limit, err);

  if (r < 0)
    create_cleanup (&cr);
  else
    *out = steal_ptr (cr.state);
  creator_release (&cr);
  return r;
}

/* ---------------------------------------------------------------- run */

int
sbx_container_run (const sbx_create_opts *o, sbx_error **err)
{
  sbx_creator cr = { .o = o, .sync_parent = -1, .sync_child = -1, .start_listen = -1, .overlay_fd = -1 };
  cleanup_close int pidfd = -1, pty = -1;
  pid_t pid;
  int r;

  r = do_create (o, &cr, &pid, &pidfd, &pty, err);
  if (r < 0)
    {
      create_cleanup (&cr);
      creator_release (&cr);
      return -1;
    }
  /* Our own start.sock copy must go, or start would wait on ourselves. */
  close (cr.start_listen);
  cr.start_listen = -1;
  /* From start on, signals are for the container: hold them until the
     supervisor forwards them, so none can kill us while poststart runs.  */
  if (!o->detach)
    {
      sigset_t set;
      sbx_forwarded_signals (&set);
      sigprocmask (SIG_BLOCK, &set, NULL);
    }
  sbx_test_kill_point ("run:created");
  cr.state->config = cr.c; /* what config.json holds: no need to parse it again */
  r = sbx_container_start_locked (cr.state, false, err);
  if (r < 0)
    kill_init (pid, pidfd);
  else
    sbx_test_kill_point ("run:started");
  if (r == 0 && o->detach)
    {
      creator_release (&cr);
      return 0;
    }
  /* Release the lock while the container runs, so that state, kill and
     exec work on it.  */
  {
    char *root = xstrdup (o->root);
    cleanup_oci_config oci_config *saved = steal_ptr (cr.c);
    sbx_state_free (cr.state);
    cr.state = NULL;
    if (r == 0)
      r = sbx_supervise (pid, pidfd, steal_fd (&pty), err);
    creator_release (&cr);
    if (!o->keep)
      {
        cleanup_error sbx_error *e = NULL;
        if (sbx_container_delete_known (root, o->id, true, saved, &e) < 0)
          sbx_warn ("delete after run: %s", e->msg);
      }
    free (root);
  }
  return r;
}
