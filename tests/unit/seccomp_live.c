/* seccomp_live.c - load real filters built by seccomp.c in forked children
 * and watch the kernel enforce them.  Exit 77 (skip) when seccomp filtering
 * is unavailable.  Every check runs in its own child; the child reports a
 * failure on stderr and through its exit status.  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "json.h"
#include "ocispec.h"
#include "security/security.h"
#include "security/security_internal.h"

static int failures;
static char tmpdir[] = "/tmp/sbx-seccomp-live-XXXXXX";

/* Child-side failure report: no allocation, only write(2) and _exit.  */
static void __attribute__ ((format (printf, 2, 3), noreturn)) child_fail (int code, const char *fmt, ...)
{
  char buf[256];
  va_list ap;
  int n = snprintf (buf, sizeof buf, "  child: ");
  va_start (ap, fmt);
  n += vsnprintf (buf + n, sizeof buf - n, fmt, ap);
  va_end (ap);
  if (n > (int)sizeof buf - 2)
    n = sizeof buf - 2;
  buf[n++] = '\n';
  if (write (2, buf, n) < 0)
    _exit (code);
  _exit (code);
}

#define CHILD_CHECK(code, cond, ...)                                                                         \
  do                                                                                                         \
    {                                                                                                        \
      if (!(cond))                                                                                           \
        child_fail ((code), __VA_ARGS__);                                                                    \
    }                                                                                                        \
  while (0)

/* Expect syscall result r to be -1 with errno e.  */
#define CHILD_ERRNO(code, expr, e)                                                                           \
  do                                                                                                         \
    {                                                                                                        \
      long r_ = (expr);                                                                                      \
      int e_ = errno;                                                                                        \
      if (r_ != -1 || e_ != (e))                                                                             \
        child_fail ((code), "%s: got %ld/%s, want -1/%s", #expr, r_, strerrorname_np (e_),                   \
                    strerrorname_np (e));                                                                    \
    }                                                                                                        \
  while (0)

static void __attribute__ ((format (printf, 3, 4))) report (const char *name, bool ok, const char *fmt, ...)
{
  printf ("%s - %s", ok ? "ok" : "not ok", name);
  if (!ok)
    {
      va_list ap;
      printf (": ");
      va_start (ap, fmt);
      vprintf (fmt, ap);
      va_end (ap);
      failures++;
    }
  printf ("\n");
  fflush (stdout);
}

static sbx_seccomp *
prepare (const char *json, const char *cache, oci_seccomp **out)
{
  char *emsg = NULL;
  oci_seccomp *s = ocispec_parse (&oci_seccomp_type, json, strlen (json), &emsg);
  sbx_seccomp *sc = NULL;
  sbx_error *err = NULL;
  if (s == NULL)
    {
      fprintf (stderr, "parse: %s\n", emsg);
      exit (1);
    }
  if (sbx_seccomp_prepare (s, cache, &sc, &err) < 0)
    {
      fprintf (stderr, "prepare: %s\n", err->msg);
      exit (1);
    }
  if (out)
    *out = s;
  else
    ocispec_free (&oci_seccomp_type, s);
  return sc;
}

/* In the child: no_new_privs, then the filter.  */
static int
child_load (const sbx_seccomp *sc, int *notify_fd)
{
  sbx_error *err = NULL;
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    child_fail (90, "PR_SET_NO_NEW_PRIVS: %s", strerror (errno));
  if (sbx_seccomp_load (sc, notify_fd, &err) < 0)
    child_fail (91, "load: %s", err->msg);
  return 0;
}

static int
wait_child (pid_t pid)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return st;
}

static bool
exited_ok (const char *name, int st)
{
  bool ok = WIFEXITED (st) && WEXITSTATUS (st) == 0;
  if (WIFSIGNALED (st))
    report (name, false, "killed by signal %d", WTERMSIG (st));
  else
    report (name, ok, "exit status %d", WEXITSTATUS (st));
  return ok;
}

/* ---- errno, arguments, /proc status ---- */

