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

  sock = sbx_unix_connect (s->listener_path, err);
  if (sock < 0)
    return sbx_error_wrap (err, "linux.seccomp.listenerPath");
  while (sent < len)
    {
      struct iovec iov = { .iov_base = json + sent, .iov_len = len - sent };
      /* the fd rides with the first bytes */
      ssize_t n = sbx_sendmsg_fd (sock, &iov, 1, sent == 0 ? notify_fd : -1);
      if (n <= 0)
        return sbx_error_sys (err, "linux.seccomp.listenerPath: send to `%s`", s->listener_path);
      sent += (size_t)n;
    }
  return 0;
}

/* Under no_new_privs the filter loads last, after the process has told
   the runtime where the listener fd will be: the runtime takes it with
   pidfd_getfd(2), so every call after the load (execve included) may be a
   NOTIFY rule.  Without no_new_privs the filter loads while the process
   still sets up as root (user and capability switch, the wait for
   `start`), before anyone can hold the fd: a NOTIFY rule on one of those
   calls would hang, so it is refused up front.  */
int
sbx_seccomp_check_notify (const oci_seccomp *s, bool no_new_privs, sbx_error **err)
{
  if (no_new_privs)
    return 0;
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
            if (strcmp (sc->names[j], *n) == 0)
              return sbx_error_set (err, EINVAL,
                                    "linux.seccomp.syscalls[%zu]: SCMP_ACT_NOTIFY on `%s` is not "
                                    "supported: the runtime calls it after loading the filter%s, "
                                    "before the listener can have the notify fd",
                                    i, *n, " (noNewPrivileges is false)");
    }
  return 0;
}
