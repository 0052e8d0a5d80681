/* container.c - the lifecycle operations of container.h, runtime side.  The
 * child side of create lives in init.c, exec in exec.c.  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

int
sbx_pidfd_open (pid_t pid)
{
  return syscall (SYS_pidfd_open, pid, 0);
}

/* ---------------------------------------------------------------- helpers */

static void
creator_release (sbx_creator *cr)
{
  oci_config_free (cr->c);
  free (cr->bundle);
  free (cr->rootfs);
  sbx_state_free (cr->state);
  sbx_cgroup_free (cr->cg);
  sbx_seccomp_free (cr->sc);
  sbx_ns_plan_close (&cr->plan);
  if (cr->sync_parent >= 0)
    close (cr->sync_parent);
  if (cr->sync_child >= 0)
    close (cr->sync_child);
  if (cr->start_listen >= 0)
    close (cr->start_listen);
}

/* A unix socket address for `name` inside a directory fd: through
   /proc/self/fd, so long state paths never overflow sun_path.  */
static socklen_t
dir_sockaddr (int dirfd, const char *name, struct sockaddr_un *sa)
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

static char *
owner_name (void)
{
  struct passwd *pw = getpwuid (geteuid ());
  return xstrdup (pw ? pw->pw_name : "");
}

/* Socket activation: fds 3..3+N-1 of LISTEN_FDS pass through, as with runc. */
static void
inherit_listen_fds (oci_process *p, int *preserve)
{
  const char *lf = getenv ("LISTEN_FDS"), *lp = getenv ("LISTEN_PID");
  long long n, for_pid;
  if (lf == NULL || sbx_parse_int64 (lf, &n) < 0 || n <= 0 || n > 1024)
    return;
  /* Meant for another process (an ancestor that exec'd us by accident):
     those fds are not the container's.  */
  if (lp && (sbx_parse_int64 (lp, &for_pid) < 0 || for_pid != getpid ()))
    return;
  if (n > *preserve)
    *preserve = (int)n;
  p->env = xrealloc (p->env, (p->env_len + 3) * sizeof (char *));
  p->env[p->env_len++] = xasprintf ("LISTEN_FDS=%lld", n);
  p->env[p->env_len++] = xstrdup ("LISTEN_PID=1");
  p->env[p->env_len] = NULL;
}

/* "1.<minor>.<patch>" with an optional -suffix.  */
static bool
valid_oci_version (const char *v)
{
  unsigned a, b, c;
  int n = 0;
  if (sscanf (v, "%u.%u.%u%n", &a, &b, &c, &n) != 3 || a != 1)
    return false;
  return v[n] == '\0' || v[n] == '-' || v[n] == '+';
}