static void
test_errno_and_args (void)
{
  sbx_seccomp *sc
      = prepare ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                 "{\"names\":[\"mkdir\",\"mkdirat\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":30},"
                 /* same index twice: OR */
                 "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
                 "{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"},"
                 "{\"index\":0,\"value\":9,\"op\":\"SCMP_CMP_EQ\"}]},"
                 "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":201,\"args\":["
                 "{\"index\":0,\"value\":65280,\"valueTwo\":4608,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},"
                 "{\"names\":[\"sched_get_priority_max\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":202,"
                 "\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_LE\"}]},"
                 "{\"names\":[\"sched_get_priority_min\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":203,"
                 "\"args\":[{\"index\":0,\"value\":3,\"op\":\"SCMP_CMP_GE\"}]},"
                 "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":204,"
                 "\"args\":[{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_NE\"}]},"
                 "{\"names\":[\"getpriority\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":205,"
                 "\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_LT\"}]},"
                 "{\"names\":[\"ioprio_get\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":206,"
                 "\"args\":[{\"index\":0,\"value\":2,\"op\":\"SCMP_CMP_GT\"}]},"
                 /* different indexes: AND */
                 "{\"names\":[\"prlimit64\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":207,\"args\":["
                 "{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
                 "{\"index\":1,\"value\":7,\"op\":\"SCMP_CMP_EQ\"}]}]}",
                 NULL, NULL);
  char *dir = xasprintf ("%s/newdir", tmpdir);
  pid_t pid = fork ();
  if (pid == 0)
    {
      struct rlimit rl;
      char buf[4096];
      ssize_t n;
      int fd;
      /* Lead our own session and group: under a CI runner whose session
         leader lives outside our pid namespace getsid(0) would return 0. */
      setsid ();
      child_load (sc, NULL);
      CHILD_ERRNO (1, mkdir (dir, 0700), EROFS);
      CHILD_ERRNO (2, syscall (SYS_mkdirat, AT_FDCWD, dir, 0700), EROFS);
      CHILD_CHECK (3, access (dir, F_OK) < 0, "mkdir went through");
      CHILD_CHECK (4, syscall (SYS_personality, 0xffffffffUL) >= 0, "personality(query) refused");
      CHILD_ERRNO (5, syscall (SYS_personality, 8UL), EPERM);
      CHILD_ERRNO (6, syscall (SYS_personality, 9UL), EPERM);
      CHILD_CHECK (7, syscall (SYS_getpgid, 0) > 0, "getpgid(0) refused");
      CHILD_ERRNO (8, syscall (SYS_getpgid, 0x1234), 201);
      CHILD_ERRNO (9, syscall (SYS_getpgid, 0x3400), ESRCH);
      CHILD_ERRNO (10, syscall (SYS_sched_get_priority_max, 1), 202);
      CHILD_CHECK (11, syscall (SYS_sched_get_priority_max, 2) == 99, "max(RR)");
      CHILD_ERRNO (12, syscall (SYS_sched_get_priority_min, 5), 203);
      CHILD_CHECK (13, syscall (SYS_sched_get_priority_min, 1) == 1, "min(FIFO)");
      CHILD_CHECK (14, syscall (SYS_getsid, 0) > 0, "getsid(0) refused");
      CHILD_ERRNO (15, syscall (SYS_getsid, getpid ()), 204);
      CHILD_ERRNO (16, syscall (SYS_getpriority, 0, 0), 205);
      errno = 0;
      CHILD_CHECK (17, syscall (SYS_getpriority, 1, 0) >= 0, "getpriority(PGRP) refused");
      CHILD_ERRNO (18, syscall (SYS_ioprio_get, 3, 0), 206);
      CHILD_CHECK (19, syscall (SYS_ioprio_get, 1, 0) >= 0, "ioprio_get(PROCESS) refused");
      CHILD_ERRNO (20, syscall (SYS_prlimit64, 0, 7, NULL, &rl), 207);
      CHILD_CHECK (21, syscall (SYS_prlimit64, 0, 4, NULL, &rl) == 0, "prlimit(0, CORE)");
      CHILD_CHECK (22, syscall (SYS_prlimit64, getpid (), 7, NULL, &rl) == 0, "prlimit(pid, NOFILE)");
      fd = open ("/proc/self/status", O_RDONLY);
      CHILD_CHECK (23, fd >= 0, "open status");
      n = read (fd, buf, sizeof buf - 1);
      CHILD_CHECK (24, n > 0, "read status");
      buf[n] = '\0';
      CHILD_CHECK (25, strstr (buf, "\nSeccomp:\t2\n") != NULL, "no `Seccomp: 2` in status");
      _exit (0);
    }
  exited_ok ("ERRNO with errnoRet, every operator, same-index OR, AND, Seccomp: 2", wait_child (pid));
  free (dir);
  sbx_seccomp_free (sc);
}

/* ---- KILL_PROCESS and TRAP ---- */

