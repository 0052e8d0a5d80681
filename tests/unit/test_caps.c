/* test_caps.c - capability name validation, and applying the five sets in a
 * forked child checked through /proc/self/status.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "security/security.h"

#define SET(field, ...)                                                                            \
  .field = (char *[]){ __VA_ARGS__ }, .field##_len = sizeof ((char *[]){ __VA_ARGS__ }) / sizeof (char *)

#define BIT(n) (UINT64_C (1) << (n))
/* Numbers from linux/capability.h.  */
enum
{
  CHOWN = 0,
  KILL = 5,
  SETGID = 6,
  SETUID = 7,
  SETPCAP = 8,
  NET_BIND_SERVICE = 10,
  NET_RAW = 13,
  SYS_ADMIN = 21
};

static void
expect_invalid (const oci_capabilities *caps, const char *msg)
{
  sbx_error *err = NULL;
  assert_true (sbx_caps_validate (caps, &err) < 0);
  assert_non_null (err);
  assert_string_equal (err->msg, msg);
  sbx_error_free (err);
}

static void
test_validate_ok (void **state)
{
  sbx_error *err = NULL;
  oci_capabilities all = { SET (bounding, "CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"),
                           SET (effective, "CAP_CHOWN"),
                           SET (inheritable, "CAP_KILL"),
                           SET (permitted, "CAP_CHOWN", "CAP_AUDIT_WRITE"),
                           SET (ambient, "CAP_NET_BIND_SERVICE") };
  oci_capabilities empty = { 0 };

  assert_int_equal (sbx_caps_validate (NULL, &err), 0);
  assert_int_equal (sbx_caps_validate (&empty, &err), 0);
  assert_int_equal (sbx_caps_validate (&all, &err), 0);
  assert_null (err);
}

static void
test_validate_unknown (void **state)
{
  oci_capabilities c1 = { SET (effective, "CAP_CHOWN", "CAP_FOO") };
  oci_capabilities c2 = { SET (ambient, "cap_chown") };
  oci_capabilities c3 = { SET (bounding, "CHOWN") };
  oci_capabilities c4 = { SET (permitted, "CAP_chown") };
  oci_capabilities c5 = { SET (inheritable, "CAP_0") };
  oci_capabilities c6 = { SET (bounding, "0") };
  oci_capabilities c7 = { SET (bounding, "CAP_CHOWN,CAP_KILL") };
  oci_capabilities c8 = { SET (bounding, "") };

  expect_invalid (&c1, "process.capabilities.effective: unknown capability \"CAP_FOO\"");
  expect_invalid (&c2, "process.capabilities.ambient: unknown capability \"cap_chown\"");
  expect_invalid (&c3, "process.capabilities.bounding: unknown capability \"CHOWN\"");
  expect_invalid (&c4, "process.capabilities.permitted: unknown capability \"CAP_chown\"");
  expect_invalid (&c5, "process.capabilities.inheritable: unknown capability \"CAP_0\"");
  expect_invalid (&c6, "process.capabilities.bounding: unknown capability \"0\"");
  expect_invalid (&c7, "process.capabilities.bounding: unknown capability \"CAP_CHOWN,CAP_KILL\"");
  expect_invalid (&c8, "process.capabilities.bounding: unknown capability \"\"");

  /* apply validates too, before touching anything.  */
  {
    sbx_error *err = NULL;
    assert_true (sbx_caps_apply (&c1, &err) < 0);
    assert_string_equal (err->msg, "process.capabilities.effective: unknown capability \"CAP_FOO\"");
    sbx_error_free (err);
  }
}

