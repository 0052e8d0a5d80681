/* test_seccomp.c - unit tests for seccomp.c: validation messages, the
 * ENOSYS prefix, the compile cache, SHA-256, the features lists, and a
 * cold-versus-cached timing of a ~300-rule profile.  Nothing here loads a
 * filter (see seccomp_live.c).  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h> /* libseccomp: only to list syscall names for the benchmark */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "ocispec.h"
#include "security/security.h"
#include "security/security_internal.h" /* the compiled program, the cache flag */

static oci_seccomp *
parse (const char *json)
{
  char *emsg = NULL;
  oci_seccomp *s = ocispec_parse (&oci_seccomp_type, json, strlen (json), &emsg);
  if (s == NULL)
    fail_msg ("parse: %s", emsg);
  return s;
}

/* Prepare json without cache; expect failure with exactly msg.  */
static void
expect_error (const char *json, const char *msg)
{
  oci_seccomp *s = parse (json);
  sbx_seccomp *sc = NULL;
  sbx_error *err = NULL;
  int r = sbx_seccomp_prepare (s, NULL, &sc, &err);
  assert_true (r < 0);
  assert_null (sc);
  assert_non_null (err);
  if (strcmp (err->msg, msg) != 0)
    fail_msg ("got  \"%s\"\nwant \"%s\"", err->msg, msg);
  sbx_error_free (err);
  ocispec_free (&oci_seccomp_type, s);
}

static sbx_seccomp *
expect_ok (const char *json, const char *cache_dir)
{
  oci_seccomp *s = parse (json);
  sbx_seccomp *sc = NULL;
  sbx_error *err = NULL;
  int r = sbx_seccomp_prepare (s, cache_dir, &sc, &err);
  if (r < 0)
    fail_msg ("prepare: %s", err->msg);
  assert_non_null (sc);
  ocispec_free (&oci_seccomp_type, s);
  return sc;
}

static void
test_errors (void **state)
{
  (void)state;
  expect_error ("{\"defaultAction\":\"SCMP_ACT_NOPE\"}",
                "linux.seccomp.defaultAction: unknown action `SCMP_ACT_NOPE`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\"},"
                "{\"names\":[\"write\"],\"action\":\"SCMP_ACT_LOG\"},"
                "{\"names\":[\"close\"],\"action\":\"SCMP_ACT_FOO\"}]}",
                "linux.seccomp.syscalls[2].action: unknown action `SCMP_ACT_FOO`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
                "{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
                "{\"index\":1,\"value\":1,\"op\":\"SCMP_CMP_BOGUS\"}]}]}",
                "linux.seccomp.syscalls[0].args[1].op: unknown operator `SCMP_CMP_BOGUS`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
                "{\"index\":6,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
                "linux.seccomp.syscalls[0].args[0].index: 6 out of range (0..5)");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":"
                "[\"SCMP_ARCH_PDP11\"]}",
                "linux.seccomp.architectures[0]: unknown architecture `SCMP_ARCH_PDP11`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":"
                "[\"SCMP_ARCH_X86_64\",\"x86\"]}",
                "linux.seccomp.architectures[1]: unknown architecture `x86`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":"
                "[\"SECCOMP_FILTER_FLAG_MAGIC\"]}",
                "linux.seccomp.flags[0]: unknown flag `SECCOMP_FILTER_FLAG_MAGIC`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"errnoRet\":1}]}",
                "linux.seccomp.syscalls[0].errnoRet: not allowed with action `SCMP_ACT_ALLOW`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_KILL\",\"defaultErrnoRet\":1}",
                "linux.seccomp.defaultErrnoRet: not allowed with action `SCMP_ACT_KILL`");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":5000}",
                "linux.seccomp.defaultErrnoRet: 5000 out of range (0..4095)");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":70000}]}",
                "linux.seccomp.syscalls[0].errnoRet: 70000 out of range (0..65535)");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[],\"action\":\"SCMP_ACT_ERRNO\"}]}",
                "linux.seccomp.syscalls[0].names: must not be empty");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerMetadata\":\"x\"}",
                "linux.seccomp.listenerMetadata: set without listenerPath");
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
}

