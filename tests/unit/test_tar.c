/* test_tar.c - the snapshot stream's pax records and ustar headers, the
 * manifest parser, and an export -> extract round trip of a small tree
 * (a hard link, an xattr, a file with a hole, a hostile path).  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs.h"

struct recs
{
  int n;
  char keys[8][64];
  char vals[8][64];
  size_t vlen[8];
};

static int
collect (void *data, const char *key, size_t klen, const char *val, size_t vlen, sbx_error **err)
{
  struct recs *r = data;
  (void)err;
  assert_true (r->n < 8 && klen < 64 && vlen < 64);
  memcpy (r->keys[r->n], key, klen);
  r->keys[r->n][klen] = '\0';
  memcpy (r->vals[r->n], val, vlen);
  r->vlen[r->n++] = vlen;
  return 0;
}

static void
test_pax_round_trip (void **state)
{
  cleanup_free char *buf = NULL;
  size_t len = 0;
  struct recs r = { 0 };
  (void)state;
  sbx_fs_pax_add (&buf, &len, "path", "a", 1); /* "9 path=a\n": 9 bytes */
  assert_int_equal (len, 9);
  assert_memory_equal (buf, "9 path=a\n", 9);
  /* 1 + 1 + 4 + 1 + 2 + 1 = 10 with one digit: two digits -> 11.  */
  sbx_fs_pax_add (&buf, &len, "path", "ab", 2);
  assert_memory_equal (buf + 9, "11 path=ab\n", 11);
  sbx_fs_pax_add (&buf, &len, "SCHILY.xattr.user.k", "v\0\n=", 4); /* binary value */
  assert_int_equal (sbx_fs_pax_parse (buf, len, collect, &r, NULL), 0);
  assert_int_equal (r.n, 3);
  assert_string_equal (r.keys[2], "SCHILY.xattr.user.k");
  assert_int_equal (r.vlen[2], 4);
  assert_memory_equal (r.vals[2], "v\0\n=", 4);
}

static void
test_pax_malformed (void **state)
{
  static const char *bad[]
      = { "8 path=a\n", "11 path=a\n", "x path=a\n", "9 patha\n\n", "9path=ab\n", "99 p=\n" };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      cleanup_error sbx_error *e = NULL;
      struct recs r = { 0 };
      assert_true (sbx_fs_pax_parse (bad[i], strlen (bad[i]), collect, &r, &e) < 0);
      assert_non_null (e);
    }
}

static void
test_header_round_trip (void **state)
{
  unsigned char h[512];
  sbx_tar_entry e;
  cleanup_error sbx_error *err = NULL;
  (void)state;
  sbx_fs_tar_header (h, "tree/dev/null", '3', 0620, 100000, 5, 0, 1700000000, 1, 3);
  assert_memory_equal (h + 257,
                       "ustar\0"
                       "00",
                       8);
  assert_int_equal (sbx_fs_tar_parse_header (h, &e, NULL), 0);
  assert_string_equal (e.name, "tree/dev/null");
  assert_int_equal (e.type, '3');
  assert_int_equal (e.mode, 0620);
  assert_int_equal (e.uid, 100000);
  assert_int_equal (e.gid, 5);
  assert_int_equal (e.mtime, 1700000000);
  assert_int_equal (e.devmajor, 1);
  assert_int_equal (e.devminor, 3);
  h[0] ^= 1; /* any change breaks the checksum */
  assert_true (sbx_fs_tar_parse_header (h, &e, &err) < 0);
  assert_non_null (strstr (err->msg, "checksum"));
}

static const char good[]
    = "{\"version\":3,\"name\":\"s\",\"kind\":\"overlay\",\"source\":\"c\",\"lower\":\"/r\","
      "\"configDigest\":\"sha256:00\",\"entries\":3,\"bytes\":9,\"treeDigest\":"
      "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}";

static void
test_manifest_parse (void **state)
{
  sbx_snapshot_manifest *m = NULL;
  (void)state;
  assert_int_equal (sbx_fs_snapshot_manifest_parse (good, strlen (good), "s", &m, NULL), 0);
  assert_string_equal (m->kind, "overlay");
  assert_int_equal (m->entries, 3);
  ocispec_free (&sbx_snapshot_manifest_type, m);
}

