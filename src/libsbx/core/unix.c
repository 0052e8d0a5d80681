/* core/unix.c - connecting to a unix socket by path, also when the path is
 * longer than sun_path (through a directory fd), and sending an fd with
 * SCM_RIGHTS.  */
#include <config.h>
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sched.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

static int
connect_to (int fd, const char *name)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t len = strlen (name);

  if (len >= sizeof addr.sun_path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  memcpy (addr.sun_path, name, len + 1);
  return connect (fd, (struct sockaddr *)&addr, offsetof (struct sockaddr_un, sun_path) + len + 1);
}

/* Paths longer than sun_path go through a directory fd: first as
   /proc/self/fd/N/name, else (no /proc) by a temporary fchdir.  */
static int
connect_long (int fd, const char *path)
{
  cleanup_free char *dir = NULL;
  cleanup_close int dirfd = -1;
  const char *slash = strrchr (path, '/');
  const char *base;
  char proc_path[sizeof ((struct sockaddr_un *)0)->sun_path + 32];
  int r;

  if (slash == NULL)
    {
      errno = ENAMETOOLONG; /* a single name longer than sun_path */
      return -1;
    }
  dir = slash == path ? xstrdup ("/") : xasprintf ("%.*s", (int)(slash - path), path);
  base = slash + 1;
  dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return -1;

  r = snprintf (proc_path, sizeof proc_path, "/proc/self/fd/%d/%s", dirfd, base);
  if (r > 0 && (size_t)r < sizeof ((struct sockaddr_un *)0)->sun_path)
    {
      r = connect_to (fd, proc_path);
      if (r == 0 || access ("/proc/self/fd", F_OK) == 0)
        return r;
    }

  {
    cleanup_close int cwd = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int e;
    if (cwd < 0 || fchdir (dirfd) < 0)
      return -1;
    r = connect_to (fd, base);
    e = errno;
    if (fchdir (cwd) < 0)
      sbx_warn ("could not return to the working directory: %s", strerror (errno));
    errno = e;
    return r;
  }
}

int
sbx_unix_connect (const char *path, sbx_error **err)
{
  cleanup_close int fd = -1;
  struct sockaddr_un addr;
  int r;

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return sbx_error_sys (err, "socket");
  if (strlen (path) < sizeof addr.sun_path)
    r = connect_to (fd, path);
  else
    r = connect_long (fd, path);
  if (r < 0)
    return sbx_error_sys (err, "connect to `%s`", path);
  return steal_fd (&fd);
}

ssize_t
sbx_sendmsg_fds (int sock, struct iovec *iov, size_t niov, const int *fds, size_t nfds)
{
  union
  {
    struct cmsghdr h;
    char buf[CMSG_SPACE (SBX_MAX_SEND_FDS * sizeof (int))];
  } ctrl;
  struct msghdr msg = { .msg_iov = iov, .msg_iovlen = niov };
  ssize_t r;

  if (nfds > SBX_MAX_SEND_FDS)
    {
      errno = E2BIG;
      return -1;
    }
  if (nfds)
    {
      struct cmsghdr *c;
      memset (&ctrl, 0, sizeof ctrl);
      msg.msg_control = ctrl.buf;
      msg.msg_controllen = CMSG_SPACE (nfds * sizeof (int));
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (nfds * sizeof (int));
      memcpy (CMSG_DATA (c), fds, nfds * sizeof (int));
    }
  do
    r = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r;
}

ssize_t
sbx_sendmsg_fd (int sock, struct iovec *iov, size_t niov, int fd)
{
  return sbx_sendmsg_fds (sock, iov, niov, &fd, fd >= 0);
}

/* A child in a user namespace: a new one (nsfd < 0) or nsfd joined.  It
   waits until *hold is closed; then wait for it (ns_child_end).  */
