/* exec.c - `exec`: a new process in a running container, in two stages so
 * that nothing of the host is ever visible from inside: a joiner, in the
 * host's pid namespace, drops the runtime's fds and joins the namespaces,
 * root and cgroup of the init; only then does it fork the exec process into
 * the container's pid namespace, which finishes like the init (process/execve.c).  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "container/container.h"
#include "container/container_internal.h"
#include "core/core.h"
#include "egress/egress.h"
#include "process/process.h"
#include "security/security.h"


/* What both stages of the exec child need; the runtime fills it before
   the fork.  */
struct exec_child
{
  const sbx_exec_opts *o;
  const sbx_seccomp *sc;
  const oci_linux *linux; /* the container's */
  bool keep_groups;       /* its run.oci.keep_original_groups */
  const sbx_landlock *landlock;
  int init_pidfd;
  int root_fd;  /* the init's root, opened from the host and checked alive */
  int ns_flags; /* every namespace of the container, pid and time included */
  int *cg_fds;  /* the container's cgroup.procs, per hierarchy */
  size_t cg_n;
  bool placed_by_systemd; /* no cg_fds: the runtime has systemd move the
                             joiner, which waits for SYNC_GO */
  int sync_child, sync_parent;
  bool packet_guard; /* the container is under an egress policy */
};

/* Stage 2, the exec process: born in the container's pid namespace, where
   the container can see it, so it starts with nothing of the host (see
   exec_joiner_main).  It is the runtime's child (CLONE_PARENT), which
   supervises it and reports its death before exec.  */
static _Noreturn void
exec_process_main (struct exec_child *x, sbx_exec_prep *prep)
{
  cleanup_error sbx_error *err = NULL;
  const oci_process *p = x->o->process;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* GO once the runtime knows our pid; a runtime that died before our
     PDEATHSIG was set shows as EOF here.  */
  if (sbx_process_sync_expect (x->sync_child, SYNC_GO, NULL, &err) < 0)
    _exit (1);
  if (p->terminal)
    {
      cleanup_free char *slave = NULL;
      cleanup_close int master = sbx_process_pty_open (&slave, &err);
      int peer = master < 0 ? -1 : sbx_process_pty_open_peer (master, slave, &err);
      if (peer < 0)
        goto fail;
      if (sbx_process_sync_send_text (x->sync_child, SYNC_PTY, master, slave, &err) < 0)
        {
          close (peer);
          goto fail;
        }
      if (sbx_process_pty_setup_slave_fd (peer, slave, p->console_size, &err) < 0 || sbx_process_pty_give (p, &err) < 0)
        goto fail;
    }
  {
    sbx_exec_ctx ctx = { .p = p, .seccomp = x->sc, .notify_sock = x->sync_child };
    /* Set up: from here the process outlives us (exec --detach), and a
       runtime that dies now leaves it to exec or, waiting for a seccomp
       listener's go, to see EOF and exit.  */
    prctl (PR_SET_PDEATHSIG, 0);
    sbx_process_finish_exec (&ctx, prep, &err);
  }
fail:
  sbx_process_sync_send_error (x->sync_child, err);
  _exit (127);
}

/* Stage 1, the joiner: still in the host's pid namespace, so no container
   process can see it (CVE-2016-9962: a ptracer in the container reading
   /proc/PID/{cwd,root,fd/N} of a half-joined process).  It drops every
   host fd, joins the namespaces, takes the init's root as its own, enters
   the cgroup, and only then forks the exec process into the container's
   pid namespace and exits.  */