static void
test_manifest_refused (void **state)
{
  static const struct
  {
    const char *from, *to, *word;
  } edits[] = {
    { "\"kind\":\"overlay\"", "\"kind\":\"layer\"", "kind" },
    { "\"version\":3", "\"version\":4", "version" },
    { "\"version\":3", "\"version\":1", "version 1" },
    { "\"version\":3", "\"version\":2", "version 2" },
    { "\"lower\":\"/r\",", "", "lower" },
    { "0123456789abcdef\"}", "0123456789abcdeX\"}", "treeDigest" },
    { "sha256:00", "md5:00", "configDigest" },
    { "\"entries\":3,", "", "entries" },
    { "}", "", "corrupt" },
  };
  (void)state;
  for (size_t i = 0; i < sizeof edits / sizeof *edits; i++)
    {
      cleanup_error sbx_error *e = NULL;
      sbx_snapshot_manifest *m = NULL;
      char text[1024];
      const char *at = strstr (good, edits[i].from);
      assert_non_null (at);
      snprintf (text, sizeof text, "%.*s%s%s", (int)(at - good), good, edits[i].to,
                at + strlen (edits[i].from));
      assert_true (sbx_fs_snapshot_manifest_parse (text, strlen (text), "s1", &m, &e) < 0);
      assert_non_null (strstr (e->msg, "snapshot \"s1\""));
      assert_non_null (strstr (e->msg, edits[i].word));
    }
}

static char tmp[] = "/tmp/sbx-test-tar-XXXXXX";

static void
test_export_extract (void **state)
{
  char path[1024];
  cleanup_close int src = -1, dst = -1, fd = -1;
  struct stat a, b;
  sbx_tree_sum s1, s2;
  char x[8] = { 0 };
  int p[2];
  FILE *f;
  (void)state;
  assert_non_null (mkdtemp (tmp));
  snprintf (path, sizeof path,
            "mkdir -p %s/src/tree/d %s/dst && cd %s/src && echo m > manifest.json && "
            "echo hi > tree/d/f && ln tree/d/f tree/d/g && ln -s ../x tree/l && "
            "truncate -s 10M tree/sparse && echo z | dd of=tree/sparse bs=1M seek=5 "
            "conv=notrunc 2>/dev/null && mknod tree/wh c 0 0",
            tmp, tmp, tmp);
  assert_int_equal (system (path), 0);
  snprintf (path, sizeof path, "%s/src/tree/d/f", tmp);
  assert_int_equal (setxattr (path, "trusted.overlay.opaque", "y", 1, 0), 0);
  snprintf (path, sizeof path, "%s/src", tmp);
  src = open (path, O_RDONLY | O_DIRECTORY);
  snprintf (path, sizeof path, "%s/dst", tmp);
  dst = open (path, O_RDONLY | O_DIRECTORY);
  assert_true (src >= 0 && dst >= 0);
  f = tmpfile ();
  assert_int_equal (sbx_fs_snapshot_export_fd (src, fileno (f), NULL), 0);
  rewind (f);
  assert_int_equal (sbx_fs_tar_extract (fileno (f), dst, NULL), 0);
  fclose (f);
  {
    cleanup_close int t1 = openat (src, "tree", O_RDONLY | O_DIRECTORY);
    cleanup_close int t2 = openat (dst, "tree", O_RDONLY | O_DIRECTORY);
    assert_int_equal (sbx_fs_tree_sum_of (t1, NULL, &s1, NULL), 0);
    assert_int_equal (sbx_fs_tree_sum_of (t2, NULL, &s2, NULL), 0);
  }
  assert_string_equal (s1.digest, s2.digest);
  assert_int_equal (fstatat (dst, "tree/d/f", &a, 0), 0);
  assert_int_equal (fstatat (dst, "tree/d/g", &b, 0), 0);
  assert_int_equal (a.st_ino, b.st_ino);
  assert_int_equal (fstatat (dst, "tree/sparse", &a, 0), 0);
  assert_int_equal (a.st_size, 10 << 20);
  assert_true (a.st_blocks * 512 < (1 << 20));
  fd = openat (dst, "tree/sparse", O_RDONLY);
  assert_int_equal (pread (fd, x, 2, 5 << 20), 2);
  assert_memory_equal (x, "z\n", 2);
  snprintf (path, sizeof path, "%s/dst/tree/d/f", tmp);
  assert_int_equal (getxattr (path, "trusted.overlay.opaque", x, sizeof x), 1);

  /* A stream naming a path outside manifest.json and tree/ is refused.  */
  {
    cleanup_error sbx_error *e = NULL;
    unsigned char h[1536] = { 0 };
    cleanup_close int d2 = -1;
    sbx_fs_tar_header (h, "../evil", '0', 0644, 0, 0, 0, 0, 0, 0);
    assert_int_equal (pipe (p), 0);
    assert_int_equal (write (p[1], h, sizeof h), (ssize_t)sizeof h);
    close (p[1]);
    snprintf (path, sizeof path, "%s/dst2", tmp);
    mkdir (path, 0700);
    d2 = open (path, O_RDONLY | O_DIRECTORY);
    assert_true (sbx_fs_tar_extract (p[0], d2, &e) < 0);
    assert_non_null (strstr (e->msg, "../evil"));
    close (p[0]);
  }
  snprintf (path, sizeof path, "rm -rf %s", tmp);
  assert_int_equal (system (path), 0);
}

