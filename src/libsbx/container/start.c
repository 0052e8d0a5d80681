/* container/start.c - start: tell the created init to exec, and wait until
 * it has (or say how it died before).  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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


/* ---------------------------------------------------------------- start */

/* A create or start that failed because the init vanished (EOF on the
   sync socket, "killed by signal 9 before exec"): when it died of SIGKILL
   and the container's memory cgroup counts an OOM kill (no container code
   has run yet), the memory limit was too small for the setup, which runs
   partly in that cgroup, or for the exec.  Say that instead.  */
void
sbx_explain_oom (sbx_cgroup *cg, const oci_config *c, pid_t pid, int pidfd, const char *when, sbx_error **err)
{
  const oci_resources *r = c && c->linux ? c->linux->resources : NULL;
  const oci_memory *m = r ? r->memory : NULL;
  sbx_cgroup_stats st = { 0 };
  siginfo_t si = { 0 };
  uint64_t kills;

  if (err == NULL || *err == NULL || cg == NULL || pid <= 0 || m == NULL || !m->has_limit || m->limit < 0)
    return;
  if (pidfd >= 0)
    {
      /* its end of the socket closes a moment before it is a zombie */
      struct pollfd p = { pidfd, POLLIN, 0 };
      poll (&p, 1, 1000);
    }
  if (waitid (P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
    {
      if (si.si_pid != pid || si.si_code != CLD_KILLED || si.si_status != SIGKILL)
        return; /* alive, or gone otherwise */
    }
  else if (sbx_pid_start_time (pid) != 0)
    return; /* not our child (start), and still there */
  if (sbx_cgroup_get_stats (cg, &st, NULL) < 0)
    return;
  kills = st.has_memory ? st.memory_oom_kill : 0;
  sbx_cgroup_stats_release (&st);
  if (kills == 0)
    return;
  sbx_error_free (*err);
  *err = NULL;
  sbx_error_set (
      err, ENOMEM,
      "the container's init was OOM-killed %s: linux.resources.memory.limit %lld bytes is too small "
      "for it (the memory cgroup counted %llu OOM kill%s)",
      when, (long long)m->limit, (unsigned long long)kills, kills == 1 ? "" : "s");
}

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
sbx_expect_outcome (int r, sbx_error **e, pid_t pid, const oci_config *c, sbx_error **err)
{
  if (r == SBX_SYNC_HUNG_UP)
    return sbx_died_before_exec (pid, c, err);
  if (r < 0)
    {
      *err = steal_ptr (*e);
      return -1;
    }
  return r;
}

/* pidfd_getfd(2) the fd `at` of PID once it is the seccomp listener (the
   process loads the filter right after announcing the number).  A word on
   CONN before that is its error, EOF its death.  */
static int
grab_listener (int conn, pid_t pid, const char *at, sbx_error **err)
{
  char *end;
  long n = strtol (at, &end, 10);
  if (*end || n < 0 || n > INT_MAX)
    return sbx_error_set (err, EPROTO, "seccomp notify: bad listener fd `%s`", at);
  cleanup_close int pidfd = sbx_pidfd_open (pid);
  if (pidfd < 0)
    return sbx_error_sys (err, "seccomp notify: pidfd_open %d", (int)pid);
  for (int tries = 0; tries < 10000; tries++)
    {
      int fd = (int)syscall (SYS_pidfd_getfd, pidfd, (int)n, 0);
      if (fd >= 0)
        {
          char link[64], proc[32];
          snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
          ssize_t k = readlink (proc, link, sizeof link - 1);
          if (k > 0 && (link[k] = '\0', strcmp (link, "anon_inode:seccomp notify") == 0))
            return fd;
          close (fd);
        }
      else if (errno != EBADF)
        return sbx_error_sys (err, "seccomp notify: pidfd_getfd %d of %d", (int)n, (int)pid);
      struct pollfd q = { .fd = conn, .events = POLLIN };
      if (poll (&q, 1, 1) > 0)
        {
          cleanup_error sbx_error *e = NULL;
          int r = sbx_process_sync_expect (conn, SYNC_GO, NULL, &e);
          if (r == SBX_SYNC_HUNG_UP)
            return sbx_error_set (err, ECHILD,
                                  "the container process exited before exec "
                                  "(loading its seccomp filter)");
          if (e)
            *err = steal_ptr (e);
          else
            sbx_error_set (err, EPROTO, "seccomp notify: unexpected message");
          return -1;
        }
    }
  return sbx_error_set (err, ETIMEDOUT, "seccomp notify: the listener fd never appeared");
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
      cleanup_free char *at = NULL;
      int r = sbx_process_sync_expect_text (conn, SYNC_EXEC_READY, &notify_fd, &at, &e);
      if (r == SBX_SYNC_HUNG_UP)
        {
          if (heard)
            return 0;
          sbx_died_before_exec (pid, c, err);
          return SBX_SYNC_HUNG_UP;
        }
      if (r < 0)
        {
          *err = steal_ptr (e);
          return -1;
        }
      heard = true;
      if (notify_fd < 0 && at && *at)
        {
          /* The listener's fd number, announced before the filter loads
             (notify_then_exec): take it from the process.  */
          notify_fd = grab_listener (conn, pid, at, err);
          if (notify_fd < 0)
            return -1;
        }
      if (notify_fd >= 0)
        {
          cleanup_free char *json = sbx_state_json (s, c, "running", false);
          r = sbx_seccomp_notify_send (c->linux->seccomp, notify_fd, pid, json, err);
          close (notify_fd);
          if (r < 0)
            return -1; /* the process sees EOF and does not exec */
          /* The listener has it: the process may exec now.  */
          if (sbx_process_sync_send (conn, SYNC_GO, -1, err) < 0)
            return -1;
        }
    }
}

/* Ask the init blocked on start.sock to exec; returns once it did (the
   connection closes on exec) or with its error: SBX_SYNC_HUNG_UP when it hung
   up without a word.  */
static int
request_start (sbx_state *s, const oci_config *c, sbx_error **err)
{
  struct sockaddr_un sa;
  cleanup_close int conn = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  int r;

  if (conn < 0)
    return sbx_error_sys (err, "socket");
  if (connect (conn, (struct sockaddr *)&sa, sbx_dir_sockaddr (s->dir_fd, "start.sock", &sa)) < 0)
    return sbx_error_sys (err, "container \"%s\": connect to its init", s->id);
  {
    cleanup_error sbx_error *e = NULL;
    r = sbx_process_sync_send (conn, SYNC_GO, -1, &e);
    /* An init that died before it took the connection (killed in accept)
       resets it: a hang-up like any other.  */
    if (r < 0 && e && (e->errno_ == ECONNRESET || e->errno_ == EPIPE))
      {
        sbx_died_before_exec (s->st->pid, c, err);
        r = SBX_SYNC_HUNG_UP;
      }
    else if (r < 0)
      *err = steal_ptr (e);
  }
  if (r == 0)
    r = sbx_await_exec (conn, s, c, s->st->pid, err);
  if (r < 0)
    sbx_error_wrap (err, "container \"%s\": start", s->id);
  return r;
}

/* Whether the config's ociVersion is 1.3 or later, whose lifecycle makes
   a failing poststart hook stop the container.  */
static bool
poststart_failure_stops (const oci_config *c)
{
  unsigned major = 0, minor = 0;
  return c->oci_version && sscanf (c->oci_version, "%u.%u", &major, &minor) == 2
         && (major > 1 || (major == 1 && minor >= 3));
}

/* `may_retry`: a start that the init never took leaves the container
   created (not for run, which kills the init on failure).  */
int
sbx_container_start_locked (sbx_state *s, bool may_retry, sbx_error **err)
{
  cleanup_oci_config oci_config *owned = NULL;
  const oci_config *c = NULL;
  const char *status = sbx_state_status (s);
  int r;

  if (strcmp (status, "created") != 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" cannot be started: it is %s", s->id, status);
  if (sbx_state_config_ref (s, &c, &owned, err) < 0)
    return -1;
  r = request_start (s, c, err);
  if (r < 0)
    {
      /* The init exits right after reporting: wait for it, so that the
         container reads "stopped" as soon as start has failed.  */
      cleanup_close int pidfd = sbx_pidfd_open (s->st->pid);
      struct pollfd p = { pidfd, POLLIN, 0 };
      sbx_cgroup *cg = NULL;
      if (pidfd >= 0)
        poll (&p, 1, 2000);
      if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, NULL) == 0)
        {
          sbx_explain_oom (cg, c, s->st->pid, pidfd, "before exec", err);
          sbx_cgroup_free (cg);
        }
      waitpid (s->st->pid, NULL, WNOHANG);
    }
  if (r == SBX_SYNC_HUNG_UP && may_retry && sbx_state_alive (s))
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
      sbx_process_hooks_set_output (c);
      /* runtime.md, lifecycle step 9: up to runtime-spec 1.2 a failing
         poststart hook is a warning and the lifecycle goes on (the OCI
         validation suite checks it); from 1.3 on (runc did so before) it
         is an error: the container is stopped (killed), the hooks after
         it do not run, and the lifecycle goes on with its destruction
         (run deletes it, start leaves it stopped for delete).  The
         config's ociVersion says which.  */
      if (!poststart_failure_stops (c))
        sbx_process_hooks_run_warn ("poststart", c->hooks->poststart, c->hooks->poststart_len, json);
      else if (sbx_process_hooks_run ("poststart", c->hooks->poststart, c->hooks->poststart_len, json, err)
               < 0)
        {
          sbx_cgroup *cg = NULL;
          if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, NULL) < 0)
            cg = NULL;
          sbx_container_kill_and_wait (s, cg, false);
          sbx_cgroup_free (cg);
          sbx_error_wrap (err, "container \"%s\": stopped", s->id);
          r = -1;
        }
    }
  return r < 0 ? -1 : 0;
}

int
sbx_container_start (const char *root, const char *id, sbx_error **err)
{
  sbx_state *s = NULL;
  int r;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  r = sbx_container_start_locked (s, true, err);
  sbx_state_free (s);
  return r;
}