static void
test_accepts (void **state)
{
  sbx_seccomp *sc;
  (void)state;
  /* Unknown names are skipped; a rule equal to the default is dropped;
     every operator and action compiles; repeated indexes are split.  */
  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
                  "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\","
                  "\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_ARM\",\"SCMP_ARCH_S390X\"],"
                  "\"syscalls\":["
                  "{\"names\":[\"no_such_syscall_xyz\",\"read\"],\"action\":\"SCMP_ACT_ALLOW\"},"
                  "{\"names\":[\"write\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1},"
                  "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":["
                  "{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
                  "{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"},"
                  "{\"index\":0,\"value\":4294967295,\"op\":\"SCMP_CMP_EQ\"}]},"
                  "{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":["
                  "{\"index\":0,\"value\":2114060288,\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"},"
                  "{\"index\":1,\"value\":1,\"op\":\"SCMP_CMP_NE\"},"
                  "{\"index\":2,\"value\":1,\"op\":\"SCMP_CMP_LT\"},"
                  "{\"index\":3,\"value\":1,\"op\":\"SCMP_CMP_LE\"},"
                  "{\"index\":4,\"value\":1,\"op\":\"SCMP_CMP_GE\"},"
                  "{\"index\":5,\"value\":1,\"op\":\"SCMP_CMP_GT\"}]},"
                  "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_KILL\"},"
                  "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_KILL_THREAD\"},"
                  "{\"names\":[\"getuid\"],\"action\":\"SCMP_ACT_KILL_PROCESS\"},"
                  "{\"names\":[\"getgid\"],\"action\":\"SCMP_ACT_TRAP\"},"
                  "{\"names\":[\"geteuid\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":7},"
                  "{\"names\":[\"getegid\"],\"action\":\"SCMP_ACT_LOG\"},"
                  "{\"names\":[\"socketcall\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                  NULL);
  assert_false (sbx_seccomp_uses_notify (sc));
  assert_false (sc->cached);
  sbx_seccomp_free (sc);

  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/run/agent.sock\","
                  "\"listenerMetadata\":\"m\",\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"],"
                  "\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                  NULL);
  assert_true (sbx_seccomp_uses_notify (sc));
  sbx_seccomp_free (sc);
}

static int
count_enosys_blocks (const sbx_seccomp *sc, uint32_t *audits, size_t max)
{
  const struct sock_filter *p = sc->insns;
  size_t n = sc->len;
  int blocks = 0;
  /* The prefix is a run of 6-instruction blocks at the start.  */
  for (size_t i = 0; i + 6 <= n; i += 6)
    {
      if (p[i].code != (BPF_LD | BPF_W | BPF_ABS) || p[i].k != offsetof (struct seccomp_data, arch)
          || p[i + 5].code != (BPF_RET | BPF_K) || p[i + 5].k != (SECCOMP_RET_ERRNO | ENOSYS))
        break;
      if ((size_t)blocks < max)
        audits[blocks] = p[i + 1].k;
      blocks++;
    }
  return blocks;
}

static void
test_enosys_prefix (void **state)
{
  sbx_seccomp *sc;
  uint32_t audits[8];
  (void)state;

  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
                  "{\"names\":[\"read\",\"write\",\"exit_group\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                  NULL);
  assert_int_equal (count_enosys_blocks (sc, audits, 8), 1);
  assert_int_equal (audits[0], seccomp_arch_native ());
  sbx_seccomp_free (sc);

  /* KILL-like defaults get it too; ALLOW, LOG, TRAP and ERRNO(ENOSYS) not. */
  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_KILL_PROCESS\",\"syscalls\":["
                  "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                  NULL);
  assert_int_equal (count_enosys_blocks (sc, audits, 8), 1);
  sbx_seccomp_free (sc);
  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                  "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\"}]}",
                  NULL);
  assert_int_equal (count_enosys_blocks (sc, audits, 8), 0);
  sbx_seccomp_free (sc);
  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,\"syscalls\":["
                  "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                  NULL);
  assert_int_equal (count_enosys_blocks (sc, audits, 8), 0);
  sbx_seccomp_free (sc);
  /* No syscalls named: nothing is "newer than the profile".  */
  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\"}", NULL);
  assert_int_equal (count_enosys_blocks (sc, audits, 8), 0);
  sbx_seccomp_free (sc);

