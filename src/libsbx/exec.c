/* exec.c - `exec`: a new process in a running container.  The runtime joins
 * the container's pid (and time) namespace for its child, the child joins
 * the rest through the init's pidfd in one setns call, enters the cgroup,
 * and then finishes like the init (process.c).  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "lifecycle.h"
#include "namespaces.h"
#include "netfilter.h"
#include "process.h"
#include "seccomp.h"
#include "sync.h"
#include "terminal.h"
#include "utils.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

int
sbx_container_exec_base (const char *root, const char *id, oci_process **out, sbx_error **err)
{
  sbx_state *s = NULL;
  oci_config *c = NULL;
  int r = -1;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  if (sbx_state_config (s, &c, err) == 0)
    {
      *out = ocispec_dup (&oci_process_type, c->process);
      if (*out == NULL)
        sbx_error_set (err, EINVAL, "container \"%s\" has no process", id);
      else
        r = 0;
    }
  oci_config_free (c);
  sbx_state_free (s);
  return r;
}

struct exec_child
{
  const sbx_exec_opts *o;
  const sbx_seccomp *sc;
  int init_pidfd;
  int ns_flags; /* joined by the child */
  int sync_child, sync_parent;
  bool userns;
};

static _Noreturn void
exec_child_main (struct exec_child *x)
{
  cleanup_error sbx_error *err = NULL;
  const oci_process *p = x->o->process;

  close (x->sync_parent);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* Container processes must not reach our /proc/<pid>/exe.  */
  prctl (PR_SET_DUMPABLE, 0);
  if (sbx_sync_expect (x->sync_child, SYNC_GO, NULL, &err) < 0)
    _exit (1);
  if (x->ns_flags && setns (x->init_pidfd, x->ns_flags) < 0)
    {
      sbx_error_sys (&err, "join the container's namespaces");
      goto fail;
    }
  close (x->init_pidfd);
  if (p->terminal)
    {
      cleanup_free char *slave = NULL;
      cleanup_close int master = sbx_pty_open (&slave, &err);
      int peer = master < 0 ? -1 : sbx_pty_open_peer (master, slave, &err);
      if (peer < 0)
        goto fail;
      if (sbx_sync_send_text (x->sync_child, SYNC_PTY, master, slave, &err) < 0)
        {
          close (peer);
          goto fail;
        }
      if (sbx_pty_setup_slave_fd (peer, slave, p->console_size, &err) < 0)
        goto fail;
    }
  {
    sbx_exec_ctx ctx
        = { .p = p, .seccomp = x->sc, .preserve_fds = x->o->preserve_fds, .notify_sock = x->sync_child,
            .procfd = -1 };
    /* Set up: from here the process outlives us (exec --detach), and a
       runtime that dies now leaves it to exec or, waiting for a seccomp
       listener's go, to see EOF and exit.  */
    prctl (PR_SET_PDEATHSIG, 0);
    sbx_process_exec (&ctx, &err);
  }
fail:
  sbx_sync_send_error (x->sync_child, err);
  _exit (127);
}

static int
exec_locked (const sbx_exec_opts *o, sbx_state *s, const oci_config *c, pid_t *pid_out, int *pidfd_out,
             int *pty_out, sbx_error **err)
{
  struct exec_child x = { .o = o, .init_pidfd = -1, .sync_child = -1, .sync_parent = -1 };
  sbx_seccomp *sc = NULL;
  sbx_cgroup *cg = NULL;
  struct clone_args ca = { .flags = CLONE_PIDFD, .exit_signal = SIGCHLD };
  int sp[2], pidfd = -1, pty = -1, r = -1;
  pid_t pid = -1;
  const char *status = sbx_state_status (s);

  if (strcmp (status, "running") != 0 && strcmp (status, "created") != 0)
    return sbx_error_set (err, EINVAL, "cannot exec in container \"%s\": it is %s", s->id, status);
  if (sbx_process_validate (o->process, err) < 0)
    return -1;
  if (c->linux && c->linux->seccomp
      && sbx_seccomp_check_notify (c->linux->seccomp, o->process->no_new_privileges, err) < 0)
    return -1;
  if (sbx_net_exec_check (c, o->process, err) < 0) /* the egress policy stays */
    return -1;
  if (o->process->terminal && o->detach && !o->console_socket)
    return sbx_error_set (err, EINVAL, "exec: a terminal for a detached process needs --console-socket");
  x.init_pidfd = sbx_pidfd_open (s->st->pid);
  if (x.init_pidfd < 0 || !sbx_state_alive (s))
    return sbx_error_set (err, ESRCH, "container not running");
  for (size_t i = 0; c->linux && i < c->linux->namespaces_len; i++)
    {
      int f = sbx_ns_flag (c->linux->namespaces[i]->type);
      if (f == CLONE_NEWPID || f == CLONE_NEWTIME)
        {
          if (setns (x.init_pidfd, f) < 0)
            {
              sbx_error_sys (err, "join the container's %s namespace", sbx_ns_proc_name (f));
              goto out;
            }
        }
      else
        x.ns_flags |= f;
    }
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
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    {
      sbx_error_sys (err, "socketpair");
      goto out;
    }
  x.sync_parent = sp[0];
  x.sync_child = sp[1];
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  pid = sbx_spawn_in_cgroup (&ca, cg, "the exec process", err);
  if (pid < 0)
    goto out;
  if (pid == 0)
    exec_child_main (&x);
  close (x.sync_child);
  x.sync_child = -1;
  if (sbx_sync_send (x.sync_parent, SYNC_GO, -1, err) < 0)
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
  if (r < 0 && pid > 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
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