static void
test_known_names (void **state)
{
  cleanup_strv char **names = sbx_caps_known_names ();
  bool chown_ = false, sys_admin = false, bpf = false;
  size_t n = sbx_strv_len (names);

  /* libcap >= 2.43 knows CAP_CHECKPOINT_RESTORE (40).  */
  assert_true (n >= 41);
  for (size_t i = 0; i < n; i++)
    {
      oci_capabilities c = { .effective = &names[i], .effective_len = 1 };
      assert_true (sbx_has_prefix (names[i], "CAP_"));
      for (const char *p = names[i]; *p; p++)
        assert_true (isupper ((unsigned char) *p) || isdigit ((unsigned char) *p) || *p == '_');
      assert_int_equal (sbx_caps_validate (&c, NULL), 0);
      chown_ |= strcmp (names[i], "CAP_CHOWN") == 0;
      sys_admin |= strcmp (names[i], "CAP_SYS_ADMIN") == 0;
      bpf |= strcmp (names[i], "CAP_BPF") == 0;
    }
  assert_string_equal (names[0], "CAP_CHOWN");
  assert_true (chown_ && sys_admin && bpf);
}

static void
test_keep (void **state)
{
  sbx_error *err = NULL;
  int before = prctl (PR_GET_KEEPCAPS, 0, 0, 0, 0);
  assert_int_equal (sbx_caps_keep (1, &err), 0);
  assert_int_equal (prctl (PR_GET_KEEPCAPS, 0, 0, 0, 0), 1);
  assert_int_equal (sbx_caps_keep (0, &err), 0);
  assert_int_equal (prctl (PR_GET_KEEPCAPS, 0, 0, 0, 0), 0);
  assert_int_equal (sbx_caps_keep (before, &err), 0);
  assert_null (err);
}

/* ---- live: apply in a child, report /proc/self/status ---- */

struct report
{
  int rc;
  uint64_t eff, prm, inh, bnd, amb;
  char msg[512];
};

static int
read_status_caps (struct report *r)
{
  cleanup_free char *s = NULL;
  static const struct
  {
    const char *key;
    size_t off;
  } keys[] = { { "\nCapInh:", offsetof (struct report, inh) },
               { "\nCapPrm:", offsetof (struct report, prm) },
               { "\nCapEff:", offsetof (struct report, eff) },
               { "\nCapBnd:", offsetof (struct report, bnd) },
               { "\nCapAmb:", offsetof (struct report, amb) } };

  if (sbx_read_file ("/proc/self/status", 0, &s, NULL, NULL) < 0)
    return -1;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    {
      const char *p = strstr (s, keys[i].key);
      uint64_t v;
      if (p == NULL || sscanf (p + strlen (keys[i].key), "%" SCNx64, &v) != 1)
        return -1;
      memcpy ((char *) r + keys[i].off, &v, sizeof v);
    }
  return 0;
}

/* Fork; the child optionally switches to uid/gid 65534 keeping its caps
   (as the runtime does: keep, setuid, apply), applies caps and reports.  */
static struct report
apply_in_child (const oci_capabilities *caps, bool as_nobody)
{
  struct report r = { 0 };
  int p[2];
  pid_t pid;
  int status;

  assert_int_equal (pipe (p), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      sbx_error *err = NULL;
      close (p[0]);
      r.rc = 0;
      if (as_nobody
          && (sbx_caps_keep (1, &err) < 0 || setresgid (65534, 65534, 65534) < 0
              || setresuid (65534, 65534, 65534) < 0 || sbx_caps_keep (0, &err) < 0))
        {
          r.rc = -2;
          snprintf (r.msg, sizeof r.msg, "switching to nobody failed");
        }
      else if (sbx_caps_apply (caps, &err) < 0)
        {
          char *t = sbx_error_text (err);
          r.rc = -1;
          snprintf (r.msg, sizeof r.msg, "%s", t);
          free (t);
          sbx_error_free (err);
        }
      if (read_status_caps (&r) < 0)
        r.rc = -3;
      if (write (p[1], &r, sizeof r) != (ssize_t) sizeof r)
        _exit (2);
      _exit (0);
    }
  close (p[1]);
  assert_int_equal (sbx_read_all (p[0], &r, sizeof r), (ssize_t) sizeof r);
  close (p[0]);
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  return r;
}

static int
need_root (void **state)
{
  if (geteuid () != 0)
    {
      print_message ("not root: skipping\n");
      return -1;
    }
  return 0;
}

