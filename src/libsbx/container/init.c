/* init.c - see init.h.  Runs in the new namespaces as the future container
 * process; every failure travels back to the parent as SYNC_ERROR.  */
#include <config.h>
#include "container/init_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs.h"
#include "process/process.h"

/* The container's procfs, opened as soon as it was mounted (procfs.h):
   the later writes to /proc (oom_score_adj, LSM labels) go through it.  */
static int container_procfd = -1;

/* Only sysctls that belong to one of the container's namespaces may be set:
   anything else would change the host.  */
static int
sysctl_allowed (const char *key, int ns, sbx_error **err)
{
  static const char *const ipc_keys[]
      = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem", "kernel.shmall",
          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", NULL };
  int need = 0;
  if (sbx_has_prefix (key, "net."))
    need = CLONE_NEWNET;
  else if (sbx_has_prefix (key, "fs.mqueue."))
    need = CLONE_NEWIPC;
  else if (strcmp (key, "kernel.hostname") == 0 || strcmp (key, "kernel.domainname") == 0)
    need = CLONE_NEWUTS;
  for (const char *const *k = ipc_keys; need == 0 && *k; k++)
    if (strcmp (key, *k) == 0)
      need = CLONE_NEWIPC;
  if (need == 0)
    return sbx_error_set (err, EPERM,
                          "linux.sysctl: `%s` is not namespaced: setting it would change the host", key);
  if (!(ns & need))
    return sbx_error_set (err, EPERM, "linux.sysctl: `%s` needs a %s namespace of the container's own", key,
                          need == CLONE_NEWNET   ? "network"
                          : need == CLONE_NEWIPC ? "ipc"
                                                 : "uts");
  return 0;
}

/* Written through the runtime's /proc before pivot_root: /proc/sys resolves
   net and ipc keys against the writer's namespaces, which are already the
   container's, and the container's /proc/sys may be read-only by then.  */
static int
set_sysctls (const oci_linux *l, int ns, sbx_error **err)
{
  cleanup_close int procfd = -1;

  if (l == NULL || l->sysctl_len == 0)
    return 0;
  procfd = sbx_proc_open (AT_FDCWD, "/proc", err);
  if (procfd < 0)
    return sbx_error_wrap (err, "linux.sysctl");
  for (size_t i = 0; i < l->sysctl_len; i++)
    {
      const char *key = l->sysctl_keys[i], *val = l->sysctl_values[i];
      cleanup_free char *rel = xasprintf ("sys/%s", key);
      if (strstr (key, "..") || strchr (key, '/') || key[0] == '.')
        return sbx_error_set (err, EINVAL, "linux.sysctl: invalid key `%s`", key);
      if (sysctl_allowed (key, ns, err) < 0)
        return -1;
      for (char *p = rel + 4; *p; p++)
        if (*p == '.')
          *p = '/';
      if (sbx_proc_write (procfd, rel, val, strlen (val), err) < 0)
        return sbx_error_wrap (err, "linux.sysctl[\"%s\"] = `%s`", key, val);
    }
  return 0;
}

static int
set_names (const oci_config *c, int uts_private, sbx_error **err)
{
  /* An empty name is no name, as with other runtimes.  */
  const char *names[2] = { c->hostname, c->domainname }, *fields[2] = { "hostname", "domainname" };
  for (int i = 0; i < 2; i++)
    {
      if (names[i] == NULL || names[i][0] == '\0')
        continue;
      if (!uts_private)
        return sbx_error_set (err, EINVAL, "%s `%s`: setting it needs a uts namespace of its own", fields[i],
                              names[i]);
      if ((i == 0 ? sethostname (names[i], strlen (names[i])) : setdomainname (names[i], strlen (names[i])))
          < 0)
        return sbx_error_sys (err, "%s `%s`", fields[i], names[i]);
    }
  return 0;
}

/* config-linux.md: with a terminal, /dev/console is the pty.  The bind
   goes from the slave's fd onto an fd of console inside the container's
   /dev: an image's /dev/console symlink (or a directory, a fifo) is
   replaced by a plain file first, never followed.  */