static pid_t
ns_child (int nsfd, int *hold_out, sbx_error **err)
{
  int ready[2], hold[2];
  char c = 0;
  pid_t pid;

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return sbx_error_sys (err, "pipe");
  if (pipe2 (hold, O_CLOEXEC) < 0)
    {
      close (ready[0]), close (ready[1]);
      return sbx_error_sys (err, "pipe");
    }
  pid = fork ();
  if (pid == 0)
    {
      /* Only async-signal-safe calls: enter, say so, wait for EOF.  */
      char b = (nsfd < 0 ? unshare (CLONE_NEWUSER) : setns (nsfd, CLONE_NEWUSER)) == 0 ? 1 : 0;
      close (ready[0]);
      close (hold[1]);
      if (write (ready[1], &b, 1) != 1 || !b)
        _exit (1);
      while (read (hold[0], &b, 1) < 0 && errno == EINTR)
        ;
      _exit (0);
    }
  close (ready[1]);
  close (hold[0]);
  if (pid < 0)
    {
      int e = errno;
      close (ready[0]), close (hold[1]);
      return sbx_error_set (err, e, "fork");
    }
  if (read (ready[0], &c, 1) != 1 || !c)
    {
      close (ready[0]);
      close (hold[1]);
      while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
      return sbx_error_set (err, EPERM,
                            nsfd < 0 ? "a user namespace for the id mapping could not be made"
                                     : "the user namespace could not be joined to read its id maps");
    }
  close (ready[0]);
  *hold_out = hold[1];
  return pid;
}

static void
ns_child_end (pid_t pid, int hold)
{
  close (hold);
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

int
sbx_userns_fd (const char *uid_map, const char *gid_map, sbx_error **err)
{
  int hold = -1, fd = -1, procfd;
  char path[64];
  pid_t pid = ns_child (-1, &hold, err);

  if (pid < 0)
    return -1;
  if ((procfd = sbx_proc_open (AT_FDCWD, "/proc", err)) >= 0)
    {
      /* through the checked procfs, as every map the runtime writes */
      const char *files[2] = { "uid_map", "gid_map" }, *maps[2] = { uid_map, gid_map };
      fd = 0;
      for (int i = 0; i < 2 && fd == 0; i++)
        {
          snprintf (path, sizeof path, "%d/%s", (int)pid, files[i]);
          if (sbx_proc_write (procfd, path, maps[i], strlen (maps[i]), err) < 0)
            fd = sbx_error_wrap (err, "%s `%s`", files[i], maps[i]);
        }
      if (fd == 0)
        {
          snprintf (path, sizeof path, "%d/ns/user", (int)pid);
          fd = openat (procfd, path, O_RDONLY | O_CLOEXEC);
          if (fd < 0)
            sbx_error_sys (err, "open `/proc/%s`", path);
        }
      close (procfd);
    }
  ns_child_end (pid, hold);
  return fd;
}

int
sbx_userns_maps (int nsfd, char **uid_map, char **gid_map, sbx_error **err)
{
  int hold = -1, r = -1, procfd;
  char path[64];
  pid_t pid;

  *uid_map = *gid_map = NULL;
  pid = ns_child (nsfd, &hold, err);
  if (pid < 0)
    return -1;
  if ((procfd = sbx_proc_open (AT_FDCWD, "/proc", err)) >= 0)
    {
      const char *files[2] = { "uid_map", "gid_map" };
      char **out[2] = { uid_map, gid_map };
      r = 0;
      for (int i = 0; i < 2 && r == 0; i++)
        {
          cleanup_close int fd = -1;
          snprintf (path, sizeof path, "%d/%s", (int)pid, files[i]);
          fd = openat (procfd, path, O_RDONLY | O_CLOEXEC);
          if (fd < 0)
            r = sbx_error_sys (err, "open `/proc/%s`", path);
          else if (sbx_read_fd (fd, 1 << 16, out[i], NULL, err) < 0)
            r = sbx_error_wrap (err, "read `/proc/%s`", path);
        }
      close (procfd);
    }
  ns_child_end (pid, hold);
  if (r < 0)
    {
      free (*uid_map), free (*gid_map);
      *uid_map = *gid_map = NULL;
    }
  return r;
}

bool
sbx_idmap_outside (const char *map, unsigned long long id, unsigned long long *out)
{
  for (const char *line = map; line && *line; line = strchr (line, '\n') ? strchr (line, '\n') + 1 : NULL)
    {
      unsigned long long inside, outside, count;
      if (sscanf (line, "%llu %llu %llu", &inside, &outside, &count) == 3 && id >= inside
          && id - inside < count)
        {
          *out = outside + (id - inside);
          return true;
        }
    }
  return false;
}
