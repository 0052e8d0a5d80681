/* test_mounts.c - mount option parsing (sbx_fs_mount_opts_parse), destination
 * cleaning and the /proc rule of sbx_fs_mounts_validate.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <cmocka.h>

#include "fs/fs.h"

#define N(a) (sizeof (a) / sizeof (a)[0])

static void
parse_ok (char *const *opts, size_t n, sbx_mount_opts *mo)
{
  sbx_error *err = NULL;
  int r = sbx_fs_mount_opts_parse (opts, n, mo, &err);
  if (r < 0)
    fail_msg ("parse failed: %s", err ? err->msg : "?");
  assert_null (err);
}

static void
test_flags (void **state)
{
  char *o[] = { "ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "sync", "dirsync" };
  sbx_mount_opts mo;
  (void) state;
  parse_ok (o, N (o), &mo);
  assert_int_equal (mo.flags, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME
                                  | MS_NODIRATIME | MS_SYNCHRONOUS | MS_DIRSYNC);
  assert_int_equal (mo.clear, 0);
  assert_int_equal (mo.propagation, 0);
  assert_false (mo.bind);
  assert_null (mo.data);
  sbx_fs_mount_opts_clear (&mo);
}

static void
test_clears_last_wins (void **state)
{
  char *o[] = { "ro", "nosuid", "rw", "suid", "dev", "exec", "relatime", "norelatime", "async" };
  sbx_mount_opts mo;
  (void) state;
  parse_ok (o, N (o), &mo);
  assert_int_equal (mo.flags, 0);
  assert_int_equal (mo.clear, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME
                                  | MS_SYNCHRONOUS);
  sbx_fs_mount_opts_clear (&mo);

  char *o2[] = { "rw", "ro", "strictatime", "lazytime", "defaults" };
  parse_ok (o2, N (o2), &mo);
  assert_int_equal (mo.flags, MS_RDONLY | MS_STRICTATIME | MS_LAZYTIME);
  assert_int_equal (mo.clear, 0);
  sbx_fs_mount_opts_clear (&mo);
}

static void
test_propagation (void **state)
{
  sbx_mount_opts mo;
  (void) state;
  char *o[] = { "rprivate" };
  parse_ok (o, 1, &mo);
  assert_int_equal (mo.propagation, MS_PRIVATE | MS_REC);
  assert_int_equal (mo.flags, 0);
  sbx_fs_mount_opts_clear (&mo);

  char *o2[] = { "shared", "rslave" };
  parse_ok (o2, 2, &mo);
  assert_int_equal (mo.propagation, MS_SLAVE | MS_REC);
  sbx_fs_mount_opts_clear (&mo);

  char *o3[] = { "runbindable", "private" };
  parse_ok (o3, 2, &mo);
  assert_int_equal (mo.propagation, MS_PRIVATE);
  sbx_fs_mount_opts_clear (&mo);
}

static void
test_bind (void **state)
{
  sbx_mount_opts mo;
  (void) state;
  char *o[] = { "bind", "ro" };
  parse_ok (o, 2, &mo);
  assert_true (mo.bind);
  assert_int_equal (mo.flags, MS_BIND | MS_RDONLY);
  sbx_fs_mount_opts_clear (&mo);

  char *o2[] = { "rbind", "rprivate" };
  parse_ok (o2, 2, &mo);
  assert_true (mo.bind);
  assert_int_equal (mo.flags, MS_BIND | MS_REC);
  assert_int_equal (mo.propagation, MS_PRIVATE | MS_REC);
  sbx_fs_mount_opts_clear (&mo);
}

static void
test_data (void **state)
{
  sbx_mount_opts mo;
  (void) state;
  char *o[] = { "nosuid", "mode=755", "", "size=65536k", "strictatime", "newinstance" };
  parse_ok (o, N (o), &mo);
  assert_string_equal (mo.data, "mode=755,size=65536k,newinstance");
  assert_int_equal (mo.flags, MS_NOSUID | MS_STRICTATIME);
  sbx_fs_mount_opts_clear (&mo);
  assert_null (mo.data);
}

static void
test_recursive_attrs (void **state)
{
  sbx_mount_opts mo;
  (void) state;
  char *o[] = { "rbind", "rro", "rnosuid", "rnoexec" };
  parse_ok (o, N (o), &mo);
  assert_true (mo.recursive_ro);
  assert_int_equal (mo.attr_set, 0x1 | 0x2 | 0x8); /* MOUNT_ATTR_RDONLY|NOSUID|NOEXEC */
  assert_int_equal (mo.attr_clr, 0);
  assert_int_equal (mo.flags & MS_RDONLY, 0); /* rro is not the top-only ro */
  sbx_fs_mount_opts_clear (&mo);

  char *o2[] = { "rro", "rrw" };
  parse_ok (o2, 2, &mo);
  assert_false (mo.recursive_ro);
  assert_int_equal (mo.attr_set, 0);
  assert_int_equal (mo.attr_clr, 0x1);
  sbx_fs_mount_opts_clear (&mo);

  /* An atime mode must clear the whole atime field for mount_setattr.  */
  char *o3[] = { "rstrictatime", "rnoatime" };
  parse_ok (o3, 2, &mo);
  assert_int_equal (mo.attr_set, 0x10); /* MOUNT_ATTR_NOATIME */
  assert_int_equal (mo.attr_clr, 0x70); /* MOUNT_ATTR__ATIME */
  sbx_fs_mount_opts_clear (&mo);
}