static int
load_config (const sbx_create_opts *o, sbx_creator *cr, sbx_error **err)
{
  cleanup_free char *msg = NULL, *cfg = NULL, *root_path = NULL;
  const char *bundle = o->bundle ? o->bundle : ".";

  cr->bundle = realpath (bundle, NULL);
  if (cr->bundle == NULL)
    return sbx_error_sys (err, "bundle `%s`", bundle);
  cfg = o->config ? xstrdup (o->config) : xasprintf ("%s/config.json", cr->bundle);
  cr->c = oci_config_parse_file (cfg, &msg);
  if (cr->c == NULL) /* the text says it all, strerror included */
    return sbx_error_set (err, 0, "config.json: %s", msg);
  if (cr->c->root == NULL)
    return sbx_error_set (err, EINVAL, "config.json: root: required to create a container");
  if (!valid_oci_version (cr->c->oci_version))
    return sbx_error_set (err, EINVAL, "config.json: ociVersion `%s`: unsupported (want 1.x.y)",
                          cr->c->oci_version);
  /* process may be absent at create; start then fails (runtime.md).  */
  if (cr->c->process && sbx_process_validate (cr->c->process, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (cr->c->process && cr->c->linux && cr->c->linux->seccomp
      && sbx_seccomp_check_notify (cr->c->linux->seccomp, cr->c->process->no_new_privileges, err) < 0)
    return sbx_error_wrap (err, "config.json");
  root_path = cr->c->root->path[0] == '/' ? xstrdup (cr->c->root->path)
                                          : xasprintf ("%s/%s", cr->bundle, cr->c->root->path);
  cr->rootfs = realpath (root_path, NULL);
  if (cr->rootfs == NULL)
    return sbx_error_sys (err, "config.json: root.path `%s`", cr->c->root->path);
  {
    struct stat st;
    if (stat (cr->rootfs, &st) < 0 || !S_ISDIR (st.st_mode))
      return sbx_error_set (err, ENOTDIR, "config.json: root.path `%s`", cr->c->root->path);
  }
  if (cr->c->process && cr->c->process->terminal && o->detach && o->console_socket == NULL)
    return sbx_error_set (err, EINVAL,
                          "process.terminal is true but no --console-socket was given to receive "
                          "the terminal of a detached container");
  if (sbx_lsm_validate (NULL, cr->c->linux, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (sbx_mounts_validate (cr->c, cr->bundle, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (sbx_ns_plan_make (cr->c->linux, &cr->plan, err) < 0)
    return sbx_error_wrap (err, "config.json");
  if (cr->c->linux && cr->c->linux->time_offsets_len && !(cr->plan.new_flags & CLONE_NEWTIME))
    return sbx_error_set (err, EINVAL,
                          "config.json: linux.timeOffsets needs a new time namespace in "
                          "linux.namespaces");
  if ((cr->plan.new_flags & CLONE_NEWUSER) && (cr->plan.join_flags & ~CLONE_NEWUSER))
    return sbx_error_set (err, ENOTSUP,
                          "config.json: linux.namespaces: joining namespaces by path together with a "
                          "new user namespace is not supported yet");
  if (cr->c->process)
    inherit_listen_fds (cr->c->process, (int *)&o->preserve_fds);
  /* Without a mount namespace nothing is mounted: no procfs to get right. */
  cr->fork_init = (cr->plan.join_flags & CLONE_NEWPID)
                  && (!(cr->plan.new_flags & CLONE_NEWNS) || sbx_mount_proc_pidns_supported ());
  if ((cr->plan.join_flags & CLONE_NEWPID) && !cr->fork_init)
    sbx_debug ("no procfs pidns= option: the init sets up inside the joined pid namespace");
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
  return sbx_hooks_run (kind, h, n, json, err);
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
  pid = sbx_spawn_in_cgroup (&ca, cr->cg, "the container process", err);
  if (pid == 0)
    sbx_init_main (cr);
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

  if (sbx_sync_expect (sync, SYNC_PTY, &pty, err) < 0)
    return -1;
  if (console_socket)
    {
      cleanup_close int cs = sbx_unix_connect (console_socket, err);
      if (cs < 0 || sbx_send_fd (cs, pty, "/dev/ptmx", err) < 0)
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

  if (sbx_sync_expect_text (cr->sync_parent, SYNC_CHILD_PID, NULL, &text, err) < 0)
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
  return sbx_sync_send (cr->sync_parent, SYNC_GO, -1, err);
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
  oci_config *c;
  cleanup_net_policy sbx_net_policy *np = NULL; /* org.sbxrun.net.* (egress.h) */

  if (load_config (o, cr, err) < 0)
    return -1;
  c = cr->c;
  if (sbx_id_validate (o->id, err) < 0)
    return -1;
  if (sbx_net_policy_parse (c, cr->bundle, cr->rootfs, &np, err) < 0)
    return sbx_error_wrap (err, "config.json");
  sbx_net_policy_annotate (np, c);
  if (c->linux && c->linux->seccomp)
    {
      cleanup_free char *cache = xasprintf ("%s/.seccomp-cache", o->root);
      /* The cache sits in the root: trust the root first (state_create checks it again).  */
      cleanup_close int rfd = sbx_open_private_dir (o->root, true, "state root (--root)", err);
      if (rfd < 0)
        return -1;
      if (sbx_seccomp_prepare (c->linux->seccomp, cache, &cr->sc, err) < 0)
        return sbx_error_wrap (err, "config.json");
    }
  if (sbx_state_create (o->root, o->id, &cr->state, err) < 0)
    return -1;
  cr->state->st->bundle = xstrdup (cr->bundle);
  cr->state->st->rootfs = xstrdup (cr->rootfs);
  cr->state->st->created = sbx_now_rfc3339 ();
  cr->state->st->owner = owner_name ();
  cr->state->st->systemd_cgroup = o->systemd_cgroup;
  cr->state->st->has_systemd_cgroup = true;
  {
    size_t len;
    cleanup_free char *json = ocispec_generate (&oci_config_type, c, false, &len);
    if (sbx_write_file_atomic (cr->state->dir_fd, "config.json", json, len, 0600, err) < 0)
      return sbx_error_wrap (err, "save config");
  }
  if (sbx_cgroup_host_mode () != SBX_CGROUP_NONE)
    {
      if (sbx_cgroup_create (o->id, c->linux ? c->linux->cgroups_path : NULL, o->systemd_cgroup, &cr->cg, err)
          < 0)
        return -1;
      cr->state->st->cgroup = sbx_cgroup_describe (cr->cg);
      if (c->linux && c->linux->resources)
        {
          sbx_cgroup_add_default_devices (c->linux->resources);
          if (sbx_cgroup_apply (cr->cg, c->linux->resources, err) < 0)
            return -1;
        }
    }
  if (sbx_state_save (cr->state, err) < 0)
    return -1;

  cr->start_listen = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (cr->start_listen < 0)
    return sbx_error_sys (err, "socket");
  if (bind (cr->start_listen, (struct sockaddr *)&sa, dir_sockaddr (cr->state->dir_fd, "start.sock", &sa)) < 0
      || listen (cr->start_listen, 4) < 0)
    return sbx_error_sys (err, "listen on `%s/start.sock`", cr->state->dir);
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    return sbx_error_sys (err, "socketpair");
  cr->sync_parent = sp[0];
  cr->sync_child = sp[1];

  pid = spawn_init (cr, &pidfd, err);
  if (pid < 0)
    goto fail;
  close (cr->sync_child);
  cr->sync_child = -1;
  cr->state->st->pid = pid;
  cr->state->st->has_pid = true;

  if ((cr->plan.new_flags & CLONE_NEWUSER) && sbx_ns_write_id_maps (pid, c->linux, err) < 0)
    goto fail;
  if (sbx_sync_send (cr->sync_parent, SYNC_GO, -1, err) < 0)
    goto fail;
  if (sbx_sync_expect (cr->sync_parent, SYNC_RUNTIME_HOOKS, NULL, err) < 0)
    goto fail;
  /* Namespaces exist, no container code or hook has run yet.  */
  if (np && sbx_net_policy_install (np, c, pid, o->id, cr->cg, cr->state->dir_fd, err) < 0)
    goto fail;
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
    if (sbx_sync_send_text (cr->sync_parent, SYNC_HOOKS_DONE, -1, buf, err) < 0)
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
    int r = sbx_sync_expect (cr->sync_parent, SYNC_CREATED, NULL, &e);
    if (r == SBX_SYNC_EOF)
      {
        sbx_died_before_exec (pid, c, err);
        goto fail;
      }
    if (r < 0)
      {
        *err = steal_ptr (e);
        goto fail;
      }
  }
  /* "created": the init is back in its cgroup for good (staging), so a
     new systemd scope holds without its placeholder */
  if (cr->cg && sbx_cgroup_placed (cr->cg, err) < 0)
    goto fail;
  cr->state->st->pid_start = sbx_pid_start_time (pid);
  cr->state->st->has_pid_start = true;
  if (cr->state->st->pid_start == 0)
    {
      sbx_error_set (err, ESRCH, "the container process %d is gone (or /proc/%d/stat is unreadable)", pid,
                     pid);
      goto fail;
    }
  if (sbx_state_save (cr->state, err) < 0)
    goto fail;
  if (o->pid_file && sbx_write_pid_file (o->pid_file, pid, err) < 0)
    goto fail;
  *pid_out = pid;
  *pidfd_out = pidfd;
  *pty_out = pty;
  return 0;

fail:
  if (pty >= 0)
    close (pty);
  kill_init (pid, pidfd);
  if (pidfd >= 0)
    close (pidfd);
  return -1;
}

/* Undo a failed create: nothing may be left behind.  */
static void
create_cleanup (sbx_creator *cr)
{
  if (cr->state) /* egress rules in a namespace joined by path */
    sbx_net_teardown_finish (sbx_net_teardown_prepare (cr->state->dir_fd, cr->state->id, 0));
  if (cr->cg)
    sbx_cgroup_destroy (cr->cg, NULL);
  if (cr->state)
    sbx_state_remove (cr->state, NULL);
}

int
sbx_container_create (const sbx_create_opts *o, sbx_error **err)
{
  sbx_creator cr = { .o = o, .sync_parent = -1, .sync_child = -1, .start_listen = -1 };
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

/* ---------------------------------------------------------------- start */

/* The process died before its last word: say how, when it is our child.  */
int
sbx_died_before_exec (pid_t pid, const oci_config *c, sbx_error **err)
{
  siginfo_t si = { 0 };
  const char *hint = c && c->linux && c->linux->seccomp
                         ? " (does the seccomp profile refuse a syscall the runtime needs before "
                           "exec, such as setresuid, capset, prctl or write?)"
                         : "";
  if (waitid (P_PID, pid, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == pid)
    {
      if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
        return sbx_error_set (err, ECHILD, "the container process was killed by signal %d (%s) before exec%s",
                              si.si_status, strsignal (si.si_status), hint);
      return sbx_error_set (err, ECHILD, "the container process exited with status %d before exec%s",
                            si.si_status, hint);
    }
  return sbx_error_set (err, ECHILD, "the container process exited before exec%s", hint);
}

int
sbx_await_exec (int conn, sbx_state *s, const oci_config *c, pid_t pid, sbx_error **err)
{
  bool heard = false;

  /* SYNC_EXEC_READY comes right before execve, with a seccomp notify fd
     if there is one; EOF after it means the exec happened.  */
  for (;;)
    {
      cleanup_error sbx_error *e = NULL;
      int notify_fd = -1;
      int r = sbx_sync_expect (conn, SYNC_EXEC_READY, &notify_fd, &e);
      if (r == SBX_SYNC_EOF)
        {
          if (heard)
            return 0;
          sbx_died_before_exec (pid, c, err);
          return SBX_SYNC_EOF;
        }
      if (r < 0)
        {
          *err = steal_ptr (e);
          return -1;
        }
      heard = true;
      if (notify_fd >= 0)
        {
          cleanup_free char *json = sbx_state_json (s, c, "running", false);
          r = sbx_seccomp_notify_send (c->linux->seccomp, notify_fd, pid, json, err);
          close (notify_fd);
          if (r < 0)
            return -1; /* the process sees EOF and does not exec */
          /* The listener has it: the process may exec now.  */
          if (sbx_sync_send (conn, SYNC_GO, -1, err) < 0)
            return -1;
        }
    }
}

/* Ask the init blocked on start.sock to exec; returns once it did (the
   connection closes on exec) or with its error: SBX_SYNC_EOF when it hung
   up without a word.  */
static int
request_start (sbx_state *s, const oci_config *c, sbx_error **err)
{
  struct sockaddr_un sa;
  cleanup_close int conn = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  int r;

  if (conn < 0)
    return sbx_error_sys (err, "socket");
  if (connect (conn, (struct sockaddr *)&sa, dir_sockaddr (s->dir_fd, "start.sock", &sa)) < 0)
    return sbx_error_sys (err, "container \"%s\": connect to its init", s->id);
  r = sbx_sync_send (conn, SYNC_GO, -1, err);
  if (r == 0)
    r = sbx_await_exec (conn, s, c, s->st->pid, err);
  if (r < 0)
    sbx_error_wrap (err, "container \"%s\": start", s->id);
  return r;
}

/* `may_retry`: a start that the init never took leaves the container
   created (not for run, which kills the init on failure).  */
static int
start_locked (sbx_state *s, bool may_retry, sbx_error **err)
{
  oci_config *c = NULL;
  const char *status = sbx_state_status (s);
  int r;

  if (strcmp (status, "created") != 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" cannot be started: it is %s", s->id, status);
  if (sbx_state_config (s, &c, err) < 0)
    return -1;
  r = request_start (s, c, err);
  if (r < 0)
    {
      /* The init exits right after reporting: wait for it, so that the
         container reads "stopped" as soon as start has failed.  */
      cleanup_close int pidfd = sbx_pidfd_open (s->st->pid);
      struct pollfd p = { pidfd, POLLIN, 0 };
      if (pidfd >= 0)
        poll (&p, 1, 2000);
      waitpid (s->st->pid, NULL, WNOHANG);
    }
  if (r == SBX_SYNC_EOF && may_retry && sbx_state_alive (s))
    {
      /* Hung up without a word and still waiting: the init never took the
         request (something else answered), so it stays startable.  */
      sbx_error_set (err, EAGAIN, "container \"%s\": start: its init did not take the request; try again",
                     s->id);
    }
  else
    unlinkat (s->dir_fd, "start.sock", 0);
  if (r == 0)
    {
      s->st->started = true;
      s->st->has_started = true;
      r = sbx_state_save (s, err);
    }
  if (r == 0 && c->hooks && c->hooks->poststart_len)
    {
      cleanup_free char *json = sbx_state_json (s, c, "running", false);
      sbx_hooks_run_warn ("poststart", c->hooks->poststart, c->hooks->poststart_len, json);
    }
  oci_config_free (c);
  return r < 0 ? -1 : 0;
}

int
sbx_container_start (const char *root, const char *id, sbx_error **err)
{
  sbx_state *s = NULL;
  int r;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  r = start_locked (s, true, err);
  sbx_state_free (s);
  return r;
}

/* ---------------------------------------------------------------- run */

static int
exit_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 255;
}

/* The signals `run` and `exec` pass on to the container process.  */
static void
forwarded_signals (sigset_t *set)
{
  sigfillset (set);
  sigdelset (set, SIGCHLD);
  sigdelset (set, SIGSEGV);
  sigdelset (set, SIGBUS);
  sigdelset (set, SIGILL);
  sigdelset (set, SIGFPE);
}

/* Forward signals to the init and wait for it, proxying the terminal when
   we own it.  Returns the exit code.  */
int
sbx_supervise (pid_t pid, int pidfd, int pty, sbx_error **err)
{
  sigset_t set, old;
  cleanup_close int sfd = -1;
  int status, r = -1;

  forwarded_signals (&set);
  sigprocmask (SIG_BLOCK, &set, &old);
  if (pty >= 0)
    {
      /* With a terminal, a resize is passed on as the pty's new size (the
         kernel then signals the container's foreground group), and job
         control stops us, not the container, when we run in the
         background.  */
      static const int ours[] = { SIGWINCH, SIGTTIN, SIGTTOU };
      sigset_t keep;
      sigemptyset (&keep);
      for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
        {
          sigaddset (&keep, ours[i]);
          sigdelset (&set, ours[i]);
        }
      sigprocmask (SIG_UNBLOCK, &keep, NULL);
    }
  sfd = signalfd (-1, &set, SFD_CLOEXEC);
  if (sfd < 0)
    {
      sbx_error_sys (err, "signalfd");
      goto out;
    }
  if (pty >= 0)
    {
      /* The proxy forwards signals meanwhile and returns when the pty
         hangs up, i.e. the process is gone, or when our side of the
         terminal fails: then the container gets the hangup.  */
      cleanup_error sbx_error *e = NULL;
      if (sbx_pty_proxy (pty, sfd, pidfd, &e) < 0)
        sbx_debug ("terminal proxy: %s", e->msg);
      close (pty);
      pty = -1;
    }
  for (;;)
    {
      struct pollfd pfd[2] = { { pidfd, POLLIN, 0 }, { sfd, POLLIN, 0 } };
      if (poll (pfd, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          sbx_error_sys (err, "poll");
          goto out;
        }
      if (pfd[1].revents & POLLIN)
        sbx_forward_signal (sfd, pidfd);
      if (pfd[0].revents & POLLIN)
        break;
    }
  while ((r = waitpid (pid, &status, 0)) < 0 && errno == EINTR)
    ;
  if (r < 0)
    sbx_error_sys (err, "wait for the container");
  else
    r = exit_code (status);
out:
  if (pty >= 0)
    close (pty);
  sigprocmask (SIG_SETMASK, &old, NULL);
  return r;
}

int
sbx_container_run (const sbx_create_opts *o, sbx_error **err)
{
  sbx_creator cr = { .o = o, .sync_parent = -1, .sync_child = -1, .start_listen = -1 };
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
      forwarded_signals (&set);
      sigprocmask (SIG_BLOCK, &set, NULL);
    }
  r = start_locked (cr.state, false, err);
  if (r < 0)
    kill_init (pid, pidfd);
  if (r == 0 && o->detach)
    {
      creator_release (&cr);
      return 0;
    }
  /* Release the lock while the container runs, so that state, kill and
     exec work on it.  */
  {
    char *root = xstrdup (o->root);
    sbx_state_free (cr.state);
    cr.state = NULL;
    if (r == 0)
      r = sbx_supervise (pid, pidfd, steal_fd (&pty), err);
    creator_release (&cr);
    if (!o->keep)
      {
        cleanup_error sbx_error *e = NULL;
        if (sbx_container_delete (root, o->id, true, &e) < 0)
          sbx_warn ("delete after run: %s", e->msg);
      }
    free (root);
  }
  return r;
}

/* ---------------------------------------------------------------- state */

int
sbx_container_state (const char *root, const char *id, char **json, sbx_error **err)
{
  sbx_state *s = NULL;
  oci_config *c = NULL;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  sbx_state_config (s, &c, NULL); /* annotations are optional extras */
  *json = sbx_state_json (s, c, sbx_state_status (s), true);
  oci_config_free (c);
  sbx_state_free (s);
  return 0;
}

/* ---------------------------------------------------------------- kill */

static const struct
{
  const char *name;
  int signo;
} signals[] = {
  { "HUP", SIGHUP },       { "INT", SIGINT },   { "QUIT", SIGQUIT },     { "ILL", SIGILL },
  { "TRAP", SIGTRAP },     { "ABRT", SIGABRT }, { "IOT", SIGIOT },       { "BUS", SIGBUS },
  { "FPE", SIGFPE },       { "KILL", SIGKILL }, { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
  { "USR2", SIGUSR2 },     { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },     { "TERM", SIGTERM },
  { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },     { "STOP", SIGSTOP },
  { "TSTP", SIGTSTP },     { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },
  { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
  { "WINCH", SIGWINCH },   { "IO", SIGIO },     { "POLL", SIGPOLL },     { "PWR", SIGPWR },
  { "SYS", SIGSYS },
};

int
sbx_parse_signal (const char *s, sbx_error **err)
{
  long long n;
  const char *name = s;
  if (sbx_parse_int64 (s, &n) == 0)
    {
      /* 0 is a liveness check (kill(2)), as runc takes it.  */
      if (n < 0 || n > SIGRTMAX)
        return sbx_error_set (err, EINVAL, "invalid signal `%s`", s);
      return (int)n;
    }
  if (strncasecmp (name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof signals / sizeof *signals; i++)
    if (strcasecmp (name, signals[i].name) == 0)
      return signals[i].signo;
  if (strncasecmp (name, "RTMIN", 5) == 0 || strncasecmp (name, "RTMAX", 5) == 0)
    {
      long long off = 0;
      int base = strncasecmp (name, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
      if (name[5] == '\0'
          || (sbx_parse_int64 (name + 5, &off) == 0 && base + off >= SIGRTMIN && base + off <= SIGRTMAX))
        return base + (int)off;
    }
  return sbx_error_set (err, EINVAL, "invalid signal `%s`", s);
}

/* Signal the init through a pidfd checked against the saved start time,
   so a recycled pid is never hit.  */
static int
signal_init (sbx_state *s, int signo, sbx_error **err)
{
  cleanup_close int pidfd = sbx_pidfd_open (s->st->pid);
  if (pidfd < 0 || !sbx_state_alive (s))
    return sbx_error_set (err, ESRCH, "container not running");
  if (syscall (SYS_pidfd_send_signal, pidfd, signo, NULL, 0) < 0)
    {
      if (errno == ESRCH)
        return sbx_error_set (err, ESRCH, "container not running");
      return sbx_error_sys (err, "kill container \"%s\"", s->id);
    }
  return 0;
}

static int
kill_locked (sbx_state *s, int signo, bool all, sbx_error **err)
{
  if (all && s->st->cgroup)
    {
      sbx_cgroup *cg = NULL;
      int r;
      if (sbx_cgroup_load (s->st->cgroup, &cg, err) < 0)
        return -1;
      r = sbx_cgroup_kill (cg, signo, err);
      sbx_cgroup_free (cg);
      return r;
    }
  if (strcmp (sbx_state_status (s), "stopped") == 0)
    return sbx_error_set (err, ESRCH, "container not running");
  return signal_init (s, signo, err);
}

int
sbx_container_kill (const char *root, const char *id, int signo, bool all, sbx_error **err)
{
  sbx_state *s = NULL;
  int r;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  r = kill_locked (s, signo, all, err);
  sbx_state_free (s);
  return r;
}

/* ---------------------------------------------------------------- delete */

/* Wait (bounded) for the init to be gone after SIGKILL.  */
static void
wait_gone (sbx_state *s)
{
  cleanup_close int pidfd = sbx_pidfd_open (s->st->pid);
  if (pidfd >= 0 && sbx_state_alive (s))
    {
      struct pollfd p = { pidfd, POLLIN, 0 };
      poll (&p, 1, 5000);
    }
  /* Reap it if it is ours (run).  */
  waitpid (s->st->pid, NULL, WNOHANG);
}

static int
delete_locked (sbx_state *s, bool force, sbx_error **err)
{
  const char *status = sbx_state_status (s);
  oci_config *c = NULL;
  sbx_cgroup *cg = NULL;
  sbx_net_teardown *nt;

  /* runtime-spec: deleting a container that is not stopped is an error
     (created included); --force kills it first.  */
  if (strcmp (status, "stopped") != 0 && !force)
    return sbx_error_set (err, EBUSY, "cannot delete container \"%s\" that is not stopped: %s (use --force)",
                          s->id, status);
  if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, NULL) < 0)
    cg = NULL;
  /* Egress rules: found before the kill (a live init's namespace),
     removed after it, so the container is never unrestricted.  */
  nt = sbx_net_teardown_prepare (s->dir_fd, s->id, strcmp (status, "stopped") ? s->st->pid : 0);
  if (strcmp (status, "stopped") != 0)
    {
      if (cg && strcmp (status, "paused") == 0)
        sbx_cgroup_freeze (cg, false, NULL);
      if (cg)
        sbx_cgroup_kill (cg, SIGKILL, NULL);
      signal_init (s, SIGKILL, NULL);
      wait_gone (s);
    }
  /* Processes that outlived the init (no pid namespace) go before the
     egress rules do: they must never run unrestricted.  */
  if (cg)
    {
      cleanup_error sbx_error *e = NULL;
      if (sbx_cgroup_destroy (cg, &e) < 0)
        sbx_warn ("container \"%s\": remove cgroup: %s", s->id, e->msg);
      sbx_cgroup_free (cg);
    }
  sbx_net_teardown_finish (nt);
  if (sbx_state_config (s, &c, NULL) == 0 && c->hooks && c->hooks->poststop_len)
    {
      cleanup_free char *json = sbx_state_json (s, c, "stopped", false);
      sbx_hooks_run_warn ("poststop", c->hooks->poststop, c->hooks->poststop_len, json);
    }
  oci_config_free (c);
  return sbx_state_remove (s, err);
}

int
sbx_container_delete (const char *root, const char *id, bool force, sbx_error **err)
{
  sbx_state *s = NULL;
  cleanup_error sbx_error *e = NULL;
  int r;
  if (sbx_state_open (root, id, &s, &e) < 0)
    {
      /* delete --force is idempotent: a missing container is fine.  */
      if (force && e->errno_ == ENOENT)
        return 0;
      *err = steal_ptr (e);
      return -1;
    }
  r = delete_locked (s, force, err);
  sbx_state_free (s);
  return r;
}

/* ---------------------------------------------------------------- ps */

int
sbx_container_pids (const char *root, const char *id, pid_t **pids, size_t *n, sbx_error **err)
{
  sbx_state *s = NULL;
  sbx_cgroup *cg = NULL;
  int r = 0;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  *pids = NULL;
  *n = 0;
  if (strcmp (sbx_state_status (s), "stopped") == 0)
    ;
  else if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, err) == 0)
    r = sbx_cgroup_pids (cg, pids, n, err);
  else if (s->st->cgroup)
    r = -1;
  else
    {
      *pids = xmalloc0 (sizeof (pid_t));
      (*pids)[0] = s->st->pid;
      *n = 1;
    }
  sbx_cgroup_free (cg);
  sbx_state_free (s);
  return r;
}
