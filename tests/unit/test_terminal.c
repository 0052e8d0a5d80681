/* test_terminal.c - ptys, the console-socket fd passing, and the stdio
 * proxy.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/core.h"
#include "process/process.h"

/* The slave opened by path, then set up as the library does with an open
   one (the runtime itself only has the fd: TIOCGPTPEER).  */
static int
setup_slave (const char *slave, const oci_console_size *size, sbx_error **err)
{
  int fd = open (slave, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open terminal `%s`", slave);
  return sbx_process_pty_setup_slave_fd (fd, slave, size, err);
}

static char tmpdir[] = "/tmp/sbx-test-term-XXXXXX";

static int
setup (void **state)
{
  signal (SIGPIPE, SIG_IGN);
  return mkdtemp (tmpdir) ? 0 : -1;
}

static int
teardown (void **state)
{
  cleanup_free char *cmd = xasprintf ("rm -rf '%s'", tmpdir);
  return system (cmd) == 0 ? 0 : -1;
}

/* Everything the master yields until the slave side is gone (EIO).  */
static char *
drain_master (int master)
{
  size_t cap = 4096, len = 0;
  char *buf = xmalloc0 (cap);
  for (;;)
    {
      ssize_t n;
      if (len + 1 >= cap)
        buf = xrealloc (buf, cap *= 2);
      n = read (master, buf + len, cap - len - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (size_t) n;
    }
  buf[len] = '\0';
  return buf;
}

static void
wait_ok (pid_t pid)
{
  int status;
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
}

/* Tests that fork keep the slave name off the heap: a child that _exit()s
   with a live malloc'd block shows up as a leak under valgrind.  */
static int
open_pty (char slave[static 64])
{
  sbx_error *err = NULL;
  char *name = NULL;
  int master = sbx_process_pty_open (&name, &err);
  if (master < 0)
    fail_msg ("%s", err->msg);
  assert_true (strlen (name) < 64);
  strcpy (slave, name);
  free (name);
  return master;
}

/* The console socket's receiving end, as an engine has it: the fd, and the
   text payload (the pty name) in *name unless NULL.  */
static int
recv_fd_name (int sock, char **name, sbx_error **err)
{
  char data[4096];
  /* Room for a few fds so a misbehaving peer's extras can be closed rather
     than leaked.  */
  union
  {
    struct cmsghdr h;
    char buf[CMSG_SPACE (8 * sizeof (int))];
  } ctrl;
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  int fd = -1;
  ssize_t r;

  memset (&ctrl, 0, sizeof ctrl);
  msg.msg_control = ctrl.buf;
  msg.msg_controllen = sizeof ctrl.buf;
  do
    r = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return sbx_error_sys (err, "receive file descriptor");

  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c))
    {
      size_t n;
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      n = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (size_t i = 0; i < n; i++)
        {
          int got;
          memcpy (&got, CMSG_DATA (c) + i * sizeof (int), sizeof got);
          if (fd < 0)
            fd = got;
          else
            close (got);
        }
    }
  if (fd < 0)
    return r == 0 ? sbx_error_set (err, EPIPE, "receive file descriptor: connection closed")
                  : sbx_error_set (err, EBADMSG, "receive file descriptor: none in the message");
  if (name)
    {
      size_t len = strnlen (data, (size_t)r);
      *name = xmalloc0 (len + 1);
      memcpy (*name, data, len);
    }
  return fd;
}

static void
test_pty_open (void **state)
{
  sbx_error *err = NULL;
  cleanup_free char *slave = NULL;
  cleanup_close int master = sbx_process_pty_open (&slave, &err);
  cleanup_close int s = -1;
  unsigned int n;
  cleanup_free char *want = NULL;

  assert_true (master >= 0);
  assert_null (err);
  assert_true (sbx_has_prefix (slave, "/dev/pts/"));
  assert_true (fcntl (master, F_GETFD) & FD_CLOEXEC);
  assert_int_equal (ioctl (master, TIOCGPTN, &n), 0);
  want = xasprintf ("/dev/pts/%u", n);
  assert_string_equal (slave, want);
  /* Unlocked: the slave opens.  */
  s = open (slave, O_RDWR | O_NOCTTY);
  assert_true (s >= 0);
  assert_true (isatty (s));
}

