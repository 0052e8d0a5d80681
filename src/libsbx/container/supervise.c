/* container/supervise.c - the foreground of `run` and `exec`: signals
 * forwarded to the container process, the terminal proxied when we own
 * it, and its exit status turned into ours.  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "core/core.h"
#include "process/process.h"

static int
exit_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 255;
}

void
sbx_forwarded_signals (sigset_t *set)
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

  sbx_forwarded_signals (&set);
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
      if (sbx_process_pty_proxy (pty, sfd, pidfd, &e) < 0)
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

