/* test_hooks.c - running OCI hooks: state on stdin, args/env, exit status,
 * signals, timeouts, exec failures, fd hygiene.  Hooks are /bin/sh -c.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "process/process.h"

static char tmpdir[] = "/tmp/sbx-test-hooks-XXXXXX";

static int
setup (void **state)
{
  return mkdtemp (tmpdir) ? 0 : -1;
}

static int
teardown (void **state)
{
  cleanup_free char *cmd = xasprintf ("rm -rf '%s'", tmpdir);
  return system (cmd) == 0 ? 0 : -1;
}

static char *
tmp_path (const char *name)
{
  return xasprintf ("%s/%s", tmpdir, name);
}

/* A hook running `sh -c script`; extra positional args after it.  */
static oci_hook
sh_hook (const char *script, char **argv_storage)
{
  oci_hook h = { .path = (char *) "/bin/sh" };
  argv_storage[0] = (char *) "sh";
  argv_storage[1] = (char *) "-c";
  argv_storage[2] = (char *) script;
  argv_storage[3] = NULL;
  h.args = argv_storage;
  h.args_len = 3;
  return h;
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_none (void **state)
{
  sbx_error *err = NULL;
  assert_int_equal (sbx_process_hooks_run ("prestart", NULL, 0, "{}", &err), 0);
  assert_null (err);
}

static void
test_state_on_stdin (void **state)
{
  cleanup_free char *out = tmp_path ("state");
  cleanup_free char *script = xasprintf ("cat > '%s'", out);
  cleanup_free char *got = NULL;
  const char *json = "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":42,"
                     "\"bundle\":\"/b\"}";
  char *argv[4];
  oci_hook h = sh_hook (script, argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  assert_int_equal (sbx_process_hooks_run ("createRuntime", hooks, 1, json, &err), 0);
  assert_null (err);
  assert_int_equal (sbx_read_file (out, 0, &got, NULL, NULL), 0);
  assert_string_equal (got, json);
}

static void
test_large_state (void **state)
{
  /* Larger than a pipe buffer: fed while the hook reads.  */
  size_t n = 1 << 20;
  cleanup_free char *json = xmalloc0 (n + 1);
  cleanup_free char *out = tmp_path ("big");
  cleanup_free char *script = xasprintf ("cat > '%s'", out);
  cleanup_free char *got = NULL;
  size_t got_len = 0;
  char *argv[4];
  oci_hook h = sh_hook (script, argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  memset (json, 'x', n);
  assert_int_equal (sbx_process_hooks_run ("poststart", hooks, 1, json, &err), 0);
  assert_int_equal (sbx_read_file (out, 0, &got, &got_len, NULL), 0);
  assert_int_equal (got_len, n);
  assert_memory_equal (got, json, n);
}

static void
test_not_reading_stdin (void **state)
{
  /* The hook exits without reading 1 MiB of state: EPIPE, but no SIGPIPE
     for us (it is left at its default, deadly disposition) and success.  */
  size_t n = 1 << 20;
  cleanup_free char *json = xmalloc0 (n + 1);
  char *argv[4];
  oci_hook h = sh_hook ("exec 0<&-; exit 0", argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;
  sigset_t pending;

  signal (SIGPIPE, SIG_DFL);
  memset (json, 'x', n);
  assert_int_equal (sbx_process_hooks_run ("poststart", hooks, 1, json, &err), 0);
  assert_null (err);
  sigpending (&pending);
  assert_false (sigismember (&pending, SIGPIPE));
}

static void
test_args_and_env (void **state)
{
  cleanup_free char *out = tmp_path ("args");
  cleanup_free char *envout = tmp_path ("env");
  cleanup_free char *script
      = xasprintf ("printf '%%s|%%s|%%s|%%s' \"$0\" \"$1\" \"$2\" \"$FOO\" > '%s'; env > '%s'", out, envout);
  char *args[] = { (char *) "sh", (char *) "-c", script, (char *) "zero", (char *) "one", (char *) "two words" };
  char *env[] = { (char *) "FOO=bar baz", (char *) "OTHER=1" };
  oci_hook h = { .path = (char *) "/bin/sh", .args = args, .args_len = 6, .env = env, .env_len = 2 };
  oci_hook *hooks[] = { &h };
  cleanup_free char *got = NULL, *gotenv = NULL;
  sbx_error *err = NULL;

  setenv ("SBX_TEST_MUST_NOT_LEAK", "1", 1);
  assert_int_equal (sbx_process_hooks_run ("createContainer", hooks, 1, "{}", &err), 0);
  assert_int_equal (sbx_read_file (out, 0, &got, NULL, NULL), 0);
  assert_string_equal (got, "zero|one|two words|bar baz");
  assert_int_equal (sbx_read_file (envout, 0, &gotenv, NULL, NULL), 0);
  assert_non_null (strstr (gotenv, "FOO=bar baz\n"));
  assert_non_null (strstr (gotenv, "OTHER=1\n"));
  assert_null (strstr (gotenv, "SBX_TEST_MUST_NOT_LEAK"));
}

static void
test_no_args_argv0_is_path (void **state)
{
  /* No args: argv = { path }.  A script run directly sees $0 = path.  */
  cleanup_free char *script = tmp_path ("hook.sh");
  cleanup_free char *out = tmp_path ("argv0");
  cleanup_free char *body = xasprintf ("#!/bin/sh\necho \"$0 $#\" > '%s'\n", out);
  cleanup_free char *want = xasprintf ("%s 0\n", script);
  cleanup_free char *got = NULL;
  oci_hook h = { .path = script };
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;
  FILE *f;

  f = fopen (script, "w");
  assert_non_null (f);
  fputs (body, f);
  assert_int_equal (fclose (f), 0);
  assert_int_equal (chmod (script, 0755), 0);
  assert_int_equal (sbx_process_hooks_run ("startContainer", hooks, 1, "{}", &err), 0);
  assert_int_equal (sbx_read_file (out, 0, &got, NULL, NULL), 0);
  assert_string_equal (got, want);
}

static void
test_no_fd_leak (void **state)
{
  /* An inheritable fd of ours must not reach the hook.  */
  int fd = open ("/dev/null", O_RDONLY);
  int high;
  char *argv[4];
  oci_hook h = sh_hook ("[ -e /proc/self/fd/77 ] && exit 7; [ -e /proc/self/fd/3 ] && exit 3; exit 0", argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  assert_true (fd >= 0);
  high = dup2 (fd, 77);
  assert_int_equal (high, 77);
  if (fd != 3)
    assert_int_equal (dup2 (fd, 3), 3);
  assert_int_equal (sbx_process_hooks_run ("createRuntime", hooks, 1, "{}", &err), 0);
  if (err)
    fail_msg ("%s", err->msg);
  close (77);
  if (fd != 3)
    close (3);
  close (fd);
}

static void
test_exit_status (void **state)
{
  char *argv[4];
  oci_hook h = sh_hook ("exit 3", argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  assert_true (sbx_process_hooks_run ("createRuntime", hooks, 1, "{}", &err) < 0);
  assert_string_equal (err->msg, "createRuntime hook #1 (/bin/sh): exited with status 3");
  sbx_error_free (err);
}

static void
test_killed_by_signal (void **state)
{
  char *argv[4];
  oci_hook h = sh_hook ("kill -9 $$", argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  assert_true (sbx_process_hooks_run ("poststop", hooks, 1, "{}", &err) < 0);
  assert_string_equal (err->msg, "poststop hook #1 (/bin/sh): killed by signal 9");
  sbx_error_free (err);
}

static void
test_timeout (void **state)
{
  char *argv[4];
  oci_hook h = sh_hook ("exec sleep 30", argv);
  oci_hook ok = { .path = (char *) "/bin/true" };
  oci_hook *hooks[] = { &ok, &h };
  sbx_error *err = NULL;
  double t0, dt;

  h.timeout = 1;
  h.has_timeout = true;
  t0 = now_s ();
  assert_true (sbx_process_hooks_run ("createRuntime", hooks, 2, "{}", &err) < 0);
  dt = now_s () - t0;
  assert_string_equal (err->msg, "createRuntime hook #2 (/bin/sh): timed out after 1s");
  assert_true (dt >= 0.9 && dt < 5.0);
  sbx_error_free (err);
}

static void
test_timeout_not_reading (void **state)
{
  /* The deadline holds even while the state is stuck in a full pipe.  */
  size_t n = 1 << 20;
  cleanup_free char *json = xmalloc0 (n + 1);
  char *argv[4];
  oci_hook h = sh_hook ("exec sleep 30", argv);
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;
  double t0, dt;

  memset (json, 'x', n);
  h.timeout = 1;
  h.has_timeout = true;
  t0 = now_s ();
  assert_true (sbx_process_hooks_run ("prestart", hooks, 1, json, &err) < 0);
  dt = now_s () - t0;
  assert_string_equal (err->msg, "prestart hook #1 (/bin/sh): timed out after 1s");
  assert_true (dt < 5.0);
  sbx_error_free (err);
}

static void
test_bad_timeout (void **state)
{
  oci_hook h = { .path = (char *) "/bin/true", .timeout = 0, .has_timeout = true };
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  assert_true (sbx_process_hooks_run ("createRuntime", hooks, 1, "{}", &err) < 0);
  assert_string_equal (err->msg,
                       "createRuntime hook #1 (/bin/true): timeout must be greater than zero, got 0");
  sbx_error_free (err);
  err = NULL;
  h.timeout = -5;
  assert_true (sbx_process_hooks_run ("createRuntime", hooks, 1, "{}", &err) < 0);
  assert_non_null (strstr (err->msg, "got -5"));
  sbx_error_free (err);
}

static void
test_missing_binary (void **state)
{
  oci_hook h = { .path = (char *) "/nonexistent/hook" };
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;
  char *text;

  assert_int_equal (sbx_process_hooks_run ("createRuntime", hooks, 1, "{}", &err), -ENOENT);
  assert_int_equal (err->errno_, ENOENT);
  text = sbx_error_text (err);
  assert_string_equal (text, "createRuntime hook #1 (/nonexistent/hook): exec: No such file or directory");
  free (text);
  sbx_error_free (err);
}

static void
test_relative_path (void **state)
{
  oci_hook h = { .path = (char *) "bin/true" };
  oci_hook *hooks[] = { &h };
  sbx_error *err = NULL;

  assert_true (sbx_process_hooks_run ("createRuntime", hooks, 1, "{}", &err) < 0);
  assert_string_equal (err->msg, "createRuntime hook #1 (bin/true): path must be absolute");
  sbx_error_free (err);
}

static void
test_stops_at_first_failure (void **state)
{
  cleanup_free char *marker = tmp_path ("second-ran");
  cleanup_free char *script = xasprintf ("touch '%s'", marker);
  char *argv1[4], *argv2[4];
  oci_hook fail = sh_hook ("exit 1", argv1);
  oci_hook second = sh_hook (script, argv2);
  oci_hook *hooks[] = { &fail, &second };
  sbx_error *err = NULL;

  assert_true (sbx_process_hooks_run ("poststart", hooks, 2, "{}", &err) < 0);
  assert_string_equal (err->msg, "poststart hook #1 (/bin/sh): exited with status 1");
  sbx_error_free (err);
  assert_int_equal (access (marker, F_OK), -1);

  /* And both run when the first succeeds.  */
  fail = sh_hook ("exit 0", argv1);
  err = NULL;
  assert_int_equal (sbx_process_hooks_run ("poststart", hooks, 2, "{}", &err), 0);
  assert_int_equal (access (marker, F_OK), 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_none),
    cmocka_unit_test (test_state_on_stdin),
    cmocka_unit_test (test_large_state),
    cmocka_unit_test (test_not_reading_stdin),
    cmocka_unit_test (test_args_and_env),
    cmocka_unit_test (test_no_args_argv0_is_path),
    cmocka_unit_test (test_no_fd_leak),
    cmocka_unit_test (test_exit_status),
    cmocka_unit_test (test_killed_by_signal),
    cmocka_unit_test (test_timeout),
    cmocka_unit_test (test_timeout_not_reading),
    cmocka_unit_test (test_bad_timeout),
    cmocka_unit_test (test_missing_binary),
    cmocka_unit_test (test_relative_path),
    cmocka_unit_test (test_stops_at_first_failure),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