static void
test_setup_slave (void **state)
{
  sbx_error *err = NULL;
  char slave[64];
  cleanup_free char *out = NULL;
  int master = open_pty (slave);
  oci_console_size size = { .height = 40, .has_height = true, .width = 100, .has_width = true };
  pid_t pid;

  assert_true (master >= 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      struct winsize ws = { 0 };
      int tty;
      close (master);
      if (setup_slave (slave, &size, &err) < 0)
        _exit (1);
      ioctl (1, TIOCGWINSZ, &ws);
      /* /dev/tty opens only for a process with a controlling terminal.  */
      tty = open ("/dev/tty", O_RDWR);
      printf ("hello rows=%d cols=%d ctty=%d fg=%d tty012=%d%d%d\n", ws.ws_row, ws.ws_col,
              tty >= 0, tcgetpgrp (0) == getpgrp (), isatty (0), isatty (1), isatty (2));
      fflush (stdout);
      _exit (0);
    }
  out = drain_master (master);
  close (master);
  wait_ok (pid);
  /* The tty turns \n into \r\n.  */
  assert_string_equal (out, "hello rows=40 cols=100 ctty=1 fg=1 tty012=111\r\n");
}

static void
test_setup_slave_no_size (void **state)
{
  sbx_error *err = NULL;
  char slave[64];
  cleanup_free char *out = NULL;
  int master = open_pty (slave);
  pid_t pid;

  assert_true (master >= 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      close (master);
      /* Also with closed stdio, so the slave lands on fd 0 itself.  */
      close (0);
      close (1);
      close (2);
      if (setup_slave (slave, NULL, &err) < 0)
        _exit (1);
      if (fcntl (0, F_GETFD) & FD_CLOEXEC)
        _exit (2);
      if (write (2, "err\n", 4) != 4)
        _exit (3);
      _exit (0);
    }
  out = drain_master (master);
  close (master);
  wait_ok (pid);
  assert_string_equal (out, "err\r\n");
}

static void
test_setup_slave_missing (void **state)
{
  sbx_error *err = NULL;
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      int r = setup_slave ("/dev/pts/does-not-exist", NULL, &err);
      int ok = r < 0 && err->errno_ == ENOENT && strstr (err->msg, "does-not-exist");
      sbx_error_free (err);
      _exit (ok ? 0 : 1);
    }
  wait_ok (pid);
}

static void
test_send_recv_socketpair (void **state)
{
  int sp[2], p[2];
  sbx_error *err = NULL;
  char *name = NULL;
  char buf[8] = { 0 };
  int fd;

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sp), 0);
  assert_int_equal (pipe (p), 0);

  assert_int_equal (sbx_process_send_fd (sp[0], p[1], "/dev/pts/7", &err), 0);
  fd = recv_fd_name (sp[1], &name, &err);
  assert_true (fd >= 0);
  assert_null (err);
  assert_string_equal (name, "/dev/pts/7");
  free (name);
  assert_true (fcntl (fd, F_GETFD) & FD_CLOEXEC);
  assert_int_not_equal (fd, p[1]);
  assert_int_equal (write (fd, "ping", 4), 4);
  assert_int_equal (read (p[0], buf, sizeof buf), 4);
  assert_string_equal (buf, "ping");
  close (fd);

  /* Without a name (one NUL byte is sent), and received without one.  */
  assert_int_equal (sbx_process_send_fd (sp[0], p[0], NULL, &err), 0);
  name = NULL;
  fd = recv_fd_name (sp[1], &name, &err);
  assert_true (fd >= 0);
  assert_string_equal (name, "");
  free (name);
  close (fd);
  assert_int_equal (sbx_process_send_fd (sp[0], p[0], "x", &err), 0);
  fd = recv_fd_name (sp[1], NULL, &err);
  assert_true (fd >= 0);
  close (fd);

  /* Data without an fd, then a closed peer.  */
  assert_int_equal (write (sp[0], "hi", 2), 2);
  assert_true (recv_fd_name (sp[1], NULL, &err) < 0);
  assert_int_equal (err->errno_, EBADMSG);
  sbx_error_free (err);
  err = NULL;
  close (sp[0]);
  assert_true (recv_fd_name (sp[1], NULL, &err) < 0);
  assert_int_equal (err->errno_, EPIPE);
  sbx_error_free (err);
  err = NULL;

  /* Sending to a closed peer fails without SIGPIPE killing us.  */
  signal (SIGPIPE, SIG_DFL);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sp + 0), 0);
  close (sp[1]);
  assert_true (sbx_process_send_fd (sp[0], p[0], "x", &err) < 0);
  assert_int_equal (err->errno_, EPIPE);
  sbx_error_free (err);
  signal (SIGPIPE, SIG_IGN);
  close (sp[0]);
  close (p[0]);
  close (p[1]);
}

