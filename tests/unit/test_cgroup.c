/* test_cgroup.c - the host-independent parts of the cgroup manager:
 * discovery from /proc/self/cgroup + mountinfo text, cgroupsPath resolution,
 * unit conversions, device lines, unified keys, describe/load and the size
 * / duration parsers of `update` and `events` (the eBPF device program and
 * systemd's device list: test_cgroup_devices.c).  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/bpf.h>

#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"
#include "container/container.h"
#include "core/core.h"
#include "egress/egress_internal.h"

/* ------------------------------------------------------------- fixtures */

static const char hybrid_cgroup[] = "9:name=systemd:/\n"
                                    "8:pids:/\n"
                                    "7:blkio:/\n"
                                    "6:freezer:/\n"
                                    "5:devices:/\n"
                                    "4:memory:/process_api/be77\n"
                                    "3:cpuset:/\n"
                                    "2:cpuacct:/\n"
                                    "1:cpu:/\n"
                                    "0::/\n";

static const char hybrid_mountinfo[]
    = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
      "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
      "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static sbx_cg_hier *
by_ctrl (sbx_cg_hier *h, size_t n, const char *c)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (h[i].controllers, c) == 0)
      return &h[i];
  return NULL;
}

/* ------------------------------------------------------------ discovery */

static void
test_hybrid_discovery (void **state)
{
  sbx_cg_hier *h = NULL, *x;
  size_t n = 0;
  (void)state;

  assert_int_equal (sbx_cg_hierarchies_from_text (SBX_CGROUP_V1, "/sys/fs/cgroup", hybrid_cgroup,
                                                  hybrid_mountinfo, &h, &n, NULL),
                    0);
  assert_int_equal (n, 10);
  x = by_ctrl (h, n, "memory");
  assert_non_null (x);
  assert_string_equal (x->mountpoint, "/sys/fs/cgroup/memory");
  assert_string_equal (x->mount_root, "/");
  assert_string_equal (x->own, "/process_api/be77");
  assert_false (x->unified);
  x = by_ctrl (h, n, "name=systemd");
  assert_non_null (x);
  assert_string_equal (x->mountpoint, "/sys/fs/cgroup/systemd");
  x = by_ctrl (h, n, "");
  assert_non_null (x);
  assert_true (x->unified);
  assert_string_equal (x->mountpoint, "/sys/fs/cgroup/unified");
  assert_int_equal (x->fd, -1);
  sbx_cg_hiers_free (h, n);
}

