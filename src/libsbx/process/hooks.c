/* hooks.c - see hooks.h.
 *
 * Each hook is forked and exec'd directly (no shell, no PATH search).  The
 * parent feeds the state through a non-blocking pipe from the same poll()
 * loop that waits on the child's pidfd, so a hook that never reads its stdin
 * cannot block us past its timeout.  */
#include <config.h>
#include "process/process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* run.oci.hooks.stdout / stderr of the container whose hooks run.  */
static char *out_path, *err_path;

void
sbx_process_hooks_set_output (const oci_config *c)
{
  free (out_path);
  free (err_path);
  out_path = err_path = NULL;
  if (c == NULL)
    return;
  const char *o = ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len,
                                   SBX_ANN_HOOKS_STDOUT);
  const char *e = ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len,
                                   SBX_ANN_HOOKS_STDERR);
  out_path = o && *o ? xstrdup (o) : NULL;
  err_path = e && *e ? xstrdup (e) : NULL;
}

static int
open_output (const char *path, const char *what, sbx_error **err)
{
  int fd;
  if (path == NULL)
    return -1;
  fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    return sbx_error_sys (err, "%s `%s`", what, path);
  return fd;
}

/* Mark every fd >= 3 close-on-exec in the forked child.  Only async-signal
   safe calls: we may have been forked from a multi-threaded process.  */
