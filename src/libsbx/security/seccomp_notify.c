/* security/seccomp_notify.c - the SCMP_ACT_NOTIFY hand-off: the listener
 * fd and the container state sent to linux.seccomp.listenerPath, and the
 * check that no NOTIFY rule covers a syscall the runtime still makes.  */
#include <config.h>
#include "security/security.h"

#include <config.h>
#include "security/security.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>


#include "core/core.h"
#include "security/security_internal.h"

/* Connect to path; paths longer than sun_path go through /proc/self/fd.  */
static int
connect_unix (const char *path, sbx_error **err)
{
  struct sockaddr_un addr;
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cleanup_close int dirfd = -1;
  const char *target = path;
  cleanup_free char *alt = NULL;

  if (fd < 0)
    return sbx_error_sys (err, "socket");
  if (strlen (path) >= sizeof addr.sun_path)
    {
      cleanup_free char *dir = xstrdup (path);
      char *slash = strrchr (dir, '/');
      if (slash == NULL || slash == dir)
        return sbx_error_set (err, ENAMETOOLONG, "linux.seccomp.listenerPath: `%s`", path);
      *slash = '\0';
      dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return sbx_error_sys (err, "linux.seccomp.listenerPath: open `%s`", dir);
      alt = xasprintf ("/proc/self/fd/%d/%s", dirfd, slash + 1);
      if (strlen (alt) >= sizeof addr.sun_path)
        return sbx_error_set (err, ENAMETOOLONG, "linux.seccomp.listenerPath: `%s`", path);
      target = alt;
    }
  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strcpy (addr.sun_path, target);
  while (connect (fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    if (errno != EINTR)
      return sbx_error_sys (err, "linux.seccomp.listenerPath: connect to `%s`", path);
  return steal_fd (&fd);
}

static char *
process_state_json (const oci_seccomp *s, int pid, const oci_state *st, size_t *len)
{
  oj_writer *w = oj_writer_new (false);
  oj_w_begin_object (w);
  oj_w_key (w, "ociVersion");
  oj_w_string (w, OCI_VERSION);
  oj_w_key (w, "fds");
  oj_w_begin_array (w);
  oj_w_string (w, "seccompFd");
  oj_w_end_array (w);
  oj_w_key (w, "pid");
  oj_w_int (w, pid);
  if (s->listener_metadata)
    {
      oj_w_key (w, "metadata");
      oj_w_string (w, s->listener_metadata);
    }
  oj_w_key (w, "state");
  ocispec_write (&oci_state_type, st, w);
  oj_w_end_object (w);
  return oj_writer_finish (w, len);
}

int
sbx_seccomp_notify_send (const oci_seccomp *s, int notify_fd, int pid, const char *oci_state_json,
                         sbx_error **err)
{
  cleanup_free char *emsg = NULL;
  cleanup_free char *json = NULL;
  cleanup_close int sock = -1;
  oci_state *st;
  size_t len = 0, sent = 0;
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctl;

  if (s == NULL || s->listener_path == NULL)
    return sbx_error_set (err, EINVAL, "linux.seccomp.listenerPath: not set");
  if (notify_fd < 0)
    return sbx_error_set (err, EBADF, "seccomp notify: no listener fd");
  if (oci_state_json == NULL)
    return sbx_error_set (err, EINVAL, "seccomp notify: no container state");
  st = ocispec_parse (&oci_state_type, oci_state_json, strlen (oci_state_json), &emsg);
  if (st == NULL)
    return sbx_error_set (err, EINVAL, "seccomp notify: container state: %s", emsg ? emsg : "invalid");
  json = process_state_json (s, pid, st, &len);
  oci_state_free (st);

  sock = connect_unix (s->listener_path, err);
  if (sock < 0)
    return sock;
  while (sent < len)
    {
      struct iovec iov = { .iov_base = json + sent, .iov_len = len - sent };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
      ssize_t n;
      if (sent == 0)
        {
          struct cmsghdr *cm;
          memset (&ctl, 0, sizeof ctl);
          msg.msg_control = ctl.buf;
          msg.msg_controllen = sizeof ctl.buf;
          cm = CMSG_FIRSTHDR (&msg);
          cm->cmsg_level = SOL_SOCKET;
          cm->cmsg_type = SCM_RIGHTS;
          cm->cmsg_len = CMSG_LEN (sizeof (int));
          memcpy (CMSG_DATA (cm), &notify_fd, sizeof (int));
        }
      n = sendmsg (sock, &msg, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return sbx_error_sys (err, "linux.seccomp.listenerPath: send to `%s`", s->listener_path);
      sent += (size_t)n;
    }
  return 0;
}

/* After loading the filter the container process still makes a few
   syscalls of the runtime's own before execve (hand the notify fd over,
   wait for the listener, PATH lookup; without no_new_privs also the user
   and capability switch).  A NOTIFY rule on one of them would wait for a
   listener that cannot have the fd yet: refuse it up front.  */
int
sbx_seccomp_check_notify (const oci_seccomp *s, bool no_new_privs, sbx_error **err)
{
  static const char *const always[]
      = { "sendmsg", "recvmsg", "close", "execve", "execveat", "exit", "exit_group", "mmap", "munmap",
          "brk", "newfstatat", "fstat", "stat", "statx", "openat", "write", "rt_sigprocmask", NULL };
  static const char *const without_nnp[]
      = { "setgroups", "setresgid", "setresuid", "prctl", "capget", "capset", NULL };
  for (size_t i = 0; s && i < s->syscalls_len; i++)
    {
      const oci_seccomp_syscall *sc = s->syscalls[i];
      if (strcmp (sc->action, "SCMP_ACT_NOTIFY") != 0)
        continue;
      for (size_t j = 0; j < sc->names_len; j++)
        for (int pass = 0; pass < 2; pass++)
          for (const char *const *n = pass ? without_nnp : always; *n; n++)
            if ((pass == 0 || !no_new_privs) && strcmp (sc->names[j], *n) == 0)
              return sbx_error_set (err, EINVAL,
                                    "linux.seccomp.syscalls[%zu]: SCMP_ACT_NOTIFY on `%s` is not "
                                    "supported: the runtime calls it after loading the filter%s, "
                                    "before the listener can have the notify fd",
                                    i, *n, pass ? " (noNewPrivileges is false)" : "");
    }
  return 0;
}