static void
test_unknown_and_unsupported (void **state)
{
  sbx_mount_opts mo;
  sbx_error *err = NULL;
  (void) state;

  /* Unknown words are filesystem data, never a silently dropped flag.  */
  char *o[] = { "rfoo", "nosuid", "frobnicate" };
  parse_ok (o, N (o), &mo);
  assert_string_equal (mo.data, "rfoo,frobnicate");
  assert_int_equal (mo.flags, MS_NOSUID);
  sbx_fs_mount_opts_clear (&mo);

  /* tmpcopyup is a flag of its own, not filesystem data.  */
  char *o2[] = { "tmpcopyup", "ro" };
  parse_ok (o2, 2, &mo);
  assert_null (mo.data);
  assert_true (mo.tmpcopyup);
  assert_int_equal (mo.flags, MS_RDONLY);
  sbx_fs_mount_opts_clear (&mo);

  /* idmap / ridmap are flags of their own (the runtime idmaps the copy).  */
  char *o3[] = { "mode=1777", "idmap" };
  parse_ok (o3, 2, &mo);
  assert_true (mo.idmap);
  assert_false (mo.idmap_recursive);
  assert_string_equal (mo.data, "mode=1777");
  sbx_fs_mount_opts_clear (&mo);
  char *o4[] = { "rbind", "ridmap" };
  parse_ok (o4, 2, &mo);
  assert_true (mo.idmap && mo.idmap_recursive);
  assert_null (mo.data);
  sbx_fs_mount_opts_clear (&mo);
  (void)err;
}

static void
test_names_list (void **state)
{
  size_t n = 0;
  bool rro = false, rbind = false;
  (void) state;
  for (; sbx_mount_option_names[n]; n++)
    {
      sbx_mount_opts mo;
      char *one[] = { (char *) sbx_mount_option_names[n] };
      parse_ok (one, 1, &mo);
      /* Every advertised name is understood, not passed on as data.  */
      assert_null (mo.data);
      sbx_fs_mount_opts_clear (&mo);
      rro |= strcmp (sbx_mount_option_names[n], "rro") == 0;
      rbind |= strcmp (sbx_mount_option_names[n], "rbind") == 0;
    }
  assert_true (n > 40);
  assert_true (rro && rbind);
}

static void
test_dest_clean (void **state)
{
  static const char *const cases[][2] = {
    { "/proc", "/proc" },       { "//proc/", "/proc" },       { "/./proc/.", "/proc" },
    { "proc", "/proc" },        { "/x/../proc", "/proc" },    { "/../../proc", "/proc" },
    { "/proc/self/..", "/proc" }, { "/", "/" },               { "", "/" },
    { "/a//b/./c/", "/a/b/c" }, { "/proc/../procx", "/procx" }, { "/..", "/" },
  };
  (void) state;
  for (size_t i = 0; i < N (cases); i++)
    {
      char *c = sbx_fs_mount_dest_clean (cases[i][0]);
      if (strcmp (c, cases[i][1]) != 0)
        fail_msg ("clean(%s) = %s, want %s", cases[i][0], c, cases[i][1]);
      free (c);
    }
}