/* A pax "size" record overrides the header's size field (files past the
   ustar field's 8 GiB).  */
static void
test_pax_size_overrides (void **state)
{
  char dir[] = "/tmp/sbx-test-tar-size-XXXXXX", path[128];
  unsigned char blk[512];
  cleanup_free char *recs = NULL;
  cleanup_close int d = -1, fd = -1;
  size_t len = 0;
  char data[8] = { 0 };
  FILE *f = tmpfile ();
  (void)state;
  assert_non_null (mkdtemp (dir));
  d = open (dir, O_RDONLY | O_DIRECTORY);
  sbx_fs_tar_header (blk, "tree", '5', 0755, 0, 0, 0, 0, 0, 0);
  fwrite (blk, 1, 512, f);
  sbx_fs_pax_add (&recs, &len, "path", "tree/f", 6);
  sbx_fs_pax_add (&recs, &len, "size", "5", 1);
  sbx_fs_tar_header (blk, "x", 'x', 0644, 0, 0, len, 0, 0, 0);
  fwrite (blk, 1, 512, f);
  memset (blk, 0, 512);
  memcpy (blk, recs, len);
  fwrite (blk, 1, 512, f);
  sbx_fs_tar_header (blk, "ignored", '0', 0644, 0, 0, 0, 0, 0, 0);
  fwrite (blk, 1, 512, f);
  memset (blk, 0, 512);
  memcpy (blk, "hello", 5);
  fwrite (blk, 1, 512, f);
  memset (blk, 0, 512);
  fwrite (blk, 1, 512, f);
  fwrite (blk, 1, 512, f);
  rewind (f);
  assert_int_equal (sbx_fs_tar_extract (fileno (f), d, NULL), 0);
  fclose (f);
  fd = openat (d, "tree/f", O_RDONLY);
  assert_true (fd >= 0);
  assert_int_equal (read (fd, data, sizeof data), 5);
  assert_string_equal (data, "hello");
  snprintf (path, sizeof path, "rm -rf %s", dir);
  assert_int_equal (system (path), 0);
}

/* A file's content digest depends on its bytes only: the same content
   sparse and dense digests alike, and the copy of the dense one has the
   holes (chunks of zeros are not written); one byte changed changes it.  */
static void
test_content_digest (void **state)
{
  char dir[] = "/tmp/sbx-digest-XXXXXX", cmd[1024];
  const char *srcs[] = { "sparse", "dense", "changed" };
  char digests[3][65];
  (void)state;
  assert_non_null (mkdtemp (dir));
  snprintf (cmd, sizeof cmd,
            "cd %s && mkdir -p sparse/t dense/t changed/t out-sparse out-dense out-changed && "
            "truncate -s 3M sparse/t/f && printf x | dd of=sparse/t/f bs=1 seek=1500000 conv=notrunc "
            "2>/dev/null && head -c 3145728 /dev/zero > dense/t/f && printf x | dd of=dense/t/f bs=1 "
            "seek=1500000 conv=notrunc 2>/dev/null && cp dense/t/f changed/t/f && printf y | dd "
            "of=changed/t/f bs=1 seek=1500000 conv=notrunc 2>/dev/null",
            dir);
  assert_int_equal (system (cmd), 0);
  for (int i = 0; i < 3; i++)
    {
      char p[512];
      cleanup_close int in = -1, out = -1;
      sbx_tree_sum sum = { 0 };
      struct stat st;
      snprintf (p, sizeof p, "%s/%s/t", dir, srcs[i]);
      in = open (p, O_RDONLY | O_DIRECTORY);
      snprintf (p, sizeof p, "%s/out-%s", dir, srcs[i]);
      out = open (p, O_RDONLY | O_DIRECTORY);
      assert_true (in >= 0 && out >= 0);
      assert_int_equal (sbx_fs_tree_copy (in, out, NULL, 0, &sum, NULL), 0);
      assert_int_equal (sum.files_len, 1);
      assert_string_equal (sum.files_keys[0], "/f");
      memcpy (digests[i], sum.files_values[0], 65);
      sbx_tree_sum_clear (&sum);
      assert_int_equal (fstatat (out, "f", &st, 0), 0);
      assert_int_equal (st.st_size, 3 << 20);
      assert_true (st.st_blocks * 512 <= 256 << 10); /* one 64 KiB chunk, not 3 MiB */
    }
  assert_string_equal (digests[0], digests[1]);
  assert_string_not_equal (digests[1], digests[2]);
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal (system (cmd), 0);
}