#if defined(__x86_64__)
  sc = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":"
                  "[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],\"syscalls\":["
                  "{\"names\":[\"read\",\"write\",\"exit_group\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
                  NULL);
  assert_int_equal (count_enosys_blocks (sc, audits, 8), 3);
  assert_int_equal (audits[0], AUDIT_ARCH_X86_64);
  assert_int_equal (audits[1], AUDIT_ARCH_I386);
  assert_int_equal (audits[2], AUDIT_ARCH_X86_64); /* x32 */
  sbx_seccomp_free (sc);
#endif
}

static char *
make_tmpdir (void)
{
  char *d = xstrdup ("/tmp/sbx-test-seccomp-XXXXXX");
  assert_non_null (mkdtemp (d));
  return d;
}

static void
rm_rf (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)))
    {
      char *p;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      p = xasprintf ("%s/%s", dir, e->d_name);
      if (e->d_type == DT_DIR)
        rm_rf (p);
      else
        unlink (p);
      free (p);
    }
  closedir (d);
  rmdir (dir);
}

/* The single *.bpf file in dir (malloc'd path), or NULL.  */
static char *
cache_file (const char *dir, int *count)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  char *found = NULL;
  *count = 0;
  if (d == NULL)
    return NULL;
  while ((e = readdir (d)))
    {
      size_t l = strlen (e->d_name);
      if (l == 64 + 4 && strcmp (e->d_name + 64, ".bpf") == 0)
        {
          (*count)++;
          free (found);
          found = xasprintf ("%s/%s", dir, e->d_name);
        }
    }
  closedir (d);
  return found;
}

static const char cache_profile[]
    = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"flags\":[\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],"
      "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
      "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":["
      "{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]}]}";

static void
test_cache (void **state)
{
  char *tmp = make_tmpdir ();
  char *dir = xasprintf ("%s/cache/seccomp", tmp); /* created on demand */
  sbx_seccomp *cold, *hot, *again;
  const struct sock_filter *pc, *ph;
  size_t nc, nh;
  char *file;
  int nfiles, fd;
  (void)state;

  cold = expect_ok (cache_profile, dir);
  assert_false (cold->cached);
  file = cache_file (dir, &nfiles);
  assert_non_null (file);
  assert_int_equal (nfiles, 1);

  /* Hit: libseccomp is not called, same program.  */
  hot = expect_ok (cache_profile, dir);
  assert_true (hot->cached);
  nc = cold->len, pc = cold->insns;
  nh = hot->len, ph = hot->insns;
  assert_int_equal (nc, nh);
  assert_memory_equal (pc, ph, nc * sizeof *pc);
  sbx_seccomp_free (hot);

  /* A different profile is a different key.  */
  hot = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}", dir);
  assert_false (hot->cached);
  sbx_seccomp_free (hot);

  /* A corrupted file is detected, recompiled and rewritten.  */
  fd = open (file, O_WRONLY);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, "\xff\xff\xff\xff", 4, 60), 4);
  close (fd);
  again = expect_ok (cache_profile, dir);
  assert_false (again->cached);
  sbx_seccomp_free (again);
  again = expect_ok (cache_profile, dir);
  assert_true (again->cached);
  sbx_seccomp_free (again);

  /* A truncated file too.  */
  assert_int_equal (truncate (file, 20), 0);
  again = expect_ok (cache_profile, dir);
  sbx_seccomp_free (again);

  /* A group/world-writable file is not trusted.  */
  assert_int_equal (chmod (file, 0666), 0);
  again = expect_ok (cache_profile, dir);
  assert_false (again->cached);
  sbx_seccomp_free (again);
  again = expect_ok (cache_profile, dir); /* rewritten 0600 */
  assert_true (again->cached);
  sbx_seccomp_free (again);

  /* Another key's entry renamed over this one's is a miss, however
     valid it is: the key is inside the file.  */
  {
    char *dir2 = xasprintf ("%s/cache/other", tmp), *other;
    int n2;
    hot = expect_ok ("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}", dir2);
    sbx_seccomp_free (hot);
    other = cache_file (dir2, &n2);
    assert_int_equal (n2, 1);
    assert_int_equal (rename (other, file), 0);
    again = expect_ok (cache_profile, dir);
    assert_false (again->cached);
    nh = again->len, ph = again->insns;
    assert_int_equal (nh, nc);
    assert_memory_equal (pc, ph, nc * sizeof *pc);
    sbx_seccomp_free (again);
    free (other);
    free (dir2);
  }

  /* An unusable cache directory only costs the cache.  */
  again = expect_ok (cache_profile, "/proc/sbx-no-such-dir");
  assert_false (again->cached);
  sbx_seccomp_free (again);

  sbx_seccomp_free (cold);
  free (file);
  rm_rf (tmp);
  free (dir);
  free (tmp);
}