static void
child_cloexec_from_3 (void)
{
  struct rlimit rl;
  int max = 65536;

#ifdef SYS_close_range
  if (syscall (SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    return;
#endif
  /* Kernel older than 5.11.  */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
    max = (int) rl.rlim_cur;
  for (int fd = 3; fd < max; fd++)
    {
      int fl = fcntl (fd, F_GETFD);
      if (fl >= 0 && !(fl & FD_CLOEXEC))
        fcntl (fd, F_SETFD, fl | FD_CLOEXEC);
    }
}

/* A NULL-terminated copy of v[0..n) (the config arrays are counted, not
   terminated); if n == 0, { first, NULL } or just { NULL }.  */
static char **
make_vector (char *const *v, size_t n, char *first)
{
  char **r = xmalloc0 ((n + 2) * sizeof *r);
  if (v == NULL || n == 0)
    r[0] = first;
  else
    memcpy (r, v, n * sizeof *r);
  return r;
}

/* Never returns.  Reports an exec failure as an int errno on errfd.  */
static void __attribute__ ((noreturn)) child_exec (const oci_hook *h, char *const *argv, char *const *envp,
                                                   int stdin_fd, int errfd, int outfd, int hook_errfd)
{
  struct sigaction sa;
  sigset_t none;
  int e;

  /* Hooks start with default dispositions and an empty mask, whatever the
     runtime ignores or blocks (SIGPIPE in particular).  */
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++)
    sigaction (s, &sa, NULL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);

  /* errfd must not be clobbered by the dup2 onto 0.  */
  if (errfd < 3)
    {
      int moved = fcntl (errfd, F_DUPFD_CLOEXEC, 3);
      if (moved < 0)
        _exit (127);
      errfd = moved;
    }
  if (stdin_fd == 0)
    {
      if (fcntl (0, F_SETFD, 0) < 0)
        goto fail;
    }
  else if (dup2 (stdin_fd, 0) < 0)
    goto fail;
  if ((outfd >= 0 && dup2 (outfd, 1) < 0) || (hook_errfd >= 0 && dup2 (hook_errfd, 2) < 0))
    goto fail;

  child_cloexec_from_3 ();
  execve (h->path, argv, envp ? envp : environ);
fail:
  e = errno;
  if (write (errfd, &e, sizeof e) < 0)
    {
      /* nothing more we can do */
    }
  _exit (127);
}

/* Write as much of the state as the pipe takes.  Returns 1 when done (all
   written, or the hook closed its stdin), 0 to continue, -1 on error.  */
static int
feed_state (int fd, const char *buf, size_t len, size_t *off)
{
  while (*off < len)
    {
      ssize_t w = write (fd, buf + *off, len - *off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        return 0;
      if (w < 0 && errno == EPIPE)
        return 1; /* the hook does not read its stdin: its business */
      if (w < 0)
        return -1;
      *off += (size_t) w;
    }
  return 1;
}

/* Wait for pid, feeding the state meanwhile.  *timed_out is set when the
   deadline passed and the child was killed; *status is the wait status.  */
static int
wait_hook (pid_t pid, int pidfd, int wfd, const char *state, size_t len, int timeout_s,
           int *status, bool *timed_out, sbx_error **err)
{
  int64_t deadline = timeout_s > 0 ? sbx_now_ms () + (int64_t) timeout_s * 1000 : -1;
  size_t off = 0;
  bool exited = false;

  *timed_out = false;
  while (!exited)
    {
      struct pollfd fds[2];
      nfds_t n = 0;
      int wait_ms = -1, r;

      if (wfd >= 0)
        {
          int f = feed_state (wfd, state, len, &off);
          if (f < 0)
            {
              sbx_error_sys (err, "write the state to the hook's stdin");
              close (wfd);
              kill (pid, SIGKILL);
              waitpid (pid, status, 0);
              return -1;
            }
          if (f == 1)
            {
              close (wfd);
              wfd = -1;
            }
        }

      if (pidfd >= 0)
        fds[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
      if (wfd >= 0)
        fds[n++] = (struct pollfd){ .fd = wfd, .events = POLLOUT };
      if (deadline >= 0)
        {
          int64_t left = deadline - sbx_now_ms ();
          wait_ms = left > 0 ? (int) (left > INT_MAX ? INT_MAX : left) : 0;
        }
      /* Without a pidfd (old kernel), poll the child's state at 20ms.  */
      if (pidfd < 0 && (wait_ms < 0 || wait_ms > 20))
        wait_ms = 20;

      r = poll (fds, n, wait_ms);
      if (r < 0 && errno != EINTR)
        {
          sbx_error_sys (err, "poll");
          kill (pid, SIGKILL);
          waitpid (pid, status, 0);
          if (wfd >= 0)
            close (wfd);
          return -1;
        }

      r = waitpid (pid, status, WNOHANG);
      if (r == pid)
        exited = true;
      else if (r < 0 && errno != EINTR)
        {
          if (wfd >= 0)
            close (wfd);
          return sbx_error_sys (err, "waitpid");
        }
      else if (deadline >= 0 && sbx_now_ms () >= deadline)
        {
          *timed_out = true;
          kill (pid, SIGKILL);
          while (waitpid (pid, status, 0) < 0 && errno == EINTR)
            ;
          exited = true;
        }
    }
  if (wfd >= 0)
    close (wfd);
  return 0;
}

/* Run one hook; errors carry no context (the caller adds it).  */
static int
run_one (const oci_hook *h, const char *state, size_t len, sbx_error **err)
{
  cleanup_close int pidfd = -1;
  cleanup_free char **argv = NULL;
  cleanup_free char **envp = NULL;
  int in_pipe[2], err_pipe[2];
  cleanup_close int outfd = -1, hook_errfd = -1;
  int status = 0, child_errno = 0;
  bool timed_out = false;
  ssize_t got;
  pid_t pid;

  if (h->path == NULL || h->path[0] != '/')
    return sbx_error_set (err, EINVAL, "path must be absolute");
  if (h->has_timeout && h->timeout <= 0)
    return sbx_error_set (err, EINVAL, "timeout must be greater than zero, got %d",
                          (int) h->timeout);

  /* Built before fork: the child only makes async-signal-safe calls.  */
  argv = make_vector (h->args, h->args_len, h->path);
  /* No `env` at all: the runtime's own environment, as runc gives its
     hooks (so PATH and the caller's variables are there); an `env`, even
     an empty one, is the whole environment.  */
  if (h->env != NULL)
    envp = make_vector (h->env, h->env_len, NULL);

  if (out_path && (outfd = open_output (out_path, SBX_ANN_HOOKS_STDOUT, err)) < 0)
    return -1;
  if (err_path && (hook_errfd = open_output (err_path, SBX_ANN_HOOKS_STDERR, err)) < 0)
    return -1;
  if (pipe2 (in_pipe, O_CLOEXEC) < 0)
    return sbx_error_sys (err, "pipe");
  if (pipe2 (err_pipe, O_CLOEXEC) < 0)
    {
      close (in_pipe[0]);
      close (in_pipe[1]);
      return sbx_error_sys (err, "pipe");
    }

  pid = fork ();
  if (pid < 0)
    {
      int e = errno;
      close (in_pipe[0]), close (in_pipe[1]);
      close (err_pipe[0]), close (err_pipe[1]);
      return sbx_error_set (err, e, "fork");
    }
  if (pid == 0)
    {
      close (in_pipe[1]);
      close (err_pipe[0]);
      child_exec (h, argv, envp, in_pipe[0], err_pipe[1], outfd, hook_errfd);
    }

  close (in_pipe[0]);
  close (err_pipe[1]);

  /* EOF means exec succeeded (the pipe is close-on-exec).  */
  do
    got = read (err_pipe[0], &child_errno, sizeof child_errno);
  while (got < 0 && errno == EINTR);
  close (err_pipe[0]);
  if (got == (ssize_t) sizeof child_errno)
    {
      close (in_pipe[1]);
      while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
      return sbx_error_set (err, child_errno, "exec");
    }

  pidfd = sbx_pidfd_open (pid);
  if (fcntl (in_pipe[1], F_SETFL, O_NONBLOCK) < 0)
    {
      int e = errno;
      close (in_pipe[1]);
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      return sbx_error_set (err, e, "fcntl");
    }

  /* A write to a pipe whose reader is gone raises SIGPIPE in this thread:
     block it for the duration and discard any instance we caused, so the
     caller's disposition does not matter.  */
  {
    sigset_t pipe_set, old, pending;
    bool was_pending;
    int r;

    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    sigpending (&pending);
    was_pending = sigismember (&pending, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, &old);

    r = wait_hook (pid, pidfd, in_pipe[1], state, len, h->has_timeout ? h->timeout : 0, &status,
                   &timed_out, err);

    if (!was_pending)
      {
        struct timespec zero = { 0, 0 };
        while (sigtimedwait (&pipe_set, NULL, &zero) > 0)
          ;
      }
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (r < 0)
      return r;
  }

  if (timed_out)
    return sbx_error_set (err, 0, "timed out after %ds", (int) h->timeout);
  if (WIFEXITED (status) && WEXITSTATUS (status) != 0)
    return sbx_error_set (err, 0, "exited with status %d", WEXITSTATUS (status));
  if (WIFSIGNALED (status))
    return sbx_error_set (err, 0, "killed by signal %d", WTERMSIG (status));
  return 0;
}

int
sbx_process_hooks_run (const char *kind, oci_hook *const *hooks, size_t n, const char *state_json,
                       sbx_error **err)
{
  size_t len = state_json ? strlen (state_json) : 0;

  for (size_t i = 0; i < n; i++)
    {
      const oci_hook *h = hooks[i];
      if (h == NULL)
        continue;
      sbx_debug ("running %s hook #%zu: %s", kind, i + 1, h->path ? h->path : "(null)");
      if (run_one (h, state_json ? state_json : "", len, err) < 0)
        return sbx_error_wrap (err, "%s hook #%zu (%s)", kind, i + 1, h->path ? h->path : "(null)");
    }
  return 0;
}

void
sbx_process_hooks_run_warn (const char *kind, oci_hook *const *hooks, size_t n, const char *state_json)
{
  size_t len = state_json ? strlen (state_json) : 0;

  for (size_t i = 0; i < n; i++)
    {
      cleanup_error sbx_error *e = NULL;
      const oci_hook *h = hooks[i];
      if (h == NULL)
        continue;
      if (run_one (h, state_json ? state_json : "", len, &e) < 0)
        sbx_warn ("%s hook #%zu (%s): %s", kind, i + 1, h->path ? h->path : "(null)", e->msg);
    }
}
