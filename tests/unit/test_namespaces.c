/* test_namespaces.c - linux.namespaces validation: what is created, what is
 * joined and in which order, and that every refusal names the entry and
 * leaves no namespace fd open.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "process/process.h"

static int
open_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  int n = 0;
  assert_non_null (d);
  while (readdir (d))
    n++;
  closedir (d);
  return n;
}

static oci_linux *
parse_linux (const char *json)
{
  char *msg = NULL;
  oci_linux *l = ocispec_parse (&oci_linux_type, json, strlen (json), &msg);
  if (l == NULL)
    fail_msg ("parse: %s", msg);
  return l;
}

/* Plan for `json`; returns the error message (caller frees) or NULL.  */
static char *
plan_error (const char *json, sbx_ns_plan *plan)
{
  oci_linux *l = parse_linux (json);
  sbx_error *e = NULL;
  char *msg = NULL;
  if (sbx_process_ns_plan_make (l, plan, &e) < 0)
    {
      msg = xstrdup (e->msg);
      sbx_error_free (e);
    }
  ocispec_free (&oci_linux_type, l);
  return msg;
}

static void
test_new_and_joined (void **state)
{
  sbx_ns_plan plan;
  int before = open_fds ();
  char *msg = plan_error ("{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},"
                          "{\"type\":\"network\",\"path\":\"/proc/self/ns/net\"},"
                          "{\"type\":\"user\",\"path\":\"/proc/self/ns/user\"}]}",
                          &plan);
  (void)state;
  assert_null (msg);
  assert_int_equal (plan.new_flags, CLONE_NEWPID | CLONE_NEWNS);
  assert_int_equal (plan.join_flags, CLONE_NEWNET | CLONE_NEWUSER);
  assert_int_equal (plan.njoin, 2);
  /* The user namespace is joined first, whatever the config's order. */
  assert_int_equal (plan.join_types[0], CLONE_NEWUSER);
  assert_int_equal (plan.join_types[1], CLONE_NEWNET);
  assert_int_equal (open_fds (), before + 2);
  sbx_process_ns_plan_close (&plan);
  assert_int_equal (open_fds (), before);
}

/* Each bad entry comes after a joined path: its fd must be closed too.  */
static void
test_refusals_close_fds (void **state)
{
  static const struct
  {
    const char *entry, *want;
  } cases[] = {
    { "{\"type\":\"bogus\"}", "linux.namespaces[1].type: unknown namespace `bogus`" },
    { "{\"type\":\"network\"}", "linux.namespaces[1]: namespace `network` given twice" },
    { "{\"type\":\"ipc\",\"path\":\"/proc/self/ns/uts\"}",
      "linux.namespaces[1].path `/proc/self/ns/uts`: not a ipc namespace" },
    { "{\"type\":\"uts\",\"path\":\"/etc/hostname\"}",
      "linux.namespaces[1].path `/etc/hostname`: not a namespace" },
    { "{\"type\":\"uts\",\"path\":\"/nonexistent/ns\"}", "linux.namespaces[1].path: open `/nonexistent/ns`" },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      sbx_ns_plan plan;
      int before = open_fds ();
      cleanup_free char *json = xasprintf (
          "{\"namespaces\":[{\"type\":\"network\",\"path\":\"/proc/self/ns/net\"},%s]}", cases[i].entry);
      cleanup_free char *msg = plan_error (json, &plan);
      assert_non_null (msg);
      if (strstr (msg, cases[i].want) == NULL)
        fail_msg ("case %zu: got `%s`, want `%s`", i, msg, cases[i].want);
      assert_int_equal (plan.njoin, 0);
      assert_int_equal (open_fds (), before);
      sbx_process_ns_plan_close (&plan); /* harmless after a failure */
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_new_and_joined),
    cmocka_unit_test (test_refusals_close_fds),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
