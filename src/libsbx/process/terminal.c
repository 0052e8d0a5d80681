/* terminal.c - see terminal.h.  */
#include <config.h>
#include "process/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "core/core.h"

int
sbx_process_pty_open (char **slave, sbx_error **err)
{
  cleanup_close int master = -1;
  char name[64];
  int e;

  /* Open by path rather than posix_openpt() so the pty comes from the
     devpts instance of whatever root we are in now (the container's).  */
  master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return sbx_error_sys (err, "open /dev/ptmx");
  if (grantpt (master) < 0)
    return sbx_error_sys (err, "grantpt");
  if (unlockpt (master) < 0)
    return sbx_error_sys (err, "unlockpt");
  e = ptsname_r (master, name, sizeof name);
  if (e != 0)
    return sbx_error_set (err, e, "ptsname");
  *slave = xstrdup (name);
  return steal_fd (&master);
}

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO ('T', 0x41)
#endif

int
sbx_process_pty_open_peer (int master, const char *slave, sbx_error **err)
{
  int fd = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  struct stat sb;

  if (fd >= 0)
    return fd;
  /* Before Linux 4.13 only the name leads to the slave: it must at least
     be a terminal and not a symlink.  */
  if (errno != EINVAL && errno != ENOTTY)
    return sbx_error_sys (err, "open the terminal's slave (TIOCGPTPEER)");
  fd = open (slave, O_RDWR | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open terminal `%s`", slave);
  if (fstat (fd, &sb) < 0 || !S_ISCHR (sb.st_mode) || !isatty (fd))
    {
      close (fd);
      return sbx_error_set (err, ENOTTY, "`%s` is not a terminal", slave);
    }
  return fd;
}

int
sbx_process_pty_give (const oci_process *p, sbx_error **err)
{
  uid_t uid = p && p->user ? p->user->uid : 0;
  struct stat sb;
  if (fstat (0, &sb) < 0)
    return sbx_error_sys (err, "stat the terminal");
  if (sb.st_uid == uid || fchown (0, uid, (gid_t)-1) == 0)
    return 0;
  if (errno == EINVAL || errno == EPERM)
    {
      sbx_debug ("terminal: cannot give it to uid %u: %s", (unsigned)uid, strerror (errno));
      return 0;
    }
  return sbx_error_sys (err, "give the terminal to process.user.uid %u", (unsigned)uid);
}

int
sbx_process_stdio_give (const char *uid_map, const oci_process *p, sbx_error **err)
{
  uid_t uid = p && p->user ? p->user->uid : 0;
  unsigned long long host = uid;

  if (p == NULL || p->terminal)
    return 0;
  if (uid_map && !sbx_idmap_outside (uid_map, uid, &host))
    return 0;
  for (int fd = 0; fd <= 2; fd++)
    {
      struct stat sb;
      struct statfs sf;
      /* Only anonymous pipes: their inode exists for the pipe alone; a
         named FIFO, a file or the caller's terminal is the host's.  */
      if (fstat (fd, &sb) < 0 || !S_ISFIFO (sb.st_mode) || sb.st_uid == (uid_t)host || fstatfs (fd, &sf) < 0
          || sf.f_type != PIPEFS_MAGIC)
        continue;
      if (fchown (fd, (uid_t)host, (gid_t)-1) == 0)
        continue;
      if (errno == EPERM || errno == EINVAL)
        {
          /* An unprivileged runtime: the pipe stays its own.  */
          sbx_debug ("stdio: cannot give fd %d to uid %llu: %s", fd, host, strerror (errno));
          continue;
        }
      return sbx_error_sys (err, "give fd %d (a pipe) to process.user.uid %u", fd, (unsigned)uid);
    }
  return 0;
}

int
sbx_process_pty_setup_slave_fd (int fd, const char *slave, const oci_console_size *size, sbx_error **err)
{
  /* A fresh session is needed to take a controlling terminal; EPERM only
     means we already lead one.  */
  if (setsid () < 0 && !(errno == EPERM && getsid (0) == getpid ()))
    {
      int e = errno;
      if (fd > 2)
        close (fd);
      return sbx_error_set (err, e, "setsid");
    }
  if (ioctl (fd, TIOCSCTTY, 0) < 0)
    {
      int e = errno;
      if (fd > 2)
        close (fd);
      return sbx_error_set (err, e, "make `%s` the controlling terminal", slave);
    }
  if (size)
    {
      struct winsize ws = { 0 };
      ws.ws_row = size->height > 0xffff ? 0xffff : (unsigned short)size->height;
      ws.ws_col = size->width > 0xffff ? 0xffff : (unsigned short)size->width;
      if (ioctl (fd, TIOCSWINSZ, &ws) < 0)
        {
          int e = errno;
          if (fd > 2)
            close (fd);
          return sbx_error_set (err, e, "set the console size of `%s`", slave);
        }
    }
  for (int target = 0; target <= 2; target++)
    {
      /* dup2 onto itself would keep O_CLOEXEC: clear it by hand.  */
      int r = target == fd ? fcntl (fd, F_SETFD, 0) : dup2 (fd, target);
      if (r < 0)
        {
          int e = errno;
          if (fd > 2)
            close (fd);
          return sbx_error_set (err, e, "dup the terminal onto fd %d", target);
        }
    }
  if (fd > 2)
    close (fd);
  return 0;
}

int
sbx_process_send_fd (int sock, int fd, const char *name, sbx_error **err)
{
  /* Stream sockets need at least one byte of data to carry the fd.  */
  static const char nul = '\0';
  const char *data = name && *name ? name : &nul;
  size_t len = name && *name ? strlen (name) : 1;
  struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
  ssize_t r = sbx_sendmsg_fd (sock, &iov, 1, fd);

  if (r < 0)
    return sbx_error_sys (err, "send file descriptor");
  /* The fd went with the first byte; a short send only leaves name bytes.  */
  while ((size_t)r < len)
    {
      ssize_t w = send (sock, data + r, len - r, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return sbx_error_sys (err, "send file descriptor");
      r += w;
    }
  return 0;
}

static void
copy_winsize (int from, int to)
{
  struct winsize ws;
  if (ioctl (from, TIOCGWINSZ, &ws) == 0)
    ioctl (to, TIOCSWINSZ, &ws);
}

struct proxy
{
  int master;
  int fwd_sigfd, pidfd; /* signals to pass on, and to whom (or -1) */
  bool stdin_tty, stdin_open, want_eof;
  char in[4096];
  size_t in_len, in_off;
  char last_in;
};

/* Our stdin hit EOF and is not a terminal: pass the EOF on as the slave's
   VEOF character (twice if a partial line is pending, the first one only
   flushes it), when the slave is in canonical mode.  */
static void
queue_eof (struct proxy *p)
{
  struct termios t;
  p->want_eof = false;
  if (tcgetattr (p->master, &t) < 0 || !(t.c_lflag & ICANON))
    return;
  p->in_off = 0;
  p->in_len = 0;
  if (p->last_in != '\0' && p->last_in != '\n')
    p->in[p->in_len++] = (char)t.c_cc[VEOF];
  p->in[p->in_len++] = (char)t.c_cc[VEOF];
}

/* One round of poll.  Returns 1 when the master is done, 0 to go on.  */
static int
proxy_step (struct proxy *p, int sigfd, sbx_error **err)
{
  struct pollfd fds[4];
  int r;

  fds[0] = (struct pollfd){ .fd = p->master, .events = POLLIN };
  if (p->in_off < p->in_len)
    fds[0].events |= POLLOUT;
  fds[1] = (struct pollfd){ .fd = p->stdin_open && p->in_off >= p->in_len ? 0 : -1, .events = POLLIN };
  fds[2] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
  fds[3] = (struct pollfd){ .fd = p->pidfd >= 0 ? p->fwd_sigfd : -1, .events = POLLIN };

  r = poll (fds, 4, -1);
  if (r < 0)
    return errno == EINTR ? 0 : sbx_error_sys (err, "poll");

  /* Signals for the container go on while the terminal is proxied.  */
  if (fds[3].revents & POLLIN)
    sbx_forward_signal (p->fwd_sigfd, p->pidfd);

  if (fds[2].revents & POLLIN)
    {
      struct signalfd_siginfo si;
      while (read (sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
      copy_winsize (0, p->master);
    }

  if (fds[1].revents)
    {
      ssize_t n = read (0, p->in, sizeof p->in);
      if (n > 0)
        {
          p->in_off = 0;
          p->in_len = (size_t)n;
        }
      else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        {
          /* EOF, or an unusable stdin (EIO on a hung-up terminal).  */
          p->stdin_open = false;
          p->want_eof = !p->stdin_tty;
        }
    }

  if ((fds[0].revents & POLLOUT) && p->in_off < p->in_len)
    {
      ssize_t n = write (p->master, p->in + p->in_off, p->in_len - p->in_off);
      if (n > 0)
        {
          p->in_off += (size_t)n;
          p->last_in = p->in[p->in_off - 1];
        }
      else if (n < 0 && errno == EIO)
        return 1;
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        return sbx_error_sys (err, "write to the terminal");
    }
  if (p->want_eof && p->in_off >= p->in_len)
    queue_eof (p);

  if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
    {
      char buf[8192];
      ssize_t n = read (p->master, buf, sizeof buf);
      if (n > 0)
        {
          if (sbx_write_all (1, buf, (size_t)n) < 0)
            return sbx_error_sys (err, "write to stdout");
        }
      /* EIO: every slave fd is closed (and its output drained).  */
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        return n == 0 || errno == EIO ? 1 : sbx_error_sys (err, "read from the terminal");
    }
  return 0;
}

int
sbx_process_pty_proxy (int master, int fwd_sigfd, int pidfd, sbx_error **err)
{
  struct proxy p = { .master = master, .stdin_open = true, .fwd_sigfd = fwd_sigfd, .pidfd = pidfd };
  struct termios saved;
  bool raw = false;
  sigset_t winch, old_mask;
  cleanup_close int sigfd = -1;
  int flags, r = 0;

  p.stdin_tty = isatty (0);
  if (p.stdin_tty && tcgetattr (0, &saved) == 0)
    {
      struct termios t = saved;
      cfmakeraw (&t);
      if (tcsetattr (0, TCSANOW, &t) < 0)
        return sbx_error_sys (err, "set the terminal to raw mode");
      raw = true;
      copy_winsize (0, master);
    }

  /* SIGWINCH through a signalfd, so resizes are seen in the poll loop.  */
  sigemptyset (&winch);
  sigaddset (&winch, SIGWINCH);
  sigprocmask (SIG_BLOCK, &winch, &old_mask);
  if (p.stdin_tty)
    sigfd = signalfd (-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);

  /* Non-blocking master: a container that does not read its input must not
     stop us from draining its output.  */
  flags = fcntl (master, F_GETFL);
  if (flags < 0 || fcntl (master, F_SETFL, flags | O_NONBLOCK) < 0)
    r = sbx_error_sys (err, "fcntl on the terminal");

  while (r == 0)
    r = proxy_step (&p, sigfd, err);
  if (r > 0)
    r = 0;

  if (flags >= 0)
    fcntl (master, F_SETFL, flags);
  sigprocmask (SIG_SETMASK, &old_mask, NULL);
  if (raw)
    tcsetattr (0, TCSADRAIN, &saved);
  return r;
}