/* The xattr policy (docs/design.md): user.* and the overlay's opaque mark
   copied, trusted.* and security.* others dropped, security.capability
   only with SBX_TREE_FILE_CAPS (set after the owner: a chown drops it); the
   digest covers the kept names either way.  */
static void
test_xattr_policy (void **state)
{
  char dir[] = "/tmp/sbx-xattr-XXXXXX", p[512];
  static const unsigned char cap[20] = { 1, 0, 0, 2, 2 }; /* cap_dac_override=ep, v2 */
  char digests[2][65];
  (void)state;
  assert_non_null (mkdtemp (dir));
  snprintf (p, sizeof p, "cd %s && mkdir -p src/d out0 out1 && echo hi > src/f && chown 1:1 src/f", dir);
  assert_int_equal (system (p), 0);
  snprintf (p, sizeof p, "%s/src/f", dir);
  assert_int_equal (setxattr (p, "user.k", "v", 1, 0), 0);
  assert_int_equal (setxattr (p, "trusted.sbxtest", "t", 1, 0), 0);
  assert_int_equal (setxattr (p, "security.sbxtest", "s", 1, 0), 0);
  assert_int_equal (setxattr (p, "security.capability", cap, sizeof cap, 0), 0);
  snprintf (p, sizeof p, "%s/src/d", dir);
  assert_int_equal (setxattr (p, "trusted.overlay.opaque", "y", 1, 0), 0);
  for (int i = 0; i < 2; i++)
    {
      cleanup_close int in = -1, out = -1;
      sbx_tree_sum sum = { 0 };
      char list[256];
      ssize_t n;
      snprintf (p, sizeof p, "%s/src", dir);
      in = open (p, O_RDONLY | O_DIRECTORY);
      snprintf (p, sizeof p, "%s/out%d", dir, i);
      out = open (p, O_RDONLY | O_DIRECTORY);
      assert_int_equal (sbx_fs_tree_copy (in, out, NULL, i ? SBX_TREE_FILE_CAPS : 0, &sum, NULL), 0);
      memcpy (digests[i], sum.digest, 65);
      sbx_tree_sum_clear (&sum);
      snprintf (p, sizeof p, "%s/out%d/f", dir, i);
      n = listxattr (p, list, sizeof list);
      assert_true (n > 0);
      list[n] = '\0';
      assert_int_equal (getxattr (p, "user.k", list + 128, 1), 1);
      for (char *x = list; x < list + n; x += strlen (x) + 1)
        assert_true (strcmp (x, "user.k") == 0 || (i == 1 && strcmp (x, "security.capability") == 0));
      assert_int_equal (getxattr (p, "security.capability", list, sizeof list), i ? (ssize_t)sizeof cap : -1);
      snprintf (p, sizeof p, "%s/out%d/d", dir, i);
      assert_int_equal (getxattr (p, "trusted.overlay.opaque", list, sizeof list), 1);
    }
  assert_string_equal (digests[0], digests[1]);
  snprintf (p, sizeof p, "rm -rf %s", dir);
  assert_int_equal (system (p), 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_pax_round_trip),     cmocka_unit_test (test_pax_malformed),
    cmocka_unit_test (test_header_round_trip),  cmocka_unit_test (test_manifest_parse),
    cmocka_unit_test (test_manifest_refused),   cmocka_unit_test (test_export_extract),
    cmocka_unit_test (test_pax_size_overrides), cmocka_unit_test (test_content_digest),
    cmocka_unit_test (test_xattr_policy),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