/* bind relative to dir, so that dir may be longer than sun_path.  */
static int
listen_at (const char *dir, const char *name)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int cwd = open (".", O_RDONLY | O_DIRECTORY);
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  int ok;

  if (cwd < 0 || fd < 0 || chdir (dir) < 0)
    return -1;
  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", name);
  ok = bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0 && listen (fd, 1) == 0;
  if (fchdir (cwd) < 0)
    ok = 0;
  close (cwd);
  if (!ok)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* The console-socket flow: connect, send a pty master, the listener gets
   a working master and the slave's name.  Returns NULL or what went wrong
   (no cmocka asserts: also runs in a forked child).  */
static char *
console_socket_roundtrip (const char *dir)
{
  cleanup_free char *path = xasprintf ("%s/console.sock", dir);
  cleanup_free char *slave = NULL;
  cleanup_free char *name = NULL;
  cleanup_close int lfd = listen_at (dir, "console.sock");
  cleanup_close int master = -1, conn = -1, peer = -1, got = -1;
  cleanup_error sbx_error *err = NULL;
  unsigned int n1, n2;

  if (lfd < 0)
    return xasprintf ("listen: %s", strerror (errno));
  master = sbx_process_pty_open (&slave, &err);
  if (master < 0)
    return sbx_error_text (err);
  conn = sbx_unix_connect (path, &err);
  if (conn < 0)
    return sbx_error_text (err);
  if (!(fcntl (conn, F_GETFD) & FD_CLOEXEC))
    return xstrdup ("connected socket is not close-on-exec");
  peer = accept (lfd, NULL, NULL);
  if (peer < 0)
    return xasprintf ("accept: %s", strerror (errno));
  if (sbx_process_send_fd (conn, master, slave, &err) < 0)
    return sbx_error_text (err);
  got = recv_fd_name (peer, &name, &err);
  if (got < 0)
    return sbx_error_text (err);
  if (strcmp (name, slave) != 0)
    return xasprintf ("name `%s`, want `%s`", name, slave);
  /* The same pty.  */
  if (ioctl (master, TIOCGPTN, &n1) < 0 || ioctl (got, TIOCGPTN, &n2) < 0 || n1 != n2)
    return xstrdup ("received fd is not the same pty master");
  return NULL;
}

static void
check_roundtrip (const char *dir)
{
  char *problem = console_socket_roundtrip (dir);
  if (problem)
    fail_msg ("%s", problem);
}

static void
test_console_socket_path (void **state)
{
  check_roundtrip (tmpdir);
}

static void
test_console_socket_long_path (void **state)
{
  cleanup_free char *dir = xasprintf ("%s/%0120d", tmpdir, 0);
  cleanup_free char *path = xasprintf ("%s/console.sock", dir);
  struct sockaddr_un addr;

  assert_true (strlen (path) >= sizeof addr.sun_path);
  assert_int_equal (mkdir (dir, 0700), 0);
  check_roundtrip (dir);
}