static _Noreturn void
exec_joiner_main (struct exec_child *x)
{
  cleanup_error sbx_error *err = NULL;
  cleanup_free int *keep = xmalloc0 ((3 + x->cg_n) * sizeof (int));
  int nkeep = 0;
  char buf[32];
  sbx_exec_prep prep = SBX_EXEC_PREP_INIT;
  pid_t pid;

  close (x->sync_parent);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* Container processes must not reach our /proc/<pid>/exe; inherited by
     the exec process.  */
  prctl (PR_SET_DUMPABLE, 0);
  keep[nkeep++] = x->sync_child;
  keep[nkeep++] = x->init_pidfd;
  keep[nkeep++] = x->root_fd;
  for (size_t i = 0; i < x->cg_n; i++)
    keep[nkeep++] = x->cg_fds[i];
  /* Errors travel over the sync socket; the log file is the host's.  */
  sbx_log_close ();
  if (sbx_process_close_fds_except (keep, nkeep, x->o->preserve_fds, &err) < 0)
    goto fail;
  /* setns with CLONE_NEWPID sets only our children's namespace: we stay
     invisible.  Through the pidfd, user first, in one call.  */
  if (x->ns_flags && setns (x->init_pidfd, x->ns_flags) < 0)
    {
      sbx_error_sys (&err, "join the container's namespaces");
      goto fail;
    }
  /* The init's root, whether a mount namespace made it (setns put us at
     that namespace's root, which --no-pivot's chroot is not) or not (the
     init only chrooted: we would be on the host's root).  */
  if (fchdir (x->root_fd) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    {
      sbx_error_sys (&err, "enter the container's root");
      goto fail;
    }
  if (sbx_process_cpu_affinity_apply (x->o->process, true, &err) < 0)
    goto fail;
  /* Forked inside, so that pids.max counts the exec process; moved
     there by systemd (rootless from a cgroup that may not reach the
     container's) before we take the process's credentials, while our
     host uid is still the caller's.  */
  if (x->placed_by_systemd && sbx_process_sync_expect (x->sync_child, SYNC_GO, NULL, &err) < 0)
    goto fail;
  if (sbx_cgroup_procs_enter_self (x->cg_fds, x->cg_n, &err) < 0)
    goto fail;
  for (int i = 1; i < nkeep; i++)
    close (keep[i]);
  {
    /* The exec process is born with the container's credentials: a
       CAP_SYS_PTRACE process of the container can inject code into it
       (non-dumpable does not stop a tracer holding the capability), so
       it must hold no more than the container.  */
    sbx_exec_ctx ctx = { .p = x->o->process,
                         .seccomp = x->sc,
                         .preserve_fds = x->o->preserve_fds,
                         .notify_sock = -1,
                         .procfd = -1,
                         .linux = x->linux,
                         .keep_groups = x->keep_groups,
                         .landlock = x->landlock,
                         .packet_guard = x->packet_guard };
    if (sbx_process_drop_privileges (&ctx, &prep, &err) < 0)
      goto fail;
  }
  pid = sbx_process_fork_sibling ();
  if (pid < 0)
    {
      sbx_error_sys (&err, "clone3 the exec process");
      goto fail;
    }
  if (pid == 0)
    exec_process_main (x, &prep);
  snprintf (buf, sizeof buf, "%d", pid);
  if (sbx_process_sync_send_text (x->sync_child, SYNC_CHILD_PID, -1, buf, &err) < 0)
    _exit (1); /* the runtime is gone: the exec process sees EOF */
  _exit (0);
fail:
  sbx_process_sync_send_error (x->sync_child, err);
  _exit (1);
}

/* The init's root as an fd, proven to be the init's: opened by pid, then
   the pidfd (checked against the saved start time) still alive, so a
   recycled pid cannot have substituted another process's root.  */
static int
open_init_root (sbx_state *s, int pidfd, sbx_error **err)
{
  char path[64];
  int fd;
  snprintf (path, sizeof path, "/proc/%d/root", s->st->pid);
  fd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open `%s`", path);
  if (syscall (SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    {
      close (fd);
      return sbx_error_set (err, ESRCH, "container not running");
    }
  return fd;
}

/* Our pipes given to the process's user as the container's user namespace
   maps it: through the maps create recorded, not the init's current
   namespace (its code may have made another).  A container whose create
   recorded none (an older sbxrun's, a rootless runtime's joined
   namespace): the init's.  */
static int
stdio_give (sbx_state *s, bool userns, const oci_process *p, sbx_error **err)
{
  cleanup_free char *map = NULL;
  if (userns && s->st->uid_map == NULL)
    {
      char path[64];
      cleanup_error sbx_error *e = NULL;
      snprintf (path, sizeof path, "/proc/%d/uid_map", s->st->pid);
      if (sbx_read_file (path, 1 << 16, &map, NULL, &e) < 0)
        return 0; /* unknown: left as they are */
    }
  return sbx_process_stdio_give (userns ? (s->st->uid_map ? s->st->uid_map : map) : NULL, p, err);
}

static void
reap (pid_t *pid, bool kill_it)
{
  if (*pid <= 0)
    return;
  if (kill_it)
    kill (*pid, SIGKILL);
  while (waitpid (*pid, NULL, 0) < 0 && errno == EINTR)
    ;
  *pid = -1;
}

static int
exec_locked (const sbx_exec_opts *o, sbx_state *s, const oci_config *c, pid_t *pid_out, int *pidfd_out,
             int *pty_out, sbx_error **err)
{
  struct exec_child x = { .o = o,
                          .linux = c->linux,
                          .keep_groups = sbx_process_annotation_on (c, SBX_ANN_KEEP_GROUPS),
                          .init_pidfd = -1,
                          .root_fd = -1,
                          .sync_child = -1,
                          .sync_parent = -1 };
  sbx_seccomp *sc = NULL;
  cleanup_landlock sbx_landlock *ll = NULL;
  sbx_cgroup *cg = NULL;
  int sp[2], pidfd = -1, pty = -1, r = -1;
  pid_t joiner = -1, pid = -1;
  const char *status = sbx_state_status (s);

  if (strcmp (status, "paused") == 0 && !o->ignore_paused)
    return sbx_error_set (err, EINVAL,
                          "cannot exec in container \"%s\": it is paused (--ignore-paused allows it)", s->id);
  if (strcmp (status, "running") != 0 && strcmp (status, "created") != 0 && strcmp (status, "paused") != 0)
    return sbx_error_set (err, EINVAL, "cannot exec in container \"%s\": it is %s", s->id, status);
  if (sbx_process_validate (o->process, err) < 0)
    return -1;
  if (c->linux && c->linux->seccomp
      && sbx_seccomp_check_notify (c->linux->seccomp, o->process->no_new_privileges, err) < 0)
    return -1;
  if (sbx_net_exec_check (c, s->dir_fd, o->process, &x.packet_guard, err) < 0) /* the egress policy stays */
    return -1;
  if (sbx_landlock_parse (c, true, &ll, err) < 0) /* and so do the Landlock rules */
    return -1;
  x.landlock = ll;
  if (o->process->terminal && o->detach && !o->console_socket)
    return sbx_error_set (err, EINVAL, "exec: a terminal for a detached process needs --console-socket");
  x.init_pidfd = sbx_pidfd_open (s->st->pid);
  if (x.init_pidfd < 0 || !sbx_state_alive (s))
    {
      sbx_error_set (err, ESRCH, "container not running");
      goto out;
    }
  x.root_fd = open_init_root (s, x.init_pidfd, err);
  if (x.root_fd < 0)
    goto out;
  for (size_t i = 0; c->linux && i < c->linux->namespaces_len; i++)
    x.ns_flags |= sbx_process_ns_flag (c->linux->namespaces[i]->type);
  if (stdio_give (s, x.ns_flags & CLONE_NEWUSER, o->process, err) < 0)
    goto out;
  if (c->linux && c->linux->seccomp)
    {
      /* The filter was compiled at create: the cache has it.  */
      cleanup_free char *cache = xasprintf ("%s/.seccomp-cache", o->root);
      if (sbx_seccomp_prepare (c->linux->seccomp, cache, &sc, err) < 0)
        goto out;
    }
  x.sc = sc;
  if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, err) < 0)
    goto out;
  x.placed_by_systemd = cg && sbx_cgroup_placed_by_systemd (cg);
  if (x.placed_by_systemd && o->ncgroups > 0)
    {
      sbx_error_set (err, EACCES,
                     "exec --cgroup: container \"%s\" is a unit of the user's systemd, which sbxrun, run "
                     "from here, may not move processes into; systemd moves the process into the unit's "
                     "cgroup itself, not into a sub-cgroup: run sbxrun inside user@UID.service "
                     "(systemd-run --user --scope sbxrun exec ...)",
                     s->id);
      goto out;
    }
  if (cg && !x.placed_by_systemd
      && sbx_cgroup_procs_open (cg, o->cgroups, o->ncgroups, &x.cg_fds, &x.cg_n, err) < 0)
    goto out;
  if (o->ncgroups > 0 && s->st->cgroup == NULL)
    {
      sbx_error_set (err, EINVAL, "--cgroup: container \"%s\" has no cgroup", s->id);
      goto out;
    }
  /* Everything is open: a paused container's cgroup freezes the joiner
     until `resume`, which needs the lock.  */
  if (strcmp (status, "paused") == 0)
    sbx_state_unlock (s);
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    {
      sbx_error_sys (err, "socketpair");
      goto out;
    }
  x.sync_parent = sp[0];
  x.sync_child = sp[1];
  joiner = fork ();
  if (joiner < 0)
    {
      sbx_error_sys (err, "fork the exec process");
      goto out;
    }
  if (joiner == 0)
    exec_joiner_main (&x);
  close (x.sync_child);
  x.sync_child = -1;
  if (x.placed_by_systemd
      && (sbx_cgroup_attach_by_systemd (cg, joiner, err) < 0
          || sbx_process_sync_send (x.sync_parent, SYNC_GO, -1, err) < 0))
    goto out;
  {
    cleanup_free char *text = NULL;
    long long n;
    int st = 0;
    cleanup_error sbx_error *e = NULL;
    int rr = sbx_process_sync_expect_text (x.sync_parent, SYNC_CHILD_PID, NULL, &text, &e);
    /* The joiner takes the process's credentials (and an early filter): a
       profile refusing what that needs kills it here.  */
    if (sbx_expect_outcome (rr, &e, joiner, c, err) < 0)
      goto out;
    if (sbx_parse_int64 (text, &n) < 0 || n <= 0)
      {
        sbx_error_set (err, EPROTO, "exec: bad pid `%s` from the joining process", text);
        goto out;
      }
    pid = (pid_t)n;
    while (waitpid (joiner, &st, 0) < 0 && errno == EINTR)
      ;
    joiner = -1;
  }
  /* Our child (CLONE_PARENT) and not reaped: the pid cannot be reused.  */
  pidfd = sbx_pidfd_open (pid);
  if (pidfd < 0)
    {
      sbx_error_sys (err, "pidfd_open the exec process");
      goto out;
    }
  /* From outside, on the process that execs: see sched.h.  */
  if (sbx_process_sched_apply_to (pid, o->process, err) < 0)
    goto out;
  /* It leads its own process group, as a shell's job would (done here: our
     child, not exec'd yet, and under no seccomp filter of the container's).
     With a terminal it makes its own session instead; on our own terminal
     it stays in the foreground group, or reading it would stop it.  */
  if (!o->process->terminal && !isatty (STDIN_FILENO) && setpgid (pid, pid) < 0)
    {
      sbx_error_sys (err, "exec: setpgid");
      goto out;
    }
  if (sbx_process_sync_send (x.sync_parent, SYNC_GO, -1, err) < 0)
    goto out;
  if (o->process->terminal && sbx_receive_pty (x.sync_parent, o->console_socket, &pty, err) < 0)
    goto out;
  if (sbx_await_exec (x.sync_parent, s, c, pid, err) < 0)
    goto out;
  if (o->pid_file && sbx_write_pid_file (o->pid_file, pid, err) < 0)
    goto out;
  *pid_out = pid;
  *pidfd_out = steal_fd (&pidfd);
  *pty_out = steal_fd (&pty);
  r = 0;
out:
  if (r < 0)
    {
      reap (&pid, true);
      reap (&joiner, true);
    }
  if (pidfd >= 0)
    close (pidfd);
  if (pty >= 0)
    close (pty);
  if (x.sync_parent >= 0)
    close (x.sync_parent);
  if (x.sync_child >= 0)
    close (x.sync_child);
  if (x.init_pidfd >= 0)
    close (x.init_pidfd);
  if (x.root_fd >= 0)
    close (x.root_fd);
  for (size_t i = 0; i < x.cg_n; i++)
    close (x.cg_fds[i]);
  free (x.cg_fds);
  sbx_seccomp_free (sc);
  sbx_cgroup_free (cg);
  return r;
}

int
sbx_container_exec (const sbx_exec_opts *o, sbx_error **err)
{
  sbx_state *s = NULL;
  oci_config *c = NULL;
  pid_t pid = -1;
  int pidfd = -1, pty = -1, r;

  if (o->process == NULL)
    {
      sbx_exec_opts built = *o;
      if (o->flags == NULL)
        return sbx_error_set (err, EINVAL, "exec: no process given");
      if (sbx_container_exec_process (o->root, o->id, o->flags, &built.process, err) < 0)
        return -1;
      r = sbx_container_exec (&built, err);
      ocispec_free (&oci_process_type, built.process);
      return r;
    }
  if (sbx_state_open (o->root, o->id, &s, err) < 0)
    return -1;
  r = sbx_state_config (s, &c, err);
  if (r == 0)
    r = exec_locked (o, s, c, &pid, &pidfd, &pty, err);
  oci_config_free (c);
  sbx_state_free (s); /* unlock before waiting */
  if (r < 0)
    return -1;
  if (o->detach)
    {
      close (pidfd);
      if (pty >= 0)
        close (pty);
      return 0;
    }
  r = sbx_supervise (pid, pidfd, pty, err);
  close (pidfd);
  return r;
}