static void
test_apply_sets (void **state)
{
  oci_capabilities c = { SET (bounding, "CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP"),
                         SET (effective, "CAP_CHOWN", "CAP_KILL"),
                         SET (permitted, "CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                         SET (inheritable, "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                         /* CAP_CHOWN is not inheritable: warned about, not raised */
                         SET (ambient, "CAP_NET_BIND_SERVICE", "CAP_CHOWN") };
  for (int nobody = 0; nobody <= 1; nobody++)
    {
      struct report r;
      if (need_root (state) < 0)
        skip ();
      r = apply_in_child (&c, nobody);
      if (r.rc != 0)
        fail_msg ("child: %s", r.msg);
      assert_int_equal (r.bnd, BIT (CHOWN) | BIT (KILL) | BIT (NET_BIND_SERVICE) | BIT (SETPCAP));
      assert_int_equal (r.eff, BIT (CHOWN) | BIT (KILL));
      assert_int_equal (r.prm, BIT (CHOWN) | BIT (KILL) | BIT (NET_BIND_SERVICE));
      assert_int_equal (r.inh, BIT (KILL) | BIT (NET_BIND_SERVICE));
      assert_int_equal (r.amb, BIT (NET_BIND_SERVICE));
    }
}

static void
test_apply_null_drops_all (void **state)
{
  oci_capabilities empty = { 0 };
  struct report r;

  if (need_root (state) < 0)
    skip ();
  r = apply_in_child (NULL, false);
  if (r.rc != 0)
    fail_msg ("child: %s", r.msg);
  assert_int_equal (r.bnd, 0);
  assert_int_equal (r.eff, 0);
  assert_int_equal (r.prm, 0);
  assert_int_equal (r.inh, 0);
  assert_int_equal (r.amb, 0);

  r = apply_in_child (&empty, true);
  if (r.rc != 0)
    fail_msg ("child: %s", r.msg);
  assert_int_equal (r.bnd | r.eff | r.prm | r.inh | r.amb, 0);
}

static void
test_apply_default_set_as_nobody (void **state)
{
  /* The usual container set (runtime-spec sample config).  */
  oci_capabilities c = { SET (bounding, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                         SET (effective, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                         SET (permitted, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
                         SET (ambient, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE") };
  uint64_t want = BIT (29) | BIT (KILL) | BIT (NET_BIND_SERVICE);
  struct report r;

  if (need_root (state) < 0)
    skip ();
  r = apply_in_child (&c, true);
  if (r.rc != 0)
    fail_msg ("child: %s", r.msg);
  assert_int_equal (r.bnd, want);
  assert_int_equal (r.eff, want);
  assert_int_equal (r.prm, want);
  assert_int_equal (r.inh, 0);
  assert_int_equal (r.amb, 0); /* none inheritable: all warned about */
}

static void
test_apply_effective_not_permitted (void **state)
{
  oci_capabilities c = { SET (bounding, "CAP_CHOWN", "CAP_SYS_ADMIN"), SET (effective, "CAP_SYS_ADMIN"),
                         SET (permitted, "CAP_CHOWN") };
  struct report r;

  if (need_root (state) < 0)
    skip ();
  r = apply_in_child (&c, false);
  assert_int_equal (r.rc, -1);
  assert_non_null (strstr (r.msg, "set the effective, permitted and inheritable capabilities"));
  /* The bounding set was already reduced when cap_set_proc refused.  */
  assert_int_equal (r.bnd, BIT (CHOWN) | BIT (SYS_ADMIN));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_validate_ok),
    cmocka_unit_test (test_validate_unknown),
    cmocka_unit_test (test_known_names),
    cmocka_unit_test (test_keep),
    cmocka_unit_test (test_apply_sets),
    cmocka_unit_test (test_apply_null_drops_all),
    cmocka_unit_test (test_apply_default_set_as_nobody),
    cmocka_unit_test (test_apply_effective_not_permitted),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