static void
hex (const unsigned char *d, char *out)
{
  for (int i = 0; i < 32; i++)
    sprintf (out + 2 * i, "%02x", d[i]);
}

static void
test_sha256 (void **state)
{
  unsigned char d[32];
  char h[65];
  char *million = xmalloc0 (1000000);
  (void)state;
  sbx_sha256 ("", 0, d);
  hex (d, h);
  assert_string_equal (h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sbx_sha256 ("abc", 3, d);
  hex (d, h);
  assert_string_equal (h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sbx_sha256 ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
  hex (d, h);
  assert_string_equal (h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  memset (million, 'a', 1000000);
  sbx_sha256 (million, 1000000, d);
  hex (d, h);
  assert_string_equal (h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free (million);
}

static bool
in_list (const char *const *l, const char *s)
{
  for (; *l; l++)
    if (strcmp (*l, s) == 0)
      return true;
  return false;
}

static void
test_features_lists (void **state)
{
  char **archs = sbx_seccomp_archs ();
  char **sup = sbx_seccomp_supported_flags ();
  (void)state;
  assert_int_equal (sbx_strv_len ((char *const *)sbx_seccomp_actions), 9);
  assert_true (in_list (sbx_seccomp_actions, "SCMP_ACT_NOTIFY"));
  assert_true (in_list (sbx_seccomp_actions, "SCMP_ACT_KILL_PROCESS"));
  assert_int_equal (sbx_strv_len ((char *const *)sbx_seccomp_operators), 7);
  assert_true (in_list (sbx_seccomp_operators, "SCMP_CMP_MASKED_EQ"));
  assert_int_equal (sbx_strv_len ((char *const *)sbx_seccomp_flags), 4);
  assert_true (in_list ((const char *const *)archs, "SCMP_ARCH_X86_64"));
  assert_true (in_list ((const char *const *)archs, "SCMP_ARCH_RISCV64"));
  for (char **p = sup; *p; p++)
    assert_true (in_list (sbx_seccomp_flags, *p));
  print_message ("supported flags:");
  for (char **p = sup; *p; p++)
    print_message (" %s", *p);
  print_message ("\n");
  sbx_strv_free (archs);
  sbx_strv_free (sup);
}

/* Listen on dir/name; long paths are bound through /proc/self/fd.  */
static int
listen_at (const char *dir, const char *name)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int dfd = open (dir, O_PATH | O_DIRECTORY);
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  assert_true (dfd >= 0 && fd >= 0);
  snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dfd, name);
  assert_int_equal (bind (fd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal (listen (fd, 1), 0);
  close (dfd);
  return fd;
}

/* Accept one connection; return the data (malloc'd) and the passed fd.  */
static char *
receive_state (int lfd, int *fd)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctl;
  char *data = xmalloc0 (65536);
  size_t got = 0;
  int cfd = accept (lfd, NULL, NULL);
  assert_true (cfd >= 0);
  *fd = -1;
  for (;;)
    {
      struct iovec iov = { .iov_base = data + got, .iov_len = 65535 - got };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
      struct cmsghdr *cm;
      ssize_t n;
      msg.msg_control = ctl.buf;
      msg.msg_controllen = sizeof ctl.buf;
      n = recvmsg (cfd, &msg, MSG_CMSG_CLOEXEC);
      assert_true (n >= 0);
      if (n == 0)
        break;
      for (cm = CMSG_FIRSTHDR (&msg); cm; cm = CMSG_NXTHDR (&msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
          {
            assert_int_equal (got, 0); /* fds only with the first bytes */
            memcpy (fd, CMSG_DATA (cm), sizeof (int));
          }
      got += (size_t)n;
    }
  close (cfd);
  return data;
}

static const char state_doc[]
    = "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":4422,"
      "\"bundle\":\"/containers/redis\",\"annotations\":{\"myKey\":\"myValue\"}}";

static void
test_notify_send (void **state)
{
  char *tmp = make_tmpdir ();
  char *longdir = xasprintf ("%s/%0120d", tmp, 7); /* path beyond sun_path */
  char *json, *data, *emsg = NULL;
  oci_seccomp *s;
  sbx_error *err = NULL;
  int lfd, fd, pipefd[2];
  struct stat a, b;
  oj_value *doc;
  (void)state;

  assert_int_equal (mkdir (longdir, 0700), 0);
  assert_int_equal (pipe (pipefd), 0);
  lfd = listen_at (longdir, "agent.sock");
  json = xasprintf ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"%s/agent.sock\","
                    "\"listenerMetadata\":\"MKNOD=/dev/null,/dev/net/tun\",\"syscalls\":["
                    "{\"names\":[\"mknod\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                    longdir);
  s = parse (json);
  if (sbx_seccomp_notify_send (s, pipefd[0], 4422, state_doc, &err) < 0)
    fail_msg ("notify_send: %s", err->msg);
  data = receive_state (lfd, &fd);
  assert_true (fd >= 0);
  assert_int_equal (fstat (fd, &a), 0);
  assert_int_equal (fstat (pipefd[0], &b), 0);
  assert_true (a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  close (fd);
  doc = oj_parse (data, strlen (data), &emsg);
  assert_non_null (doc);
  assert_string_equal (oj_object_get (doc, "ociVersion")->text, OCI_VERSION);
  assert_int_equal (oj_object_get (doc, "fds")->len, 1);
  assert_string_equal (oj_object_get (doc, "fds")->items[0]->text, "seccompFd");
  assert_string_equal (oj_object_get (doc, "pid")->text, "4422");
  assert_string_equal (oj_object_get (doc, "metadata")->text, "MKNOD=/dev/null,/dev/net/tun");
  assert_string_equal (oj_object_get (oj_object_get (doc, "state"), "bundle")->text, "/containers/redis");
  assert_string_equal (
      oj_object_get (oj_object_get (oj_object_get (doc, "state"), "annotations"), "myKey")->text, "myValue");
  oj_free (doc);
  free (data);

  /* Errors: bad state, nobody listening, no listenerPath.  */
  assert_true (sbx_seccomp_notify_send (s, pipefd[0], 1, "{\"id\":3}", &err) < 0);
  assert_true (sbx_has_prefix (err->msg, "seccomp notify: container state: "));
  sbx_error_free (err);
  err = NULL;
  close (lfd);
  free (s->listener_path);
  s->listener_path = xasprintf ("%s/nobody.sock", tmp);
  assert_true (sbx_seccomp_notify_send (s, pipefd[0], 1, state_doc, &err) < 0);
  assert_true (sbx_has_prefix (err->msg, "linux.seccomp.listenerPath: connect to `"));
  assert_int_equal (err->errno_, ENOENT);
  sbx_error_free (err);
  err = NULL;
  free (s->listener_path);
  s->listener_path = NULL;
  assert_true (sbx_seccomp_notify_send (s, pipefd[0], 1, state_doc, &err) < 0);
  assert_string_equal (err->msg, "linux.seccomp.listenerPath: not set");
  sbx_error_free (err);

  close (pipefd[0]);
  close (pipefd[1]);
  ocispec_free (&oci_seccomp_type, s);
  free (json);
  rm_rf (tmp);
  free (longdir);
  free (tmp);
}

/* A Docker-sized profile: ~300 entries, one syscall each, some with
   argument conditions.  Prints prepare() time cold and from the cache.  */
static char *
big_profile (int *nrules)
{
  oj_writer *w = oj_writer_new (false);
  int n = 0;
  oj_w_begin_object (w);
  oj_w_key (w, "defaultAction");
  oj_w_string (w, "SCMP_ACT_ERRNO");
  oj_w_key (w, "architectures");
  oj_w_begin_array (w);
  oj_w_string (w, "SCMP_ARCH_X86_64");
  oj_w_string (w, "SCMP_ARCH_X86");
  oj_w_string (w, "SCMP_ARCH_X32");
  oj_w_end_array (w);
  oj_w_key (w, "syscalls");
  oj_w_begin_array (w);
  for (int nr = 0; nr < 1024 && n < 300; nr++)
    {
      char *name = seccomp_syscall_resolve_num_arch (SCMP_ARCH_NATIVE, nr);
      if (name == NULL)
        continue;
      oj_w_begin_object (w);
      oj_w_key (w, "names");
      oj_w_begin_array (w);
      oj_w_string (w, name);
      oj_w_end_array (w);
      oj_w_key (w, "action");
      oj_w_string (w, "SCMP_ACT_ALLOW");
      if (n % 10 == 0)
        {
          oj_w_key (w, "args");
          oj_w_begin_array (w);
          oj_w_begin_object (w);
          oj_w_key (w, "index");
          oj_w_uint (w, 0);
          oj_w_key (w, "value");
          oj_w_uint (w, (uint64_t)n);
          oj_w_key (w, "op");
          oj_w_string (w, "SCMP_CMP_NE");
          oj_w_end_object (w);
          oj_w_end_array (w);
        }
      oj_w_end_object (w);
      free (name);
      n++;
    }
  oj_w_end_array (w);
  oj_w_end_object (w);
  *nrules = n;
  return oj_writer_finish (w, NULL);
}

static double
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
test_cache_timing (void **state)
{
  int nrules, iters = 20;
  char *json = big_profile (&nrules);
  oci_seccomp *s = parse (json);
  char *tmp = make_tmpdir ();
  double t0, cold = 0, hit = 0, first;
  size_t len;
  sbx_seccomp *sc;
  sbx_error *err = NULL;
  (void)state;

  assert_true (nrules >= 250);
  for (int i = 0; i < iters; i++)
    {
      t0 = now_us ();
      assert_int_equal (sbx_seccomp_prepare (s, NULL, &sc, &err), 0);
      cold += now_us () - t0;
      len = sc->len;
      sbx_seccomp_free (sc);
    }
  t0 = now_us ();
  assert_int_equal (sbx_seccomp_prepare (s, tmp, &sc, &err), 0);
  first = now_us () - t0;
  assert_false (sc->cached);
  sbx_seccomp_free (sc);
  for (int i = 0; i < iters; i++)
    {
      t0 = now_us ();
      assert_int_equal (sbx_seccomp_prepare (s, tmp, &sc, &err), 0);
      hit += now_us () - t0;
      assert_true (sc->cached);
      sbx_seccomp_free (sc);
    }
  print_message ("%d rules, %zu BPF instructions: prepare cold %.0f us, first with cache "
                 "(compile + write) %.0f us, cache hit %.0f us (%.1fx faster)\n",
                 nrules, len, cold / iters, first, hit / iters, cold / hit);
  ocispec_free (&oci_seccomp_type, s);
  free (json);
  rm_rf (tmp);
  free (tmp);
}

/* A classic BPF interpreter for what libseccomp and the ENOSYS prefix
   emit, counting the instructions run: the kernel runs the filter this way
   for every syscall number when it loads it (and for each call not found
   always allowed).  */
static uint32_t
run_filter (const sbx_seccomp *sc, const struct seccomp_data *d, int *steps)
{
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };
  size_t pc = 0;

  for (*steps = 0; pc < sc->len; (*steps)++)
    {
      const struct sock_filter *f = &sc->insns[pc++];
      uint32_t src = BPF_SRC (f->code) == BPF_X ? x : f->k;
      switch (f->code)
        {
        case BPF_LD | BPF_W | BPF_ABS:
          assert_true (f->k % 4 == 0 && f->k < sizeof *d);
          memcpy (&a, (const char *)d + f->k, 4);
          continue;
        case BPF_LD | BPF_MEM: a = mem[f->k]; continue;
        case BPF_LDX | BPF_MEM: x = mem[f->k]; continue;
        case BPF_ST: mem[f->k] = a; continue;
        case BPF_STX: mem[f->k] = x; continue;
        case BPF_LD | BPF_IMM: a = f->k; continue;
        case BPF_MISC | BPF_TAX: x = a; continue;
        case BPF_MISC | BPF_TXA: a = x; continue;
        case BPF_RET | BPF_K: return f->k;
        case BPF_RET | BPF_A: return a;
        case BPF_JMP | BPF_JA: pc += f->k; continue;
        }
      switch (BPF_CLASS (f->code))
        {
        case BPF_ALU:
          switch (BPF_OP (f->code))
            {
            case BPF_AND: a &= src; continue;
            case BPF_OR: a |= src; continue;
            case BPF_ADD: a += src; continue;
            case BPF_SUB: a -= src; continue;
            case BPF_RSH: a >>= src; continue;
            case BPF_LSH: a <<= src; continue;
            }
          break;
        case BPF_JMP:
          {
            bool t = false;
            switch (BPF_OP (f->code))
              {
              case BPF_JEQ: t = a == src; break;
              case BPF_JGT: t = a > src; break;
              case BPF_JGE: t = a >= src; break;
              case BPF_JSET: t = (a & src) != 0; break;
              default: fail_msg ("unknown jump 0x%x", f->code);
              }
            pc += t ? f->jt : f->jf;
            continue;
          }
        }
      fail_msg ("instruction 0x%x not interpreted", f->code);
    }
  fail_msg ("ran off the end of the filter");
  return 0;
}

/* The filter is a binary tree of syscall numbers, not a list: what each
   number decides is unchanged, and no number takes more than a few dozen
   instructions to decide (a list of 300 takes 300 for the numbers it does
   not hold).  That is what makes the kernel's load of it cheap.  */
static void
test_filter_is_a_tree (void **state)
{
  int nrules, worst = 0, steps;
  char *json = big_profile (&nrules);
  oci_seccomp *s = parse (json);
  sbx_seccomp *sc;
  sbx_error *err = NULL;
  (void)state;

  assert_int_equal (sbx_seccomp_prepare (s, NULL, &sc, &err), 0);
  for (size_t i = 0; i < s->syscalls_len; i++)
    {
      /* every 10th rule has an argument condition (big_profile): args 0 and 1 */
      int nr = seccomp_syscall_resolve_name (s->syscalls[i]->names[0]);
      struct seccomp_data d = { .nr = nr, .arch = AUDIT_ARCH_X86_64 };
      assert_true (nr >= 0);
      if (i % 10)
        assert_int_equal (run_filter (sc, &d, &steps), SECCOMP_RET_ALLOW);
      else
        {
          d.args[0] = i; /* the condition is arg0 != i */
          assert_int_not_equal (run_filter (sc, &d, &steps), SECCOMP_RET_ALLOW);
          d.args[0] = i + 1;
          assert_int_equal (run_filter (sc, &d, &steps), SECCOMP_RET_ALLOW);
        }
    }
  for (int nr = 0; nr < 1024; nr++)
    {
      struct seccomp_data d = { .nr = nr, .arch = AUDIT_ARCH_X86_64, .args = { 1 << 20 } };
      uint32_t r = run_filter (sc, &d, &steps);
      char *name = seccomp_syscall_resolve_num_arch (SCMP_ARCH_NATIVE, nr);
      bool listed = false;
      for (size_t i = 0; name && i < s->syscalls_len; i++)
        listed = listed || strcmp (s->syscalls[i]->names[0], name) == 0;
      assert_int_equal (r == SECCOMP_RET_ALLOW, listed);
      if (!listed)
        assert_int_equal (r & SECCOMP_RET_ACTION_FULL, SECCOMP_RET_ERRNO);
      if (steps > worst)
        worst = steps;
      free (name);
    }
  print_message ("%d rules, %zu instructions: at most %d run for any syscall number\n", nrules, sc->len,
                 worst);
  assert_true (worst <= 64);
  sbx_seccomp_free (sc);
  ocispec_free (&oci_seccomp_type, s);
  free (json);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_errors),        cmocka_unit_test (test_accepts),
    cmocka_unit_test (test_enosys_prefix), cmocka_unit_test (test_cache),
    cmocka_unit_test (test_sha256),        cmocka_unit_test (test_features_lists),
    cmocka_unit_test (test_notify_send),   cmocka_unit_test (test_cache_timing),
    cmocka_unit_test (test_filter_is_a_tree),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