static void
test_kill (void)
{
  sbx_seccomp *sc = prepare ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                             "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_KILL_PROCESS\"}]}",
                             NULL, NULL);
  pid_t pid = fork ();
  int st;
  if (pid == 0)
    {
      prctl (PR_SET_DUMPABLE, 0, 0, 0, 0); /* no core file */
      child_load (sc, NULL);
      syscall (SYS_getppid);
      _exit (1);
    }
  st = wait_child (pid);
  report ("SCMP_ACT_KILL_PROCESS kills with SIGSYS", WIFSIGNALED (st) && WTERMSIG (st) == SIGSYS,
          "status 0x%x", st);
  sbx_seccomp_free (sc);
}

static volatile sig_atomic_t trapped_nr = -1;

static void
on_sigsys (int sig, siginfo_t *si, void *ctx)
{
  (void)sig;
  (void)ctx;
  trapped_nr = si->si_syscall;
}

static void
test_trap (void)
{
  sbx_seccomp *sc = prepare ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                             "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_TRAP\"}]}",
                             NULL, NULL);
  pid_t pid = fork ();
  if (pid == 0)
    {
      struct sigaction sa;
      memset (&sa, 0, sizeof sa);
      sa.sa_sigaction = on_sigsys;
      sa.sa_flags = SA_SIGINFO;
      sigaction (SIGSYS, &sa, NULL);
      child_load (sc, NULL);
      syscall (SYS_getppid);
      CHILD_CHECK (1, trapped_nr == SYS_getppid, "SIGSYS handler saw %d", (int)trapped_nr);
      _exit (0);
    }
  exited_ok ("SCMP_ACT_TRAP raises SIGSYS with si_syscall", wait_child (pid));
  sbx_seccomp_free (sc);
}

/* ---- ENOSYS for syscalls newer than the profile ---- */

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* The child only uses syscall(2), write(2) and _exit(2) after loading.  */
static const char allow_basic[] = "\"read\",\"write\",\"close\",\"rt_sigreturn\",\"getpid\","
                                  "\"exit\",\"exit_group\"";

static void
test_enosys (void)
{
  char *cache = xasprintf ("%s/cache", tmpdir);
  char *json;
  sbx_seccomp *sc, *warm;
  pid_t pid;

  json = xasprintf ("{\"defaultAction\":\"SCMP_ACT_ERRNO\","
#if defined(__x86_64__)
                    "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],"
#endif
                    "\"syscalls\":[{\"names\":[%s],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                    allow_basic);
  /* Load the cached copy, to check that the cache round-trips a filter.  */
  sc = prepare (json, cache, NULL);
  sbx_seccomp_free (sc);
  warm = prepare (json, cache, NULL);
  report ("second prepare is a cache hit", warm->cached, "compiled again");
  pid = fork ();
  if (pid == 0)
    {
      child_load (warm, NULL);
      CHILD_ERRNO (1, syscall (SYS_clone3, NULL, 0), ENOSYS);
      CHILD_ERRNO (2, syscall (SYS_getppid), EPERM);
      CHILD_ERRNO (3, syscall (SYS_getuid), EPERM);
      CHILD_ERRNO (4, syscall (1000), ENOSYS);
      CHILD_CHECK (5, syscall (SYS_getpid) == getpid (), "getpid refused");
#if defined(__x86_64__)
      /* x32 numbering: old unnamed -> EPERM, new -> ENOSYS.  */
      CHILD_ERRNO (6, syscall (0x40000000 | SYS_getppid), EPERM);
      CHILD_ERRNO (7, syscall (0x40000000 | SYS_clone3, NULL, 0), ENOSYS);
#endif
      _exit (0);
    }
  exited_ok ("default ERRNO(EPERM): clone3 -> ENOSYS, old unnamed getppid -> EPERM", wait_child (pid));
  sbx_seccomp_free (warm);
  free (json);

  /* A profile that names openat2 (437) knows clone3 (435): EPERM.  */
  json = xasprintf ("{\"defaultAction\":\"SCMP_ACT_KILL_PROCESS\",\"syscalls\":["
                    "{\"names\":[%s,\"openat2\"],\"action\":\"SCMP_ACT_ALLOW\"},"
                    "{\"names\":[\"getppid\",\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\"}]}",
                    allow_basic);
  sc = prepare (json, NULL, NULL);
  pid = fork ();
  if (pid == 0)
    {
      prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
      child_load (sc, NULL);
      CHILD_ERRNO (1, syscall (SYS_clone3, NULL, 0), EPERM);
      CHILD_ERRNO (2, syscall (SYS_getppid), EPERM);
      CHILD_ERRNO (3, syscall (1000), ENOSYS); /* newer than openat2 */
      _exit (0);
    }
  exited_ok ("default KILL_PROCESS: named clone3 keeps its action, newer -> ENOSYS", wait_child (pid));
  sbx_seccomp_free (sc);
  free (json);

  /* Default ALLOW: no rewriting, clone3 reaches the kernel.  */
  sc = prepare ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\"}]}",
                NULL, NULL);
  pid = fork ();
  if (pid == 0)
    {
      child_load (sc, NULL);
      CHILD_ERRNO (1, syscall (SYS_clone3, NULL, 0), EINVAL);
      _exit (0);
    }
  exited_ok ("default ALLOW: clone3 not rewritten", wait_child (pid));
  sbx_seccomp_free (sc);
  free (cache);
}