/* One mount through sbx_fs_mounts_validate: 0 or the error's text.  */
static int
validate_one (const char *dest, const char *type, const char *source, const char *opt, char **msg)
{
  char *opts[] = { (char *) opt, NULL };
  oci_mount m = { .destination = (char *) dest, .type = (char *) type, .source = (char *) source,
                  .options = opt ? opts : NULL, .options_len = opt ? 1 : 0 };
  oci_mount *ms[] = { &m, NULL };
  oci_config c = { .mounts = ms, .mounts_len = 1 };
  sbx_error *err = NULL;
  int r = sbx_fs_mounts_validate (&c, "/nonexistent-bundle", &err);
  *msg = NULL;
  if (r < 0)
    {
      assert_non_null (err);
      *msg = strdup (err->msg);
      sbx_error_free (err);
    }
  return r;
}

static void
test_proc_rule (void **state)
{
  char *msg;
  (void) state;
  /* procfs on /proc, however spelt; anything outside /proc.  */
  assert_int_equal (validate_one ("/proc", "proc", "proc", NULL, &msg), 0);
  assert_int_equal (validate_one ("//proc/./", "proc", "proc", NULL, &msg), 0);
  assert_int_equal (validate_one ("/procfs", "bind", "/tmp", "rbind", &msg), 0);
  assert_int_equal (validate_one ("/sys", "sysfs", "sysfs", NULL, &msg), 0);
  /* A bind of the host's procfs root on /proc; LXCFS's files.  */
  assert_int_equal (validate_one ("/proc", "bind", "/proc", "rbind", &msg), 0);
  assert_int_equal (validate_one ("/proc/meminfo", "bind", "/tmp/meminfo", "bind", &msg), 0);
  assert_int_equal (validate_one ("/proc/./cpuinfo", NULL, "/tmp/cpuinfo", "rbind", &msg), 0);

  /* A directory bound over /proc, a tmpfs, a procfs directory.  */
  assert_int_equal (validate_one ("/proc", "bind", "/tmp", "rbind", &msg), -1);
  assert_non_null (strstr (msg, "mounts[0]"));
  assert_non_null (strstr (msg, "only a procfs may be mounted on /proc"));
  free (msg);
  assert_int_equal (validate_one ("/x/../proc", "tmpfs", "tmpfs", NULL, &msg), -1);
  assert_non_null (strstr (msg, "`/x/../proc`"));
  free (msg);
  assert_int_equal (validate_one ("/proc", "bind", "/proc/self", "bind", &msg), -1);
  free (msg);
  /* Under /proc: the runtime's targets, and a procfs elsewhere in it.  */
  assert_int_equal (validate_one ("/proc/self/attr/exec", "bind", "/tmp/x", "bind", &msg), -1);
  assert_non_null (strstr (msg, "inside /proc"));
  free (msg);
  assert_int_equal (validate_one ("/proc/sys", "proc", "proc", NULL, &msg), -1);
  free (msg);
  assert_int_equal (validate_one ("proc/thread-self", "tmpfs", "tmpfs", NULL, &msg), -1);
  free (msg);
  /* An allowed file name, but not as a bind.  */
  assert_int_equal (validate_one ("/proc/meminfo", "tmpfs", "tmpfs", NULL, &msg), -1);
  free (msg);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_flags),
    cmocka_unit_test (test_clears_last_wins),
    cmocka_unit_test (test_propagation),
    cmocka_unit_test (test_bind),
    cmocka_unit_test (test_data),
    cmocka_unit_test (test_recursive_attrs),
    cmocka_unit_test (test_unknown_and_unsupported),
    cmocka_unit_test (test_names_list),
    cmocka_unit_test (test_dest_clean),
    cmocka_unit_test (test_proc_rule),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