static int
bind_console (int slave_fd, const char *slave, sbx_error **err)
{
  cleanup_close int rootfd = -1, devfd = -1, fd = -1;
  struct stat sb;

  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return sbx_error_sys (err, "open /");
  devfd = sbx_fs_root_resolve (rootfd, "/dev", SBX_RESOLVE_MKDIR, err);
  if (devfd < 0)
    return sbx_error_wrap (err, "/dev/console");
  if (fstatat (devfd, "console", &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG (sb.st_mode)
      && !S_ISCHR (sb.st_mode))
    {
      if (unlinkat (devfd, "console", S_ISDIR (sb.st_mode) ? AT_REMOVEDIR : 0) < 0)
        return sbx_error_sys (err, "/dev/console is neither a file nor a device: remove it");
    }
  {
    /* O_PATH cannot create: make the file first, never through a link.  */
    int c = openat (devfd, "console", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (c >= 0)
      close (c);
    else if (errno != EEXIST)
      return sbx_error_sys (err, "create /dev/console");
  }
  fd = openat (devfd, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &sb) < 0)
    return sbx_error_sys (err, "open /dev/console");
  if (!S_ISREG (sb.st_mode) && !S_ISCHR (sb.st_mode))
    return sbx_error_set (err, EINVAL, "/dev/console is neither a file nor a device");
  if (sbx_fs_bind_fd (slave_fd, fd, false, 0) < 0)
    return sbx_error_sys (err, "bind %s on /dev/console", slave);
  return 0;
}

/* The container's terminal, in two halves: opening the pty and binding it
   on /dev/console need the runtime's privileges; handing the master over
   and making the session are the init's, and need none.  */
struct pty_pair
{
  int master, peer;
  char *slave;
};

static void
pty_pair_release (struct pty_pair *t)
{
  if (t->master >= 0)
    close (t->master);
  if (t->peer >= 0)
    close (t->peer);
  free (t->slave);
  *t = (struct pty_pair){ .master = -1, .peer = -1 };
}

static int
open_terminal (sbx_creator *cr, struct pty_pair *t, sbx_error **err)
{
  const oci_process *p = cr->c->process;
  *t = (struct pty_pair){ .master = -1, .peer = -1 };
  if (p == NULL || !p->terminal)
    return 0;
  t->master = sbx_process_pty_open (&t->slave, err);
  if (t->master < 0)
    return -1;
  t->peer = sbx_process_pty_open_peer (t->master, t->slave, err);
  if (t->peer < 0)
    return -1;
  if (((cr->plan.new_flags & CLONE_NEWNS) || cr->host_root) && bind_console (t->peer, t->slave, err) < 0)
    return -1;
  return 0;
}

/* Stdio that is the runtime's /dev/null (a node of the host's /dev) is
   opened again from the container's own /dev, as runc does: a file of a
   mount the container does not have cannot be checkpointed by CRIU.  */
static int
reopen_dev_null (sbx_error **err)
{
  for (int fd = 0; fd < 3; fd++)
    {
      struct stat st, nst;
      int n;
      if (fstat (fd, &st) < 0 || !S_ISCHR (st.st_mode) || st.st_rdev != makedev (1, 3))
        continue;
      n = open ("/dev/null", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
      if (n < 0)
        continue; /* no /dev/null in the container: keep the host's */
      if (fstat (n, &nst) < 0 || !S_ISCHR (nst.st_mode) || nst.st_rdev != makedev (1, 3)
          || (nst.st_dev != st.st_dev && dup2 (n, fd) < 0))
        {
          close (n);
          if (S_ISCHR (nst.st_mode) && nst.st_rdev == makedev (1, 3))
            return sbx_error_sys (err, "reopen /dev/null as fd %d", fd);
          continue;
        }
      close (n);
    }
  return 0;
}

static int
take_terminal (sbx_creator *cr, struct pty_pair *t, sbx_error **err)
{
  int r = 0;
  if (t->master >= 0)
    {
      r = sbx_process_sync_send_text (cr->sync_child, SYNC_PTY, t->master, t->slave, err);
      if (r == 0)
        r = sbx_process_pty_setup_slave_fd (steal_fd (&t->peer), t->slave, cr->c->process->console_size, err);
      if (r == 0)
        r = sbx_process_pty_give (cr->c->process, err);
    }
  else if (setsid () < 0)
    /* Without a terminal too the init leads a session of its own, as
       runc's: none begun outside its pid namespace (which CRIU cannot
       dump), and no job-control signal from the caller's terminal.  */
    r = sbx_error_sys (err, "setsid");
  else
    r = reopen_dev_null (err);
  pty_pair_release (t);
  return r;
}

static int
setup_terminal (sbx_creator *cr, sbx_error **err)
{
  struct pty_pair t;
  if (open_terminal (cr, &t, err) < 0)
    {
      pty_pair_release (&t);
      return -1;
    }
  return take_terminal (cr, &t, err);
}

/* The container's credentials, before any container process can see us
   (see sbx_process_drop_privileges).  */
static int
take_container_credentials (sbx_creator *cr, sbx_exec_prep *prep, sbx_error **err)
{
  if (cr->c->process == NULL)
    return 0;
  sbx_exec_ctx ctx = { .p = cr->c->process,
                       .seccomp = cr->sc,
                       .preserve_fds = cr->o->preserve_fds,
                       .notify_sock = -1,
                       .procfd = container_procfd,
                       .linux = cr->c->linux,
                       .keep_groups = sbx_process_annotation_on (cr->c, SBX_ANN_KEEP_GROUPS),
                       .landlock = cr->landlock,
                       .packet_guard = cr->packet_guard };
  return sbx_process_drop_privileges (&ctx, prep, err);
}

static int
joined_pidns (const sbx_creator *cr)
{
  for (size_t i = 0; i < cr->plan.njoin; i++)
    if (cr->plan.join_types[i] == CLONE_NEWPID)
      return cr->plan.join_fds[i];
  return -1;
}

/* Into the container's cgroups (placed late: first the files to move in
   through, from the runtime), then a new cgroup namespace is rooted where
   we are: in the container's cgroup.  The rest of the setup is the
   runtime's work, done in the runtime's own cgroups (best effort) so that
   it is not charged to the container, with or without a cgroup namespace
   (runc's default config has none); sbx_init_main goes back in before
   "created".  Without a cgroup namespace the container's cgroup mount
   binds the directories of the cgroups we are in now, not of the
   runtime's.  Once: the later calls do nothing.  */
struct cgroup_join
{
  sbx_creator *cr;
  sbx_rootfs_opts *ro;
  char *self_cgroup;
  bool done;
};

static void
cgroup_join_release (struct cgroup_join *j)
{
  free (j->self_cgroup);
}

static int
join_cgroups (void *arg, sbx_error **err)
{
  struct cgroup_join *j = arg;
  sbx_creator *cr = j->cr;

  if (j->done)
    return 0;
  j->done = true;
  if (cr->cg && sbx_cgroup_is_late (cr->cg))
    {
      int fds[SBX_MAX_SEND_FDS];
      size_t n = 0;
      cleanup_free char *slots = NULL;
      if (sbx_process_sync_expect_fds (cr->sync_child, SYNC_CGROUP, fds, SBX_MAX_SEND_FDS, &n, &slots, err)
              < 0
          || sbx_cgroup_stage_adopt (cr->cg, fds, n, slots, err) < 0
          || sbx_cgroup_stage_arrive (cr->cg, cr->born_in_v2, err) < 0)
        return -1;
      sbx_test_kill_point ("init:cgroup");
    }
  if (sbx_read_file ("/proc/self/cgroup", 0, &j->self_cgroup, NULL, NULL) == 0)
    j->ro->self_cgroup = j->self_cgroup;
  if ((cr->plan.new_flags & CLONE_NEWCGROUP) && unshare (CLONE_NEWCGROUP) < 0)
    return sbx_error_sys (err, "create cgroup namespace");
  {
    cleanup_error sbx_error *e = NULL;
    if (cr->cg && sbx_cgroup_stage_leave (cr->cg, &e) < 0)
      sbx_debug ("init: setting up inside the container's cgroup: %s", e->msg);
  }
  return 0;
}

/* Everything up to "created".  */
static int
setup (sbx_creator *cr, char **state_json, sbx_error **err)
{
  const oci_config *c = cr->c;
  const oci_linux *l = c->linux;
  int flags = cr->plan.new_flags;
  sbx_rootfs_opts ro = { .rootfs = cr->rootfs,
                         .bundle = cr->bundle,
                         .no_pivot = cr->o->no_pivot,
                         .shared_ns = cr->host_root,
                         .host_bind_id = cr->host_root && cr->state->st->host_root
                                             ? cr->state->st->host_root->mount_id
                                             : 0,
                         /* rootless without one of its own: we run in a
                            user's namespace (rootless podman's) */
                         .userns = ((flags | cr->plan.join_flags) & CLONE_NEWUSER) || cr->o->rootless,
                         .cgroupns = flags & CLONE_NEWCGROUP,
                         .has_root_mount = cr->overlay_fd >= 0,
                         .root_mount_fd = cr->overlay_fd,
                         .bind_trees = cr->bind_trees,
                         .bind_trees_len = cr->bind_trees ? c->mounts_len : 0,
                         .dev_trees = cr->dev_trees,
                         .dev_trees_len = cr->dev_trees ? sbx_fs_dev_nodes_len (c) : 0 };
  __attribute__ ((cleanup (cgroup_join_release))) struct cgroup_join cj = { .cr = cr, .ro = &ro };

  if (sbx_process_sync_expect (cr->sync_child, SYNC_GO, NULL, err) < 0)
    return -1;
  prctl (PR_SET_DUMPABLE, 0);
  if (c->process && sbx_process_cpu_affinity_apply (c->process, true, err) < 0)
    return -1;
  if (cr->fork_init)
    {
      /* The joined pid namespace is entered only by the init we fork at
         the end (fork_init); procfs is mounted for it meanwhile.  */
      ro.has_proc_pidns = true;
      ro.proc_pidns = joined_pidns (cr);
    }
  if (sbx_process_ns_join (&cr->plan, true, err) < 0)
    return -1;
  if (cr->plan.join_flags & CLONE_NEWNS)
    sbx_cgroup_forget_mountinfo ();
  if (flags & CLONE_NEWUSER)
    {
      /* Become the container's root: the mapping of our host uid may be
         anything, and setup needs full capabilities in the namespace.  */
      if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0)
        return sbx_error_sys (err, "become root in the user namespace (is uid/gid 0 mapped?)");
    }
  /* Placed late (cgroup.h), we join at the first cgroup mount, or after
     the mounts; else now.  */
  if (cr->cg && sbx_cgroup_is_late (cr->cg))
    {
      ro.before_cgroup = join_cgroups;
      ro.before_cgroup_arg = &cj;
    }
  else if (join_cgroups (&cj, err) < 0)
    return -1;
  if (flags & CLONE_NEWTIME)
    {
      int r;
      if (unshare (CLONE_NEWTIME) < 0)
        return sbx_error_sys (err, "create time namespace");
      /* Non-dumpable, our /proc/self files belong to host root, which a
         user namespace may not map: be dumpable just for this write, while
         no container code exists yet.  */
      prctl (PR_SET_DUMPABLE, 1);
      r = sbx_process_ns_write_time_offsets (l, err);
      prctl (PR_SET_DUMPABLE, 0);
      if (r < 0)
        return -1;
    }
  if ((flags & CLONE_NEWNET) && sbx_process_netns_loopback_up (err) < 0)
    return -1;
  if (set_names (c, (flags | cr->plan.join_flags) & CLONE_NEWUTS, err) < 0)
    return -1;
  if (!cr->o->no_new_keyring && syscall (SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0)
    {
      /* No keyrings in this kernel: nothing to share.  Refused (a seccomp
         filter around the runtime, a key quota): go on, but say that the
         container keeps the runtime's session keyring.  */
      if (errno != ENOSYS && errno != EPERM && errno != EACCES && errno != EDQUOT)
        return sbx_error_sys (err, "join a new session keyring");
      if (errno != ENOSYS)
        sbx_warn ("cannot join a new session keyring (%s): the container shares the runtime's",
                  strerror (errno));
    }
  /* Without a mount namespace of its own and nothing to mount the root
     is only entered.  */
  if (((flags & CLONE_NEWNS) || cr->host_root) && sbx_fs_rootfs_prepare (c, &ro, &container_procfd, err) < 0)
    return -1;
  if (join_cgroups (&cj, err) < 0)
    return -1;
  if (cr->overlay_fd >= 0)
    {
      close (cr->overlay_fd);
      cr->overlay_fd = -1;
    }
  sbx_bind_sources_close (cr->bind_trees, cr->bind_trees ? c->mounts_len : 0);
  sbx_bind_sources_close (cr->dev_trees, ro.dev_trees_len);
  if (set_sysctls (l, flags | cr->plan.join_flags, err) < 0)
    return -1;

  if (sbx_process_sync_send (cr->sync_child, SYNC_RUNTIME_HOOKS, -1, err) < 0)
    return -1;
  {
    cleanup_free char *pid = NULL;
    long long n;
    if (sbx_process_sync_expect_text (cr->sync_child, SYNC_HOOKS_DONE, NULL, &pid, err) < 0)
      return -1;
    if (sbx_parse_int64 (pid, &n) == 0)
      cr->hooks_pid = (pid_t)n;
    *state_json = sbx_state_json_pid (cr->state, c, "created", cr->hooks_pid, false);
  }
  if (c->hooks
      && sbx_process_hooks_run ("createContainer", c->hooks->create_container, c->hooks->create_container_len,
                                *state_json, err)
             < 0)
    return -1;

  /* A missing cwd is made (as runc does), inside the root, never through
     a link out of it; not in a root that is to be read-only.  */
  if (c->process && c->process->cwd && !c->root->readonly)
    {
      cleanup_close int rootfd = open (cr->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
      cleanup_close int cwdfd = -1;
      if (rootfd < 0)
        return sbx_error_sys (err, "open `%s`", cr->rootfs);
      cwdfd = sbx_fs_root_resolve (rootfd, c->process->cwd, SBX_RESOLVE_MKDIR, err);
      if (cwdfd < 0)
        return sbx_error_wrap (err, "process.cwd `%s`", c->process->cwd);
    }
  /* From here paths resolve in the container: startContainer hooks, which
     run there, keep the container's stdio.  */
  sbx_process_hooks_set_output (NULL);
  if ((flags & CLONE_NEWNS) || cr->host_root)
    {
      if (sbx_fs_rootfs_finish (c, &ro, err) < 0)
        return -1;
    }
  else if (chroot (cr->rootfs) < 0 || chdir ("/") < 0)
    return sbx_error_sys (err, "enter root `%s`", cr->rootfs);
  /* The terminal makes a session: the init's, which with a joined pid
     namespace is the next stage's.  */
  if (!cr->fork_init)
    return setup_terminal (cr, err);
  return 0;
}

/* Block until `start` connects; returns the connection.  While created,
   the init holds no cgroup fd (see drop_host_fds), so it waits, accepts
   and execs in the container's cgroup: the runtime's own setup work was
   done outside it (init setup, exec's joiner), what is left is small.  */
#define START_REQUEST_TIMEOUT_MS 3000

static int
wait_for_start (int listen_fd, sbx_error **err)
{
  for (;;)
    {
      struct pollfd p = { listen_fd, POLLIN, 0 };
      cleanup_close int conn = -1;

      if (poll (&p, 1, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return sbx_error_sys (err, "wait for start");
        }
      conn = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (conn < 0)
        {
          if (errno != EINTR && errno != ECONNABORTED)
            return sbx_error_sys (err, "wait for start");
        }
      else
        {
          /* Only a real start request counts: a probe that hangs up, or
             holds the connection without a word (`start` speaks at once),
             must not keep the real one waiting.  */
          struct pollfd q = { conn, POLLIN, 0 };
          if (poll (&q, 1, START_REQUEST_TIMEOUT_MS) > 0
              && sbx_process_sync_expect (conn, SYNC_GO, NULL, NULL) == 0)
            return steal_fd (&conn);
        }
    }
}

/* From here a container process may see us (an exec into the created
   container, a neighbour in a joined pid namespace): keep only the sync
   channel, start.sock, stdio and the preserved fds.  No cgroup directory
   (a v1 one leads to the hierarchy root's release_agent), no cgroup.procs
   (a way out of the limits), no namespace fd, no log file.  */
static int
drop_host_fds (sbx_creator *cr, const int *extra, size_t nextra, sbx_error **err)
{
  int keep[4] = { cr->sync_child, cr->start_listen };
  for (size_t i = 0; i < nextra && i < 2; i++)
    keep[2 + i] = extra[i];
  sbx_cgroup_free (cr->cg);
  cr->cg = NULL;
  sbx_process_ns_plan_close (&cr->plan);
  sbx_log_close ();
  /* Nor the private copy of the container's /proc: masks and read-only
     paths are not on it (sysrq-trigger, /proc/sys).  The writes before
     execve open /proc again, checked (process/execve.c).  */
  container_procfd = -1;
  return sbx_process_close_fds_except (keep, 2 + (nextra < 2 ? nextra : 2), cr->o->preserve_fds, err);
}

/* With a pid namespace joined by path, the setup ran in a process of the
   host's pid namespace; the init proper is forked into the joined one,
   as the runtime's child (CLONE_PARENT), with nothing of the host.  It
   starts outside the container's cgroup (pids.max may be 1: the runtime
   moves it in by pid), makes the terminal's session and says "created".
   Returns in the init; the setup process exits here.  */
static int
fork_init (sbx_creator *cr, sbx_exec_prep *prep, sbx_error **err)
{
  cleanup_error sbx_error *e = NULL;
  struct pty_pair t;
  char buf[32];
  pid_t pid;

  if (cr->cg && sbx_cgroup_stage_leave (cr->cg, &e) < 0)
    sbx_debug ("init: forked inside the container's cgroup: %s", e->msg);
  /* Only now: our children so far (createContainer hooks, with the host's
     root) stayed in the host's pid namespace, out of the neighbours'
     sight.  */
  if (setns (joined_pidns (cr), CLONE_NEWPID) < 0)
    return sbx_error_sys (err, "join pid namespace");
  /* The pty is opened and bound here, with our privileges; the init only
     takes it.  */
  if (open_terminal (cr, &t, err) < 0)
    {
      pty_pair_release (&t);
      return -1;
    }
  if (drop_host_fds (cr, (int[]){ t.master, t.peer }, t.master >= 0 ? 2 : 0, err) < 0
      || take_container_credentials (cr, prep, err) < 0)
    {
      pty_pair_release (&t);
      return -1;
    }
  /* The init is born with the container's credentials: a neighbour that
     injects code into it (CAP_SYS_PTRACE) gains nothing.  */
  pid = sbx_process_fork_sibling ();
  if (pid < 0)
    {
      pty_pair_release (&t);
      return sbx_error_sys (err, "clone3 the container process");
    }
  if (pid > 0)
    {
      snprintf (buf, sizeof buf, "%d", pid);
      _exit (sbx_process_sync_send_text (cr->sync_child, SYNC_CHILD_PID, -1, buf, NULL) < 0);
    }
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* In its cgroup, and the runtime has our pid (EOF: it died first).  */
  if (sbx_process_sync_expect (cr->sync_child, SYNC_GO, NULL, err) < 0)
    {
      pty_pair_release (&t);
      return -1;
    }
  return take_terminal (cr, &t, err);
}

_Noreturn void
sbx_init_main (sbx_creator *cr)
{
  cleanup_error sbx_error *err = NULL;
  cleanup_free char *state_json = NULL;
  sbx_exec_prep prep = SBX_EXEC_PREP_INIT;
  int conn;

  /* Drop what belongs to the runtime: the state lock must not outlive it. */
  close (cr->state->dir_fd);
  close (cr->state->root_fd);
  close (cr->sync_parent);
  cr->state->dir_fd = cr->state->root_fd = -1;
  /* Die with the runtime during setup; non-dumpable keeps container
     processes away from our /proc/<pid>/exe (CVE-2019-5736).  */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* In the container's cgroup from the start, as if born there (cgroup.h,
     staging): the cgroup namespace is rooted there.  */
  if (cr->cg && sbx_cgroup_stage_arrive (cr->cg, cr->born_in_v2, &err) < 0)
    goto fail;
  /* An unprivileged runtime writes our uid_map, which it may only open
     while we are dumpable: until SYNC_GO (setup), when only our code runs
     in a user namespace with nothing mapped.  */
  if (!(cr->o->rootless && (cr->plan.new_flags & CLONE_NEWUSER)))
    prctl (PR_SET_DUMPABLE, 0);

  cr->hooks_pid = cr->state->st->pid;
  if (setup (cr, &state_json, &err) < 0)
    goto fail;
  if (cr->fork_init)
    {
      if (fork_init (cr, &prep, &err) < 0)
        goto fail;
    }
  else if ((cr->cg && sbx_cgroup_stage_enter (cr->cg, &err) < 0) || drop_host_fds (cr, NULL, 0, &err) < 0
           || take_container_credentials (cr, &prep, &err) < 0)
    goto fail;
  if (cr->c->process)
    {
      sbx_exec_ctx ctx = { .p = cr->c->process };
      if (sbx_process_resolve (&ctx, &prep, &err) < 0)
        goto fail;
    }
  /* From "created" on (a pod member's init: from birth), container
     processes may see us and, with CAP_SYS_PTRACE, inject code: we hold
     the container's credentials already (take_container_credentials).  */
  prctl (PR_SET_PDEATHSIG, 0);
  /* Under a filter loaded already (no no_new_privs), by write(2): every
     profile allows it, sendmsg is not a given.  */
  if ((cr->sc && cr->c->process && !cr->c->process->no_new_privileges
           ? sbx_process_sync_send_plain (cr->sync_child, SYNC_CREATED, &err)
           : sbx_process_sync_send (cr->sync_child, SYNC_CREATED, -1, &err))
      < 0)
    goto fail;
  close (cr->sync_child);
  cr->sync_child = -1;

  conn = wait_for_start (cr->start_listen, &err);
  if (conn < 0)
    _exit (1);
  close (cr->start_listen);
  free (state_json);
  state_json = sbx_state_json_pid (cr->state, cr->c, "created", cr->hooks_pid, false);
  /* A startContainer hook without `env` runs with the process's
     environment, as under runc, not the caller's (nothing of the host's
     environment enters the container); ours is not used past here.  */
  if (cr->c->hooks && cr->c->hooks->start_container_len && cr->c->process)
    environ = sbx_process_exec_env (cr->c->process, &prep);
  if (cr->c->hooks
      && sbx_process_hooks_run ("startContainer", cr->c->hooks->start_container,
                                cr->c->hooks->start_container_len, state_json, &err)
             < 0)
    {
      sbx_process_sync_send_error (conn, err);
      _exit (1);
    }
  if (cr->c->process == NULL)
    {
      sbx_error_set (&err, EINVAL, "config.json has no process to start");
      sbx_process_sync_send_error (conn, err);
      _exit (1);
    }
  {
    sbx_exec_ctx ctx = { .p = cr->c->process, .seccomp = cr->sc, .notify_sock = conn };
    sbx_process_finish_exec (&ctx, &prep, &err);
  }
  sbx_process_sync_send_error (conn, err);
  _exit (127);

fail:
  if (cr->sync_child >= 0)
    sbx_process_sync_send_error (cr->sync_child, err);
  _exit (1);
}