/* Without /proc (a container before it is mounted) long paths go through
   a temporary fchdir.  Needs a private mount namespace, so root only.  */
static void
test_console_socket_long_path_no_proc (void **state)
{
  cleanup_free char *dir = xasprintf ("%s/%0110d", tmpdir, 1);
  pid_t pid;

  if (geteuid () != 0)
    skip ();
  assert_int_equal (mkdir (dir, 0700), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      char cwd_before[4096], cwd_after[4096];
      if (unshare (CLONE_NEWNS) < 0 || mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0
          || umount2 ("/proc", MNT_DETACH) < 0)
        _exit (77);
      /* A pid-namespaced runner may have stacked its own /proc.  */
      while (umount2 ("/proc", MNT_DETACH) == 0)
        ;
      if (access ("/proc/self/fd", F_OK) == 0 || getcwd (cwd_before, sizeof cwd_before) == NULL)
        _exit (3);
      {
        char *problem = console_socket_roundtrip (dir);
        if (problem)
          {
            fprintf (stderr, "child: %s\n", problem);
            _exit (5);
          }
      }
      if (getcwd (cwd_after, sizeof cwd_after) == NULL || strcmp (cwd_before, cwd_after) != 0)
        _exit (4);
      _exit (0);
    }
  {
    int status;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    if (WEXITSTATUS (status) == 77)
      skip ();
    assert_int_equal (WEXITSTATUS (status), 0);
  }
}

static void
test_unix_connect_errors (void **state)
{
  sbx_error *err = NULL;
  cleanup_free char *missing = xasprintf ("%s/nobody-listens", tmpdir);
  cleanup_free char *longname = xasprintf ("%s/%0200d", tmpdir, 0);

  assert_true (sbx_unix_connect (missing, &err) < 0);
  assert_int_equal (err->errno_, ENOENT);
  assert_non_null (strstr (err->msg, missing));
  sbx_error_free (err);
  err = NULL;
  /* A single component longer than sun_path cannot be reached.  */
  assert_true (sbx_unix_connect (longname, &err) < 0);
  assert_int_equal (err->errno_, ENAMETOOLONG);
  sbx_error_free (err);
}

/* Proxy with pipes as our stdio: input reaches the container through the
   pty, its output comes back, and stdin's EOF becomes the tty's EOF.  */
static void
test_proxy (void **state)
{
  sbx_error *err = NULL;
  char slave[64];
  cleanup_free char *out = NULL;
  int master = open_pty (slave);
  int in[2], outp[2], ready[2];
  pid_t container, proxy;
  char c;

  assert_true (master >= 0);
  assert_int_equal (pipe (in), 0);
  assert_int_equal (pipe (outp), 0);
  assert_int_equal (pipe (ready), 0);

  container = fork ();
  assert_true (container >= 0);
  if (container == 0)
    {
      char line[128];
      int n = 0;
      close (master);
      close (in[0]), close (in[1]), close (outp[0]), close (outp[1]), close (ready[0]);
      if (setup_slave (slave, NULL, &err) < 0)
        _exit (1);
      close (ready[1]);
      if (fgets (line, sizeof line, stdin) == NULL)
        _exit (2);
      line[strcspn (line, "\n")] = '\0';
      /* Then count the bytes until EOF (the proxied EOF of our stdin).  */
      while (getchar () != EOF)
        n++;
      printf ("got:%s rest:%d\n", line, n);
      fflush (stdout);
      _exit (0);
    }
  close (ready[1]);
  /* Proxy only once the slave is open, as the runtime does.  */
  assert_int_equal (read (ready[0], &c, 1), 0);
  close (ready[0]);

  proxy = fork ();
  assert_true (proxy >= 0);
  if (proxy == 0)
    {
      dup2 (in[0], 0);
      dup2 (outp[1], 1);
      close (in[0]), close (in[1]), close (outp[0]), close (outp[1]);
      _exit (sbx_process_pty_proxy (master, -1, -1, &err) == 0 ? 0 : 1);
    }
  close (master);
  close (in[0]);
  close (outp[1]);
  /* "tail" has no newline: EOF must still get through (two VEOFs).  */
  assert_int_equal (write (in[1], "abc\ntail", 8), 8);
  close (in[1]);
  out = drain_master (outp[0]);
  close (outp[0]);
  wait_ok (container);
  wait_ok (proxy);
  /* The echo of the input is there too.  */
  assert_non_null (strstr (out, "got:abc rest:4\r\n"));
}