static void
test_combined_and_unmounted (void **state)
{
  /* cpu,cpuacct co-mounted; net_cls listed but not mounted; no unified;
     a second bind of memory outside /sys/fs/cgroup that must not win */
  static const char cg[] = "5:net_cls,net_prio:/\n4:cpu,cpuacct:/user.slice\n3:memory:/a b\n0::/\n";
  static const char mi[]
      = "50 1 0:40 /inner /mnt/mem rw - cgroup cgroup rw,memory\n"
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:10 - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:27 / /sys/fs/cgroup/mem\\040ory rw shared:11 master:3 - cgroup cgroup rw,memory\n";
  sbx_cg_hier *h = NULL, *x;
  size_t n = 0;
  (void)state;

  assert_int_equal (sbx_cg_hierarchies_from_text (SBX_CGROUP_V1, "/sys/fs/cgroup", cg, mi, &h, &n, NULL), 0);
  assert_int_equal (n, 2);
  x = by_ctrl (h, n, "cpu,cpuacct");
  assert_non_null (x);
  assert_string_equal (x->mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
  assert_string_equal (x->own, "/user.slice");
  x = by_ctrl (h, n, "memory");
  assert_non_null (x);
  assert_string_equal (x->mountpoint, "/sys/fs/cgroup/mem ory"); /* \040 decoded */
  assert_string_equal (x->own, "/a b");
  assert_null (by_ctrl (h, n, "net_cls,net_prio"));
  sbx_cg_hiers_free (h, n);
}

static void
test_v2_discovery (void **state)
{
  static const char cg[] = "0::/user.slice/user-0.slice/session-1.scope\n";
  static const char mi[] = "25 22 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
  sbx_cg_hier *h = NULL;
  size_t n = 0;
  sbx_error *err = NULL;
  (void)state;

  assert_int_equal (sbx_cg_hierarchies_from_text (SBX_CGROUP_V2, "/sys/fs/cgroup", cg, mi, &h, &n, NULL), 0);
  assert_int_equal (n, 1);
  assert_true (h[0].unified);
  assert_string_equal (h[0].mountpoint, "/sys/fs/cgroup");
  assert_string_equal (h[0].own, "/user.slice/user-0.slice/session-1.scope");
  sbx_cg_hiers_free (h, n);

  /* cgroup2 mount not visible: fall back to the whole hierarchy at root */
  assert_int_equal (
      sbx_cg_hierarchies_from_text (SBX_CGROUP_V2, "/sys/fs/cgroup", "0::/\n", "", &h, &n, NULL), 0);
  assert_string_equal (h[0].mount_root, "/");
  sbx_cg_hiers_free (h, n);

  assert_true (sbx_cg_hierarchies_from_text (SBX_CGROUP_V2, "/sys/fs/cgroup", "garbage\n", mi, &h, &n, &err)
               < 0);
  assert_non_null (strstr (err->msg, "malformed"));
  sbx_error_free (err);
  err = NULL;
  assert_true (sbx_cg_hierarchies_from_text (SBX_CGROUP_V1, "/sys/fs/cgroup", "1:cpu:/\n", mi, &h, &n, &err)
               < 0);
  sbx_error_free (err);
}

/* --------------------------------------------------------------- paths */

static void
expect_path (const char *own, const char *p, const char *id, const char *want)
{
  cleanup_free char *out = NULL;
  sbx_error *err = NULL;
  int r = sbx_cg_resolve_path (own, p, id, false, &out, &err);
  if (r < 0)
    fail_msg ("resolve `%s` below `%s`: %s", p ? p : "(null)", own, err->msg);
  assert_string_equal (out, want);
}

static void
expect_path_error (const char *own, const char *p, const char *id, bool systemd, const char *needle)
{
  char *out = NULL;
  sbx_error *err = NULL;
  assert_true (sbx_cg_resolve_path (own, p, id, systemd, &out, &err) < 0);
  assert_null (out);
  assert_non_null (err);
  if (strstr (err->msg, needle) == NULL)
    fail_msg ("error `%s` lacks `%s`", err->msg, needle);
  sbx_error_free (err);
}

static void
test_resolve_path (void **state)
{
  (void)state;
  expect_path ("/process_api/be77", "/abs/ctr", "x", "/abs/ctr");
  expect_path ("/process_api/be77", "rel/ctr", "x", "/process_api/be77/rel/ctr");
  expect_path ("/", "rel/ctr", "x", "/rel/ctr");
  expect_path ("/process_api/be77", NULL, "c1", "/process_api/be77/sbxrun/c1");
  expect_path ("/process_api/be77", "", "c1", "/process_api/be77/sbxrun/c1");
  expect_path ("/", NULL, "c1", "/sbxrun/c1");
  expect_path ("/", "//a///b/", "x", "/a/b");
  expect_path ("/own", "/a:b", "x", "/a:b"); /* absolute paths may contain ':' */

  expect_path_error ("/", "machine.slice:sbxrun:c1", "c1", false, "it needs --systemd-cgroup");
  expect_path_error ("/", "/a/b", "c1", true, "the systemd driver resolves it");
  expect_path_error ("/", "a/../../etc", "x", false, "invalid component `..`");
  expect_path_error ("/", "/a/./b", "x", false, "invalid component `.`");
  expect_path_error ("/", "a\nb", "x", false, "invalid component");
  expect_path_error ("/", "/", "x", false, "root cgroup");
  expect_path_error ("/", NULL, "a/b", false, "invalid container id");
  expect_path_error ("/", NULL, "..", false, "invalid container id");
}

static void
test_dir_for (void **state)
{
  char *d = NULL;
  sbx_error *err = NULL;
  (void)state;

  assert_int_equal (sbx_cg_dir_for ("/sys/fs/cgroup/memory", "/", "/a/b", &d, NULL), 0);
  assert_string_equal (d, "/sys/fs/cgroup/memory/a/b");
  free (d);
  assert_int_equal (sbx_cg_dir_for ("/mnt", "/inner", "/inner/x", &d, NULL), 0);
  assert_string_equal (d, "/mnt/x");
  free (d);
  assert_int_equal (sbx_cg_dir_for ("/mnt", "/inner/", "/inner", &d, NULL), 0);
  assert_string_equal (d, "/mnt");
  free (d);
  d = NULL;
  assert_true (sbx_cg_dir_for ("/mnt", "/inner", "/innerx/y", &d, &err) < 0);
  assert_null (d);
  assert_non_null (strstr (err->msg, "outside"));
  sbx_error_free (err);
}

/* ---------------------------------------------------------- conversions */

static void
test_shares_to_weight (void **state)
{
  uint64_t prev = 0;
  (void)state;

  assert_int_equal (sbx_cg_shares_to_weight (0), 0); /* unset */
  assert_int_equal (sbx_cg_shares_to_weight (1), 1);
  assert_int_equal (sbx_cg_shares_to_weight (2), 1);
  assert_int_equal (sbx_cg_shares_to_weight (3), 2);
  assert_int_equal (sbx_cg_shares_to_weight (512), 59);
  assert_int_equal (sbx_cg_shares_to_weight (1024), 100); /* defaults map onto each other */
  assert_int_equal (sbx_cg_shares_to_weight (2048), 174);
  assert_int_equal (sbx_cg_shares_to_weight (100000), 4340);
  assert_int_equal (sbx_cg_shares_to_weight (262143), 10000);
  assert_int_equal (sbx_cg_shares_to_weight (262144), 10000);
  assert_int_equal (sbx_cg_shares_to_weight (1u << 30), 10000);
  for (uint64_t s = 2; s <= 262144; s += 97)
    {
      uint64_t w = sbx_cg_shares_to_weight (s);
      assert_true (w >= prev && w >= 1 && w <= 10000);
      prev = w;
    }
}

static void
test_blkio_weight (void **state)
{
  (void)state;
  assert_int_equal (sbx_cg_blkio_to_io_weight (0), 0);
  assert_int_equal (sbx_cg_blkio_to_io_weight (10), 1);
  assert_int_equal (sbx_cg_blkio_to_io_weight (500), 4950);
  assert_int_equal (sbx_cg_blkio_to_io_weight (1000), 10000);
  assert_int_equal (sbx_cg_blkio_to_io_weight (5000), 10000);
}

static void
test_swap_v2 (void **state)
{
  oci_memory m = { 0 };
  int64_t out = 0;
  sbx_error *err = NULL;
  (void)state;

  assert_int_equal (sbx_cg_swap_v2 (&m, &out, NULL), 0); /* no swap */
  m.has_limit = true;
  m.limit = 64 << 20;
  m.has_swap = true;
  m.swap = 96 << 20;
  assert_int_equal (sbx_cg_swap_v2 (&m, &out, NULL), 1);
  assert_int_equal (out, 32 << 20);
  m.swap = m.limit; /* memory+swap == memory: no swap at all */
  assert_int_equal (sbx_cg_swap_v2 (&m, &out, NULL), 1);
  assert_int_equal (out, 0);
  m.swap = -1;
  assert_int_equal (sbx_cg_swap_v2 (&m, &out, NULL), 1);
  assert_int_equal (out, -1);
  m.swap = 0; /* unset */
  assert_int_equal (sbx_cg_swap_v2 (&m, &out, NULL), 0);
  m.swap = 1 << 20;
  assert_true (sbx_cg_swap_v2 (&m, &out, &err) < 0);
  assert_non_null (strstr (err->msg, "linux.resources.memory.swap"));
  sbx_error_free (err);
  err = NULL;
  m.has_limit = false;
  m.swap = 96 << 20;
  assert_true (sbx_cg_swap_v2 (&m, &out, &err) < 0);
  assert_non_null (strstr (err->msg, "needs linux.resources.memory.limit"));
  sbx_error_free (err);
  m.swap = -2;
  assert_true (sbx_cg_swap_v2 (&m, &out, NULL) < 0);
}

static void
test_device_lines (void **state)
{
  oci_device_cgroup d = { 0 };
  char buf[64];
  sbx_error *err = NULL;
  (void)state;

  assert_int_equal (sbx_cg_device_line (&d, 0, buf, sizeof buf, NULL), 0);
  assert_string_equal (buf, "a");
  d.type = (char *)"c";
  d.has_major = d.has_minor = true;
  d.major = 1;
  d.minor = 3;
  d.access = (char *)"rwm";
  assert_int_equal (sbx_cg_device_line (&d, 0, buf, sizeof buf, NULL), 0);
  assert_string_equal (buf, "c 1:3 rwm");
  d.minor = -1;
  d.access = (char *)"r";
  assert_int_equal (sbx_cg_device_line (&d, 0, buf, sizeof buf, NULL), 0);
  assert_string_equal (buf, "c 1:* r");
  d.type = (char *)"b";
  d.has_major = false;
  assert_int_equal (sbx_cg_device_line (&d, 0, buf, sizeof buf, NULL), 0);
  assert_string_equal (buf, "b *:* r");
  d.type = (char *)"x";
  assert_true (sbx_cg_device_line (&d, 4, buf, sizeof buf, &err) < 0);
  assert_string_equal (err->msg, "linux.resources.devices[4].type: invalid `x`");
  sbx_error_free (err);
  d.type = (char *)"c";
  d.access = (char *)"rwx";
  assert_true (sbx_cg_device_line (&d, 0, buf, sizeof buf, NULL) < 0);
}

static void
test_unified_keys (void **state)
{
  (void)state;
  assert_int_equal (sbx_cg_check_unified_key ("memory.high", NULL), 0);
  assert_int_equal (sbx_cg_check_unified_key ("hugetlb.2MB.max", NULL), 0);
  assert_int_equal (sbx_cg_check_unified_key ("cgroup.max.depth", NULL), 0);
  assert_true (sbx_cg_check_unified_key ("../memory.max", NULL) < 0);
  assert_true (sbx_cg_check_unified_key ("a/memory.max", NULL) < 0);
  assert_true (sbx_cg_check_unified_key ("memory..max", NULL) < 0);
  assert_true (sbx_cg_check_unified_key ("", NULL) < 0);
  assert_true (sbx_cg_check_unified_key ("nodot", NULL) < 0);
  assert_true (sbx_cg_check_unified_key ("cgroup.procs", NULL) < 0);
  assert_true (sbx_cg_check_unified_key ("cgroup.subtree_control", NULL) < 0);
}

static void
test_has_word (void **state)
{
  (void)state;
  assert_true (sbx_cg_has_word ("cpu,cpuacct", "cpu"));
  assert_true (sbx_cg_has_word ("cpu,cpuacct", "cpuacct"));
  assert_false (sbx_cg_has_word ("cpuacct", "cpu"));
  assert_true (sbx_cg_has_word ("cpuset cpu io memory\n", "memory"));
  assert_false (sbx_cg_has_word ("cpuset cpu", ""));
  assert_false (sbx_cg_has_word (NULL, "cpu"));
  assert_true (sbx_cg_valid_page_size ("2MB"));
  assert_true (sbx_cg_valid_page_size ("64KB"));
  assert_false (sbx_cg_valid_page_size ("MB"));
  assert_false (sbx_cg_valid_page_size ("2MB/../x"));
}

static void
test_describe_load (void **state)
{
  static const char saved[] = "sbxrun-cgroup 1 v1\n"
                              "c\tmemory\t/nonexistent/memory\t/\t/process_api/be77/sbxrun/c1\n"
                              "c\tcpu,cpuacct\t/nonexistent/cpu\t/\t/sbxrun/c1\n"
                              "u\t\t/nonexistent/unified\t/\t/sbxrun/c1\n";
  sbx_cgroup *cg = NULL;
  sbx_error *err = NULL;
  cleanup_free char *again = NULL;
  (void)state;

  assert_int_equal (sbx_cgroup_load (saved, &cg, NULL), 0);
  assert_int_equal (cg->mode, SBX_CGROUP_V1);
  assert_string_equal (sbx_cgroup_path (cg), "/process_api/be77/sbxrun/c1");
  assert_string_equal (sbx_cgroup_controller_path (cg, "cpuacct"), "/sbxrun/c1");
  assert_string_equal (sbx_cgroup_controller_path (cg, ""), "/sbxrun/c1");
  assert_null (sbx_cgroup_controller_path (cg, "pids"));
  assert_int_equal (sbx_cgroup_dirfd (cg), -1);
  assert_false (sbx_cgroup_is_frozen (cg));            /* gone: not frozen, no crash */
  assert_int_equal (sbx_cgroup_destroy (cg, NULL), 0); /* gone: success */
  again = sbx_cgroup_describe (cg);
  assert_string_equal (again, saved);
  sbx_cgroup_free (cg);

  assert_true (sbx_cgroup_load ("nonsense", &cg, &err) < 0);
  sbx_error_free (err);
  err = NULL;
  assert_true (sbx_cgroup_load ("sbxrun-cgroup 1 v2\nc\tmemory\n", &cg, &err) < 0);
  sbx_error_free (err);
}

/* Rootless on v1: the hierarchies left out survive describe/load
   (x/y lines with the errno) and name themselves in the refusals.  */
static void
test_left_out (void **state)
{
  static const char saved[] = "sbxrun-cgroup 1 v1\n"
                              "c\tpids\t/nonexistent/pids\t/\t/d/ctr\n"
                              "x\tfreezer\t/nonexistent/freezer\t/\t/d/ctr\t13\n"
                              "y\t\t/nonexistent/unified\t/\t/d/ctr\t13\n";
  sbx_cgroup *cg = NULL;
  sbx_error *err = NULL;
  cleanup_free char *again = NULL, *left = NULL;
  (void)state;

  assert_int_equal (sbx_cgroup_load (saved, &cg, NULL), 0);
  assert_int_equal (cg->n, 1);
  assert_int_equal (cg->nleft, 2);
  again = sbx_cgroup_describe (cg);
  assert_string_equal (again, saved);
  left = sbx_cgroup_left_out (cg);
  assert_non_null (strstr (left, "freezer, unified (cgroup2) (`/nonexistent/freezer/d/ctr`: "));
  assert_non_null (strstr (left, "cannot be paused"));
  assert_true (sbx_cgroup_freeze (cg, true, &err) < 0);
  assert_int_equal (err->errno_, EACCES);
  assert_non_null (strstr (err->msg, "no cgroup in the freezer hierarchy"));
  sbx_error_free (err);
  err = NULL;
  assert_null (sbx_cgroup_controller_path (cg, "freezer"));
  sbx_cgroup_free (cg);
  assert_true (sbx_cgroup_load ("sbxrun-cgroup 1 v1\nx\tfreezer\t/x\t/\t/a\n", &cg, &err) < 0);
  sbx_error_free (err);
}

/* A parent the create made (parent-ours) survives describe/load, and a
   pod member shares it with its sandbox only for the same parent.  */
static void
test_parent_ours (void **state)
{
  static const char sandbox[] = "sbxrun-cgroup 1 v1\n"
                                "c\tmemory\t/nonexistent/memory\t/\t/t/pod1/sb\tparent-ours\n"
                                "c\tcpu,cpuacct\t/nonexistent/cpu\t/\t/t/pod1/sb\n"
                                "u\t\t/nonexistent/unified\t/\t/t/pod1/sb\tparent-ours\n";
  static const char member[] = "sbxrun-cgroup 1 v1\n"
                               "c\tmemory\t/nonexistent/memory\t/\t/t/pod1/app\n"
                               "c\tcpu,cpuacct\t/nonexistent/cpu\t/\t/t/pod1/app\n"
                               "u\t\t/nonexistent/unified\t/\t/t/pod2/app\n";
  static const char shared[] = "sbxrun-cgroup 1 v1\n"
                               "c\tmemory\t/nonexistent/memory\t/\t/t/pod1/app\tparent-ours\n"
                               "c\tcpu,cpuacct\t/nonexistent/cpu\t/\t/t/pod1/app\n"
                               "u\t\t/nonexistent/unified\t/\t/t/pod2/app\n";
  sbx_cgroup *cg = NULL;
  sbx_error *err = NULL;
  cleanup_free char *again = NULL, *after = NULL;
  (void)state;

  assert_int_equal (sbx_cgroup_load (sandbox, &cg, NULL), 0);
  again = sbx_cgroup_describe (cg);
  assert_string_equal (again, sandbox);
  assert_int_equal (sbx_cgroup_destroy (cg, NULL), 0); /* gone: the parent too, no error */
  sbx_cgroup_free (cg);
  assert_int_equal (sbx_cgroup_load (member, &cg, NULL), 0);
  sbx_cgroup_share_parent (cg, sandbox);
  after = sbx_cgroup_describe (cg);
  assert_string_equal (after, shared); /* memory only: not cpu (not the sandbox's), not pod2 */
  sbx_cgroup_share_parent (cg, "nonsense");
  sbx_cgroup_free (cg);
  assert_true (sbx_cgroup_load ("sbxrun-cgroup 1 v2\nu\t\t/x\t/\t/a/b\tours\n", &cg, &err) < 0);
  sbx_error_free (err);
}

/* Kubernetes pods with the systemd driver: the pod's cgroup, to which a
   sandbox's egress policy is scoped (egress/lifecycle.c: the parent of the
   sandbox's unified directory, one level up), is the pod's slice, and the
   pod's other containers are inside it.  */
static void
test_systemd_pod_scope (void **state)
{
  static const struct
  {
    const char *sandbox, *member, *scope;
    int level;
  } cases[] = {
    { "kubepods-besteffort-pod4141e535_b1ad_4276_852c_69eb193d5eee.slice:cri-containerd:sb1",
      "kubepods-besteffort-pod4141e535_b1ad_4276_852c_69eb193d5eee.slice:cri-containerd:app1",
      "/u/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod4141e535_b1ad_4276_852c_69eb193d5eee.slice",
      3 },
    { "kubepods-burstable-podab.slice:crio:sb2", "kubepods-burstable-podab.slice:crio:app2",
      "/u/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podab.slice", 3 },
    { "kubepods-podcd.slice:cri-containerd:sb3", "kubepods-podcd.slice:cri-containerd:app3",
      "/u/kubepods.slice/kubepods-podcd.slice", 2 }, /* Guaranteed */
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      char *dirs[2] = { NULL, NULL };
      cleanup_free char *scope = NULL;
      int levels[2] = { 0, 0 };
      const char *cp[2] = { cases[i].sandbox, cases[i].member };
      for (int k = 0; k < 2; k++)
        {
          cleanup_free char *slice = NULL, *unit = NULL, *path = NULL, *saved = NULL;
          sbx_cgroup *cg = NULL;
          sbx_error *err = NULL;
          const char *d;
          assert_int_equal (sbx_cg_systemd_parse (cp[k], "x", &slice, &unit, &err), 0);
          assert_int_equal (sbx_cg_systemd_unit_path (slice, unit, &path, &err), 0);
          saved = xasprintf ("sbxrun-cgroup 1 v1 %s\nu\t\t/u\t/\t%s\n", unit, path);
          assert_int_equal (sbx_cgroup_load (saved, &cg, &err), 0);
          d = sbx_cgroup_unified_dir (cg, &levels[k]);
          assert_non_null (d);
          dirs[k] = xstrdup (d);
          sbx_cgroup_free (cg);
        }
      assert_non_null (strstr (dirs[0], ".scope"));
      scope = sbx_net_pod_scope (dirs[0]);
      assert_string_equal (scope, cases[i].scope);
      assert_int_equal (levels[0] - 1, cases[i].level);
      assert_true (sbx_net_cgroup_within (dirs[1], scope));
      assert_true (sbx_net_cgroup_within (dirs[0], scope));
      free (dirs[0]);
      free (dirs[1]);
    }
  /* a member of another pod is outside */
  assert_false (sbx_net_cgroup_within ("/u/kubepods.slice/kubepods-podce.slice/x.scope",
                                       "/u/kubepods.slice/kubepods-podc"));
}

static void
test_systemd_error (void **state)
{
  sbx_cgroup *cg = NULL;
  sbx_error *err = NULL;
  (void)state;

  assert_true (sbx_cgroup_plan ("c1", "system.slice:sbxrun:c1", false, false, &cg, &err) < 0);
  assert_string_equal (err->msg,
                       "linux.cgroupsPath `system.slice:sbxrun:c1` is systemd's slice:prefix:name: it needs "
                       "--systemd-cgroup");
  sbx_error_free (err);
  err = NULL;
  assert_true (sbx_cgroup_plan ("c1", "a:b", true, false, &cg, &err) < 0);
  assert_non_null (strstr (err->msg, "`a:b` is not of the form slice:prefix:name"));
  sbx_error_free (err);
  assert_null (cg);
}

static void
expect_unit (const char *p, const char *slice, const char *unit)
{
  char *s = NULL, *u = NULL;
  sbx_error *err = NULL;
  if (sbx_cg_systemd_parse (p, "c1", &s, &u, &err) < 0)
    fail_msg ("%s: %s", p ? p : "(null)", err->msg);
  assert_string_equal (s, slice);
  assert_string_equal (u, unit);
  free (s);
  free (u);
}

static void
expect_unit_error (const char *p, const char *needle)
{
  char *s = NULL, *u = NULL;
  sbx_error *err = NULL;
  assert_true (sbx_cg_systemd_parse (p, "c1", &s, &u, &err) < 0);
  if (strstr (err->msg, needle) == NULL)
    fail_msg ("error `%s` lacks `%s`", err->msg, needle);
  sbx_error_free (err);
}

static void
expect_slice (const char *slice, const char *path)
{
  char *out = NULL;
  sbx_error *err = NULL;
  if (sbx_cg_systemd_expand_slice (slice, &out, &err) < 0)
    fail_msg ("%s: %s", slice, err->msg);
  assert_string_equal (out, path);
  free (out);
}

/* Rootless --systemd-cgroup: the user manager's cgroup recognized in a
   path (for the bus of a loaded cgroup) and the unit planned below it, in
   user.slice unless the config names a slice.  */
static void
test_systemd_user (void **state)
{
  cleanup_free char *root = sbx_cg_systemd_user_root ();
  char want[128];
  (void)state;

  assert_true (
      sbx_cg_systemd_in_user_manager ("/user.slice/user-1000.slice/user@1000.service/user.slice/x.scope"));
  assert_false (sbx_cg_systemd_in_user_manager ("/user.slice/user-1000.slice/session-2.scope"));
  assert_false (sbx_cg_systemd_in_user_manager ("/system.slice/user@1000.service/x.scope"));
  assert_false (sbx_cg_systemd_in_user_manager ("/user.slice/user@.service"));
  assert_false (sbx_cg_systemd_in_user_manager (NULL));
  {
    /* where the kernel's common-ancestor rule looks (must_place) */
    static const char *const anc[][3]
        = { { "/user.slice/user-1000.slice/session-2.scope",
              "/user.slice/user-1000.slice/user@1000.service/user.slice/x.scope",
              "/user.slice/user-1000.slice" },
            { "/system.slice/a.service", "/user.slice/user-1000.slice/user@1000.service/x.scope", "/" },
            { "/user.slice/user-1000.slice/user@1000.service/app.slice/t.scope",
              "/user.slice/user-1000.slice/user@1000.service/user.slice/x.scope",
              "/user.slice/user-1000.slice/user@1000.service" },
            { "/a/bc", "/a/b", "/a" },
            { "/a/b", "/a/b/c", "/a/b" },
            { "/a", "/a", "/a" } };
    for (size_t i = 0; i < sizeof anc / sizeof *anc; i++)
      {
        cleanup_free char *got = sbx_cg_common_ancestor (anc[i][0], anc[i][1]);
        assert_string_equal (got, anc[i][2]);
      }
  }
  snprintf (want, sizeof want, "/user.slice/user-%u.slice/user@%u.service", geteuid (), geteuid ());
  assert_string_equal (root, want); /* not in a user namespace here: the same uid */
#ifdef HAVE_SYSTEMD
  {
    static const char *const cases[][2] = { { "user.slice:libpod:abc", "/user.slice/libpod-abc.scope" },
                                            { NULL, "/user.slice/sbxrun-c1.scope" },
                                            { ":p:n", "/user.slice/p-n.scope" },
                                            { "app.slice:p:n", "/app.slice/p-n.scope" } };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
      {
        sbx_cgroup *cg = NULL;
        cleanup_free char *full = xasprintf ("%s%s", root, cases[i][1]);
        assert_int_equal (sbx_cgroup_plan ("c1", cases[i][0], true, true, &cg, NULL), 0);
        assert_string_equal (cg->unit_path, full);
        assert_true (cg->user_bus);
        sbx_cgroup_free (cg);
      }
  }
#endif
}

static void
test_systemd_parse (void **state)
{
  (void)state;
  expect_unit ("machine.slice:libpod:abc", "machine.slice", "libpod-abc.scope");
  expect_unit (":sbx:abc", "system.slice", "sbx-abc.scope");
  expect_unit (NULL, "system.slice", "sbxrun-c1.scope");
  expect_unit ("", "system.slice", "sbxrun-c1.scope");
  expect_unit ("kubepods-besteffort-pod1.slice:cri-containerd:x1", "kubepods-besteffort-pod1.slice",
               "cri-containerd-x1.scope");
  expect_unit ("machine.slice:p:inner.slice", "machine.slice", "inner.slice");
  expect_unit_error ("machine.slice:libpod", "not of the form slice:prefix:name");
  expect_unit_error ("a:b:c:d", "not of the form slice:prefix:name");
  expect_unit_error ("/a/b", "not of the form");
  expect_unit_error ("a/b.slice:p:n", "no `/`");
  expect_unit_error ("machine.slice:p:", "a name");
  expect_unit_error ("machine:p:n", "invalid slice name `machine`");
  expect_unit_error ("a--b.slice:p:n", "invalid slice name `a--b.slice`");
  expect_unit_error ("-a.slice:p:n", "invalid slice name");
  expect_slice ("-.slice", "");
  expect_slice ("system.slice", "/system.slice");
  expect_slice ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice");
  expect_slice ("kubepods-besteffort-pod1.slice",
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice");
}

static void
test_parse_size (void **state)
{
  int64_t v;
  (void)state;
  assert_int_equal (sbx_parse_size ("1024", &v, NULL), 0);
  assert_int_equal (v, 1024);
  assert_int_equal (sbx_parse_size ("512k", &v, NULL), 0);
  assert_int_equal (v, 512 * 1024);
  assert_int_equal (sbx_parse_size ("64M", &v, NULL), 0);
  assert_int_equal (v, 64 << 20);
  assert_int_equal (sbx_parse_size ("1.5g", &v, NULL), 0);
  assert_int_equal (v, 3LL << 29);
  assert_int_equal (sbx_parse_size ("2 GiB", &v, NULL), 0);
  assert_int_equal (v, 2LL << 30);
  assert_int_equal (sbx_parse_size ("10mb", &v, NULL), 0);
  assert_int_equal (v, 10 << 20);
  assert_int_equal (sbx_parse_size ("7b", &v, NULL), 0);
  assert_int_equal (v, 7);
  assert_int_equal (sbx_parse_size ("-1", &v, NULL), 0);
  assert_int_equal (v, -1);
  assert_true (sbx_parse_size ("", &v, NULL) < 0);
  assert_true (sbx_parse_size ("-2", &v, NULL) < 0);
  assert_true (sbx_parse_size ("12x", &v, NULL) < 0);
  assert_true (sbx_parse_size ("m", &v, NULL) < 0);
  assert_true (sbx_parse_size ("1ki", &v, NULL) < 0);
  assert_true (sbx_parse_size ("99999999p", &v, NULL) < 0);
}

static void
test_join_below (void **state)
{
  static const struct
  {
    const char *base, *sub, *want; /* want NULL: refused */
  } cases[] = {
    { "/a/b", "sub", "/a/b/sub" },
    { "/a/b", "/sub", "/a/b/sub" },
    { "/a/b", "/", "/a/b" },
    { "/a/b", "", "/a/b" },
    { "/a/b", "x/./y//z/", "/a/b/x/y/z" },
    { "/a/b", "x/../y", "/a/b/y" },
    { "/a/b", "../b/c", "/a/b/c" },
    { "/a/b/", "c", "/a/b/c" },
    { "/a/b", "..", NULL },
    { "/a/b", "../..", NULL },
    { "/a/b", "../bc", NULL },
    { "/a/b", "x/../../b2", NULL },
    { "/a/b", "../../../../etc", NULL },
    { "/", "x/..", "" },
    { "/", "../x", "/x" },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *got = sbx_cg_join_below (cases[i].base, cases[i].sub);
      if (cases[i].want == NULL)
        assert_null (got);
      else
        {
          assert_non_null (got);
          assert_string_equal (got, cases[i].want);
        }
      free (got);
    }
}

static void
test_parse_duration (void **state)
{
  long long ms;
  (void)state;
  assert_int_equal (sbx_parse_duration_ms ("5s", &ms, NULL), 0);
  assert_int_equal (ms, 5000);
  assert_int_equal (sbx_parse_duration_ms ("250ms", &ms, NULL), 0);
  assert_int_equal (ms, 250);
  assert_int_equal (sbx_parse_duration_ms ("1m30s", &ms, NULL), 0);
  assert_int_equal (ms, 90000);
  assert_int_equal (sbx_parse_duration_ms ("1.5h", &ms, NULL), 0);
  assert_int_equal (ms, 5400000);
  assert_int_equal (sbx_parse_duration_ms ("2", &ms, NULL), 0);
  assert_int_equal (ms, 2000);
  assert_int_equal (sbx_parse_duration_ms ("0", &ms, NULL), 0);
  assert_int_equal (ms, 0);
  assert_int_equal (sbx_parse_duration_ms ("1500us", &ms, NULL), 0);
  assert_int_equal (ms, 2);
  assert_true (sbx_parse_duration_ms ("", &ms, NULL) < 0);
  assert_true (sbx_parse_duration_ms ("5x", &ms, NULL) < 0);
  assert_true (sbx_parse_duration_ms ("s", &ms, NULL) < 0);
  assert_true (sbx_parse_duration_ms ("-1s", &ms, NULL) < 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_hybrid_discovery), cmocka_unit_test (test_combined_and_unmounted),
    cmocka_unit_test (test_v2_discovery),     cmocka_unit_test (test_resolve_path),
    cmocka_unit_test (test_dir_for),          cmocka_unit_test (test_shares_to_weight),
    cmocka_unit_test (test_blkio_weight),     cmocka_unit_test (test_swap_v2),
    cmocka_unit_test (test_device_lines),     cmocka_unit_test (test_unified_keys),
    cmocka_unit_test (test_has_word),         cmocka_unit_test (test_describe_load),
    cmocka_unit_test (test_parent_ours),      cmocka_unit_test (test_systemd_pod_scope),
    cmocka_unit_test (test_systemd_error),    cmocka_unit_test (test_systemd_parse),
    cmocka_unit_test (test_parse_size),       cmocka_unit_test (test_parse_duration),
    cmocka_unit_test (test_join_below),       cmocka_unit_test (test_left_out),
    cmocka_unit_test (test_systemd_user),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