/* ---- SCMP_ACT_NOTIFY through a listener socket ---- */

static const char state_json[] = "{\"ociVersion\":\"1.2.0\",\"id\":\"live-ctr\",\"status\":"
                                 "\"creating\",\"pid\":%d,\"bundle\":\"/bundles/live\","
                                 "\"annotations\":{\"k\":\"v\"}}";

static bool
wait_readable (int fd, int ms)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  return poll (&p, 1, ms) == 1;
}

static const char *
str_at (const oj_value *obj, const char *key)
{
  oj_value *v = obj ? oj_object_get (obj, key) : NULL;
  return v && v->type == OJ_STRING ? v->text : "";
}

static void
test_notify (void)
{
  char *sock_path = xasprintf ("%s/agent.sock", tmpdir);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int lfd, cfd = -1, nfd = -1, st, fdv;
  char *json, data[8192];
  size_t got = 0;
  oci_seccomp *s;
  sbx_seccomp *sc;
  pid_t pid;
  oj_value *doc = NULL, *v;
  char *emsg = NULL;
  struct seccomp_notif_sizes sizes;
  struct seccomp_notif *req = NULL;
  struct seccomp_notif_resp *resp = NULL;
  const char *what = NULL;

  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  strcpy (addr.sun_path, sock_path);
  if (lfd < 0 || bind (lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen (lfd, 1) < 0)
    {
      report ("notify", false, "listener: %s", strerror (errno));
      return;
    }
  json = xasprintf ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"%s\","
                    "\"listenerMetadata\":\"MKNOD=/dev/null\",\"flags\":["
                    "\"SECCOMP_FILTER_FLAG_TSYNC\",\"SECCOMP_FILTER_FLAG_LOG\","
                    "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\",\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"],"
                    "\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                    sock_path);
  sc = prepare (json, NULL, &s);
  pid = fork ();
  if (pid == 0)
    {
      char st_json[512];
      sbx_error *err = NULL;
      long r;
      close (lfd);
      child_load (sc, &nfd);
      CHILD_CHECK (1, nfd >= 0, "no notify fd");
      snprintf (st_json, sizeof st_json, state_json, getpid ());
      if (sbx_seccomp_notify_send (s, nfd, getpid (), st_json, &err) < 0)
        child_fail (2, "notify_send: %s", err->msg);
      close (nfd);
      r = syscall (SYS_getppid);
      CHILD_CHECK (3, r == 4242, "getppid returned %ld, want 4242 from the agent", r);
      _exit (0);
    }

  /* The agent: receive the state and the fd in one message.  */
  if (!wait_readable (lfd, 10000) || (cfd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
    {
      what = "no connection from the child";
      goto out;
    }
  for (;;)
    {
      union
      {
        char buf[CMSG_SPACE (sizeof (int))];
        struct cmsghdr align;
      } ctl;
      struct iovec iov = { .iov_base = data + got, .iov_len = sizeof data - 1 - got };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
      struct cmsghdr *cm;
      ssize_t n;
      msg.msg_control = ctl.buf;
      msg.msg_controllen = sizeof ctl.buf;
      if (!wait_readable (cfd, 10000) || (n = recvmsg (cfd, &msg, MSG_CMSG_CLOEXEC)) < 0)
        {
          what = "recvmsg";
          goto out;
        }
      if (n == 0)
        break;
      for (cm = CMSG_FIRSTHDR (&msg); cm; cm = CMSG_NXTHDR (&msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
          {
            memcpy (&fdv, CMSG_DATA (cm), sizeof fdv);
            if (got != 0 || nfd >= 0)
              what = "fd not in the first message";
            nfd = fdv;
          }
      got += (size_t)n;
    }
  data[got] = '\0';
  if (what)
    goto out;
  if (nfd < 0)
    {
      what = "no SCM_RIGHTS fd";
      goto out;
    }
  doc = oj_parse (data, got, &emsg);
  if (doc == NULL || doc->type != OJ_OBJECT)
    {
      what = "state is not a JSON object";
      goto out;
    }
  v = oj_object_get (doc, "fds");
  if (strcmp (str_at (doc, "ociVersion"), OCI_VERSION) != 0 || v == NULL || v->type != OJ_ARRAY || v->len != 1
      || strcmp (v->items[0]->text, "seccompFd") != 0
      || strcmp (str_at (doc, "metadata"), "MKNOD=/dev/null") != 0 || (v = oj_object_get (doc, "pid")) == NULL
      || atoi (v->text) != pid || strcmp (str_at (oj_object_get (doc, "state"), "id"), "live-ctr") != 0
      || strcmp (str_at (oj_object_get (doc, "state"), "status"), "creating") != 0
      || strcmp (str_at (oj_object_get (oj_object_get (doc, "state"), "annotations"), "k"), "v") != 0)
    {
      fprintf (stderr, "  state: %s\n", data);
      what = "unexpected container process state";
      goto out;
    }

  /* Answer the notification.  */
  if (syscall (SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
    {
      what = "SECCOMP_GET_NOTIF_SIZES";
      goto out;
    }
  req = xmalloc0 (sizes.seccomp_notif > sizeof *req ? sizes.seccomp_notif : sizeof *req);
  resp = xmalloc0 (sizes.seccomp_notif_resp > sizeof *resp ? sizes.seccomp_notif_resp : sizeof *resp);
  if (!wait_readable (nfd, 10000) || ioctl (nfd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
    {
      what = "SECCOMP_IOCTL_NOTIF_RECV";
      goto out;
    }
  if ((pid_t)req->pid != pid || req->data.nr != SYS_getppid)
    {
      what = "notification for the wrong process or syscall";
      goto out;
    }
  resp->id = req->id;
  resp->val = 4242;
  resp->error = 0;
  resp->flags = 0;
  if (ioctl (nfd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0)
    what = "SECCOMP_IOCTL_NOTIF_SEND";
out:
  if (what)
    {
      kill (pid, SIGKILL);
      report ("SCMP_ACT_NOTIFY: state + fd to listenerPath, agent answers", false, "%s: %s", what,
              strerror (errno));
      wait_child (pid);
    }
  else
    {
      st = wait_child (pid);
      exited_ok ("SCMP_ACT_NOTIFY: state + fd to listenerPath, agent answers 4242", st);
    }
  oj_free (doc);
  free (emsg);
  free (req);
  free (resp);
  if (nfd >= 0)
    close (nfd);
  if (cfd >= 0)
    close (cfd);
  close (lfd);
  unlink (sock_path);
  free (sock_path);
  free (json);
  ocispec_free (&oci_seccomp_type, s);
  sbx_seccomp_free (sc);
}

static void
cleanup_tmp (void)
{
  char *cmd = xasprintf ("rm -rf -- '%s'", tmpdir);
  if (system (cmd) != 0)
    fprintf (stderr, "cannot remove %s\n", tmpdir);
  free (cmd);
}

/* valgrind cannot run seccomp(2) (and a filter would break valgrind itself):
   when run under it (make check's LOG_COMPILER), start again natively; an
   exec is not followed by valgrind without --trace-children.  */
static void
leave_valgrind (char **argv)
{
  const char *pre = getenv ("LD_PRELOAD");
  if (pre == NULL || strstr (pre, "vgpreload") == NULL || getenv ("SBX_SECCOMP_LIVE_NATIVE"))
    return;
  unsetenv ("LD_PRELOAD");
  setenv ("SBX_SECCOMP_LIVE_NATIVE", "1", 1);
  printf ("# under valgrind: re-executing %s natively\n", argv[0]);
  fflush (stdout);
  execv (argv[0], argv);
  perror ("execv");
}

int
main (int argc, char **argv)
{
  unsigned int act = SECCOMP_RET_ALLOW;
  bool have_notify;

  (void)argc;
  leave_valgrind (argv);
  if (prctl (PR_GET_SECCOMP, 0, 0, 0, 0) < 0 || syscall (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &act) < 0)
    {
      printf ("SKIP: seccomp filters unavailable (%s)\n", strerror (errno));
      return 77;
    }
  act = SECCOMP_RET_USER_NOTIF;
  have_notify = syscall (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &act) == 0;
  if (mkdtemp (tmpdir) == NULL)
    {
      perror ("mkdtemp");
      return 1;
    }
  test_errno_and_args ();
  test_kill ();
  test_trap ();
  test_enosys ();
  if (have_notify)
    test_notify ();
  else
    printf ("ok - SCMP_ACT_NOTIFY # SKIP kernel lacks user notification\n");
  cleanup_tmp ();
  printf ("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