static volatile sig_atomic_t winch_seen;
static void
on_winch (int sig)
{
  winch_seen = 1;
}

/* Proxy with a real terminal as our stdio: raw mode while running, restored
   after; a resize of our terminal reaches the container as SIGWINCH.  */
static void
test_proxy_tty (void **state)
{
  sbx_error *err = NULL;
  char outer_slave[64], inner_slave[64];
  cleanup_free char *out = NULL;
  int outer = open_pty (outer_slave);
  int inner = open_pty (inner_slave);
  struct winsize ws = { .ws_row = 50, .ws_col = 132 };
  struct termios t;
  pid_t container, proxy;
  int ready[2];
  char c;
  bool raw = false;

  assert_true (outer >= 0 && inner >= 0);
  assert_int_equal (pipe (ready), 0);
  container = fork ();
  assert_true (container >= 0);
  if (container == 0)
    {
      sigset_t block, empty;
      struct winsize got = { 0 };
      close (outer), close (inner), close (ready[0]);
      sigemptyset (&block);
      sigemptyset (&empty);
      sigaddset (&block, SIGWINCH);
      sigprocmask (SIG_BLOCK, &block, NULL);
      signal (SIGWINCH, on_winch);
      alarm (10);
      if (setup_slave (inner_slave, NULL, &err) < 0)
        _exit (1);
      close (ready[1]);
      for (;;)
        {
          ioctl (0, TIOCGWINSZ, &got);
          if (got.ws_row == 50 && got.ws_col == 132)
            break;
          sigsuspend (&empty);
        }
      printf ("size=%dx%d winch=%d\n", got.ws_row, got.ws_col, (int) winch_seen);
      fflush (stdout);
      _exit (0);
    }
  close (ready[1]);
  assert_int_equal (read (ready[0], &c, 1), 0);
  close (ready[0]);

  proxy = fork ();
  assert_true (proxy >= 0);
  if (proxy == 0)
    {
      close (outer);
      alarm (10);
      if (setup_slave (outer_slave, NULL, &err) < 0)
        _exit (1);
      _exit (sbx_process_pty_proxy (inner, -1, -1, &err) == 0 ? 0 : 1);
    }
  close (inner);

  for (int i = 0; i < 500 && !raw; i++)
    {
      assert_int_equal (tcgetattr (outer, &t), 0);
      raw = !(t.c_lflag & ICANON) && !(t.c_lflag & ECHO);
      if (!raw)
        usleep (10000);
    }
  assert_true (raw);
  assert_int_equal (ioctl (outer, TIOCSWINSZ, &ws), 0);

  out = drain_master (outer);
  wait_ok (container);
  wait_ok (proxy);
  /* Our side is raw (no \r added), the container's tty is not.  */
  assert_string_equal (out, "size=50x132 winch=1\r\n");
  assert_int_equal (tcgetattr (outer, &t), 0);
  assert_true ((t.c_lflag & ICANON) && (t.c_lflag & ECHO));
  close (outer);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_pty_open),
    cmocka_unit_test (test_setup_slave),
    cmocka_unit_test (test_setup_slave_no_size),
    cmocka_unit_test (test_setup_slave_missing),
    cmocka_unit_test (test_send_recv_socketpair),
    cmocka_unit_test (test_console_socket_path),
    cmocka_unit_test (test_console_socket_long_path),
    cmocka_unit_test (test_unix_connect_errors),
    cmocka_unit_test (test_proxy),
    cmocka_unit_test (test_proxy_tty),
    cmocka_unit_test (test_console_socket_long_path_no_proc),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
