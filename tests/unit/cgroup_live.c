/* cgroup_live.c - the cgroup manager against the real host (root only; exit
 * 77 = skipped otherwise).
 *
 * Everything is created below the test's own cgroups: a parent
 * "sbxrun-test-<pid>" (relative cgroupsPath, so below our own cgroup in each
 * hierarchy) and the container cgroup "sbxrun-test-<pid>/ctr".  Checks:
 * memory limit 64M + pids limit 10 land in the files, a forked child shows
 * the cgroup in /proc/<pid>/cgroup, freeze stops a busy loop (utime stands
 * still) and thaw resumes it, kill empties the cgroup, destroy of a frozen
 * cgroup works, describe/load round trip, and at the end nothing is left.
 * Works on v1/hybrid and on pure v2 hosts (e.g. in the in-vm.sh guest).  */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"
#include "core/core.h"

static int failures;

#define CHECK(cond, ...)                                                                                     \
  do                                                                                                         \
    {                                                                                                        \
      if (cond)                                                                                              \
        printf ("ok - ");                                                                                    \
      else                                                                                                   \
        {                                                                                                    \
          printf ("not ok - ");                                                                              \
          failures++;                                                                                        \
        }                                                                                                    \
      printf (__VA_ARGS__);                                                                                  \
      printf ("\n");                                                                                         \
      fflush (stdout);                                                                                       \
    }                                                                                                        \
  while (0)

static void
report (const char *what, sbx_error *err)
{
  cleanup_free char *t = sbx_error_text (err);
  printf ("not ok - %s: %s\n", what, t);
  failures++;
}

static pid_t
spawn_busy (void)
{
  pid_t p = fork ();
  if (p == 0)
    {
      volatile unsigned long x = 0;
      signal (SIGTERM, SIG_IGN); /* only SIGKILL (and destroy) end it */
      for (;;)
        x++;
    }
  return p;
}

static unsigned long long
utime_of (pid_t pid)
{
  char path[64];
  cleanup_free char *s = NULL;
  unsigned long long ut = 0;
  char *p;

  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  if (sbx_read_file (path, 0, &s, NULL, NULL) < 0 || (p = strrchr (s, ')')) == NULL)
    return 0;
  /* after "pid (comm)": state(3) ... utime is field 14 */
  if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu", &ut) != 1)
    return 0;
  return ut;
}

/* Is the process in cgroup cg in every hierarchy?  */
static bool
proc_in (pid_t pid, sbx_cgroup *cg)
{
  char path[64];
  cleanup_free char *s = NULL;

  snprintf (path, sizeof path, "/proc/%d/cgroup", (int)pid);
  if (sbx_read_file (path, 0, &s, NULL, NULL) < 0)
    return false;
  for (size_t i = 0; i < cg->n; i++)
    {
      cleanup_free char *want = xasprintf (":%s:%s\n", cg->h[i].controllers, cg->h[i].path);
      if (strstr (s, want) == NULL)
        {
          printf ("# /proc/%d/cgroup lacks `%s`:\n%s", (int)pid, want, s);
          return false;
        }
    }
  return true;
}

static char *
limit_file (sbx_cgroup *cg, const char *v1ctrl, const char *v1file, const char *v2file)
{
  sbx_cg_hier *h = cg->mode == SBX_CGROUP_V2 ? &cg->h[0] : sbx_cg_find_v1 (cg, v1ctrl);
  char *s = NULL;
  if (h == NULL || sbx_cg_read (h, cg->mode == SBX_CGROUP_V2 ? v2file : v1file, &s, NULL) < 0)
    return xstrdup ("(unreadable)");
  return s;
}

static char *
read_in (sbx_cg_hier *h, const char *file)
{
  char *s = NULL;
  if (h == NULL || sbx_cg_read (h, file, &s, NULL) < 0)
    return xstrdup ("(unreadable)");
  return s;
}

/* cpu, cpuset, hugetlb (in the unified hierarchy on hybrid hosts), devices,
   unified keys, and the error format.  */
static void
more_resources (sbx_cgroup *cg)
{
  bool v2 = cg->mode == SBX_CGROUP_V2;
  bool huge = access ("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0;
  sbx_cg_hier *hh = sbx_cg_find (cg, "hugetlb");
  oci_cpu cpu = { 0 };
  oci_hugepage_limit hl = { 0 };
  oci_hugepage_limit *hls[] = { &hl };
  oci_device_cgroup d0 = { 0 }, d1 = { 0 };
  oci_device_cgroup *devs[] = { &d0, &d1 };
  char *ukeys[] = { (char *)(v2 ? "pids.max" : "hugetlb.2MB.max") };
  char *uvals[] = { (char *)(v2 ? "20" : "6291456") };
  oci_resources r = { 0 };
  sbx_error *err = NULL;

  cpu.has_shares = true;
  cpu.shares = 512;
  cpu.has_quota = cpu.has_period = true;
  cpu.quota = 50000;
  cpu.period = 100000;
  cpu.cpus = (char *)"0";
  cpu.mems = (char *)"0";
  r.cpu = &cpu;
  hl.page_size = (char *)"2MB";
  hl.limit = 4 << 20;
  if (huge && hh)
    {
      r.hugepage_limits = hls;
      r.hugepage_limits_len = 1;
    }
  d0.allow = false;
  d0.access = (char *)"rwm";
  d1.allow = true;
  d1.type = (char *)"c";
  d1.has_major = d1.has_minor = true;
  d1.major = 1;
  d1.minor = 3;
  d1.access = (char *)"rwm";
  r.devices = devs;
  r.devices_len = 2;
  if (v2 || (huge && hh && hh->unified))
    {
      r.unified_keys = ukeys;
      r.unified_values = uvals;
      r.unified_len = 1;
    }
  if (sbx_cgroup_apply (cg, &r, &err) < 0)
    {
      report ("apply cpu/cpuset/hugetlb/devices/unified", err);
      return;
    }
  if (v2)
    {
      cleanup_free char *w = read_in (&cg->h[0], "cpu.weight");
      cleanup_free char *m = read_in (&cg->h[0], "cpu.max");
      cleanup_free char *c = read_in (&cg->h[0], "cpuset.cpus");
      cleanup_free char *p = read_in (&cg->h[0], "pids.max");
      CHECK (strcmp (w, "59") == 0, "v2: shares 512 -> cpu.weight %s", w);
      CHECK (strcmp (m, "50000 100000") == 0, "v2: cpu.max = %s", m);
      CHECK (strcmp (c, "0") == 0, "v2: cpuset.cpus = %s", c);
      CHECK (strcmp (p, "20") == 0, "v2: unified pids.max overrides pids.limit: %s", p);
    }
  else
    {
      cleanup_free char *w = read_in (sbx_cg_find_v1 (cg, "cpu"), "cpu.shares");
      cleanup_free char *q = read_in (sbx_cg_find_v1 (cg, "cpu"), "cpu.cfs_quota_us");
      cleanup_free char *c = read_in (sbx_cg_find_v1 (cg, "cpuset"), "cpuset.cpus");
      cleanup_free char *dl = read_in (sbx_cg_find_v1 (cg, "devices"), "devices.list");
      CHECK (strcmp (w, "512") == 0, "v1: cpu.shares = %s", w);
      CHECK (strcmp (q, "50000") == 0, "v1: cpu.cfs_quota_us = %s", q);
      CHECK (strcmp (c, "0") == 0, "v1: cpuset.cpus = %s", c);
      CHECK (strcmp (dl, "c 1:3 rwm") == 0, "v1: devices.list = %s", dl);
    }
  if (huge && hh)
    {
      cleanup_free char *l = read_in (hh, hh->unified ? "hugetlb.2MB.max" : "hugetlb.2MB.limit_in_bytes");
      const char *want = r.unified_len && !v2 ? "6291456" : "4194304";
      CHECK (strcmp (l, want) == 0, "hugetlb 2MB limit (%s hierarchy) = %s", hh->unified ? "unified" : "v1",
             l);
    }
  else
    printf ("# no 2MB huge pages or hugetlb controller: hugetlb not tested\n");

  /* errors name the field, the file and the value */
  cpu = (oci_cpu){ 0 };
  cpu.cpus = (char *)"4095";
  r = (oci_resources){ 0 };
  r.cpu = &cpu;
  if (sbx_cgroup_apply (cg, &r, &err) == 0)
    CHECK (0, "cpus 4095 accepted?");
  else
    {
      cleanup_free char *t = sbx_error_text (err);
      CHECK (sbx_has_prefix (t, "linux.resources.cpu.cpus: write cpuset.cpus = 4095: "), "error text: %s", t);
      sbx_error_free (err);
    }
}

/* v2: clone3 (CLONE_INTO_CGROUP) with the manager's O_PATH dirfd, as the
   runtime starts container processes.  */
static void
clone_into (sbx_cgroup *cg)
{
  struct clone_args ca = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD };
  pid_t p;

  if (sbx_cgroup_dirfd (cg) < 0)
    {
      printf ("# no dirfd (v1 host): CLONE_INTO_CGROUP not tested\n");
      return;
    }
  ca.cgroup = (uint64_t)sbx_cgroup_dirfd (cg);
  p = syscall (SYS_clone3, &ca, sizeof ca);
  if (p == 0)
    {
      pause ();
      _exit (0);
    }
  CHECK (p > 0, "clone3 CLONE_INTO_CGROUP with the O_PATH dirfd (%s)", p > 0 ? "ok" : strerror (errno));
  if (p <= 0)
    return;
  CHECK (proc_in (p, cg), "clone3 child %d started in the cgroup", (int)p);
  kill (p, SIGKILL);
  waitpid (p, NULL, 0);
}

/* Enabling controllers for our cgroups writes cgroup.subtree_control of our
   own v2 cgroup (on this kind of hybrid host: the unified root).  Remember
   it, to disable at the end what the test turned on.  */
static char *
own_subtree_control (sbx_cgroup *cg, char **where)
{
  sbx_cg_hier *u = sbx_cg_unified (cg);
  char *s = NULL;
  *where = NULL;
  if (u == NULL || sbx_cg_dir_for (u->mountpoint, u->mount_root, u->own, where, NULL) < 0)
    return NULL;
  {
    cleanup_free char *f = xasprintf ("%s/cgroup.subtree_control", *where);
    if (sbx_read_file (f, 0, &s, NULL, NULL) < 0)
      return NULL;
  }
  return s;
}

static void
restore_subtree_control (const char *dir, const char *before)
{
  cleanup_free char *f = NULL, *now = NULL, *copy = NULL;
  char *save = NULL;

  if (dir == NULL || before == NULL)
    return;
  f = xasprintf ("%s/cgroup.subtree_control", dir);
  if (sbx_read_file (f, 0, &now, NULL, NULL) < 0)
    return;
  copy = xstrdup (now);
  for (char *c = strtok_r (copy, " \n", &save); c; c = strtok_r (NULL, " \n", &save))
    if (!sbx_cg_has_word (before, c))
      {
        cleanup_free char *cmd = xasprintf ("-%s", c);
        FILE *fp = fopen (f, "w");
        bool ok = fp && fputs (cmd, fp) >= 0;
        if (fp && fclose (fp) != 0)
          ok = false;
        CHECK (ok, "restored %s: disabled %s again", f, c);
      }
}

static bool
all_gone (sbx_cgroup *cg)
{
  bool ok = true;
  for (size_t i = 0; i < cg->n; i++)
    if (access (cg->h[i].dir, F_OK) == 0 || errno != ENOENT)
      {
        printf ("# still there: %s\n", cg->h[i].dir);
        ok = false;
      }
  return ok;
}

static int
reap (pid_t p)
{
  int st = 0;
  if (p <= 0 || waitpid (p, &st, 0) != p)
    return -1;
  return WIFSIGNALED (st) ? WTERMSIG (st) : 0;
}

/* plan then make, as create does (without recording anything between).  */
static int
create_cgroup (const char *id, const char *path, bool systemd, sbx_cgroup **out, sbx_error **err)
{
  sbx_cgroup *cg = NULL;
  if (sbx_cgroup_plan (id, path, systemd, false, &cg, err) < 0 || sbx_cgroup_make (cg, err) < 0)
    {
      sbx_cgroup_free (cg);
      return -1;
    }
  *out = cg;
  return 0;
}

int
main (void)
{
  cleanup_free char *ppath = NULL, *cpath = NULL, *saved = NULL, *own_dir = NULL, *own_stc = NULL;
  sbx_cgroup *parent = NULL, *cg = NULL, *loaded = NULL;
  sbx_error *err = NULL;
  pid_t busy = -1, idle = -1;
  oci_memory mem = { 0 };
  oci_pids pids = { 0 };
  oci_resources res = { 0 };
  sbx_cgroup_mode mode;
  int lock_fd;

  if (geteuid () != 0)
    {
      printf ("# SKIP cgroup_live: needs root\n");
      return 77;
    }
  mode = sbx_cgroup_host_mode ();
  if (mode == SBX_CGROUP_NONE)
    {
      printf ("# SKIP cgroup_live: no cgroup file system\n");
      return 77;
    }
  printf ("# host mode: %s\n", mode == SBX_CGROUP_V2 ? "cgroup v2" : "cgroup v1/hybrid");
  /* One instance at a time (parallel `make check` runs in several trees):
     the snapshot/restore of our own cgroup.subtree_control must not
     interleave with another instance's.  Held until exit.  */
  lock_fd = open ("/tmp/sbxrun-cgroup-live.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd >= 0)
    while (flock (lock_fd, LOCK_EX) < 0 && errno == EINTR)
      ;
  ppath = xasprintf ("sbxrun-test-%d", (int)getpid ());
  cpath = xasprintf ("%s/ctr", ppath);

  if (create_cgroup ("parent", ppath, false, &parent, &err) < 0)
    {
      report ("create parent", err);
      return 1;
    }
  own_stc = own_subtree_control (parent, &own_dir);
  if (create_cgroup ("ctr", cpath, false, &cg, &err) < 0)
    {
      report ("create ctr", err);
      goto out;
    }
  for (size_t i = 0; i < cg->n; i++)
    printf ("# %s%s -> %s\n", cg->h[i].unified ? "unified" : cg->h[i].controllers, "", cg->h[i].dir);
  CHECK (sbx_cgroup_dirfd (cg) >= 0 || mode != SBX_CGROUP_V2, "dirfd for CLONE_INTO_CGROUP on v2");

  mem.has_limit = true;
  mem.limit = 64 << 20;
  pids.has_limit = true;
  pids.limit = 10;
  res.memory = &mem;
  res.pids = &pids;
  if (sbx_cgroup_apply (cg, &res, &err) < 0)
    {
      report ("apply memory 64M + pids 10", err);
      err = NULL;
    }
  else
    {
      cleanup_free char *m = limit_file (cg, "memory", "memory.limit_in_bytes", "memory.max");
      cleanup_free char *p = limit_file (cg, "pids", "pids.max", "pids.max");
      CHECK (strcmp (m, "67108864") == 0, "memory limit file = %s", m);
      CHECK (strcmp (p, "10") == 0, "pids.max = %s", p);
    }

  more_resources (cg);
  clone_into (cg);

  busy = spawn_busy ();
  idle = fork ();
  if (idle == 0)
    {
      pause ();
      _exit (0);
    }
  if (busy < 0 || idle < 0)
    {
      CHECK (0, "fork");
      goto out;
    }
  if (sbx_cgroup_enter (cg, busy, &err) < 0 || sbx_cgroup_enter (cg, idle, &err) < 0)
    {
      report ("enter", err);
      err = NULL;
      goto out;
    }
  CHECK (proc_in (busy, cg), "child %d is in the cgroup in every hierarchy", (int)busy);
  {
    cleanup_free pid_t *v = NULL;
    size_t n = 0;
    if (sbx_cgroup_pids (cg, &v, &n, &err) < 0)
      report ("pids", err), err = NULL;
    else
      CHECK (n == 2 && ((v[0] == busy && v[1] == idle) || (v[0] == idle && v[1] == busy)),
             "pids lists the two children (%zu)", n);
  }

  /* freeze: the busy loop stops accumulating user time */
  usleep (200000); /* let it run up some utime first */
  if (sbx_cgroup_freeze (cg, true, &err) < 0)
    report ("freeze", err), err = NULL;
  else
    {
      unsigned long long a, b;
      CHECK (sbx_cgroup_is_frozen (cg), "is_frozen after freeze");
      a = utime_of (busy);
      usleep (300000);
      b = utime_of (busy);
      CHECK (a == b && a > 0, "frozen child's utime stands still (%llu -> %llu)", a, b);
      if (sbx_cgroup_freeze (cg, false, &err) < 0)
        report ("thaw", err), err = NULL;
      else
        {
          CHECK (!sbx_cgroup_is_frozen (cg), "not frozen after thaw");
          a = utime_of (busy);
          usleep (300000);
          b = utime_of (busy);
          CHECK (b > a, "thawed child's utime grows (%llu -> %llu)", a, b);
        }
    }

  {
    sbx_cgroup_stats st;
    if (sbx_cgroup_get_stats (cg, &st, &err) < 0)
      report ("stats", err), err = NULL;
    else
      CHECK (st.has_pids && st.pids_current == 2
                 && st.pids_limit == (cg->mode == SBX_CGROUP_V2 ? 20 : 10) /* v2: unified override */
                 && st.has_memory && st.memory_limit == (64u << 20),
             "stats: pids %llu/%llu, memory limit %llu, cpu %llu ns", (unsigned long long)st.pids_current,
             (unsigned long long)st.pids_limit, (unsigned long long)st.memory_limit,
             (unsigned long long)st.cpu_usage_ns);
  }

  /* a signal other than SIGKILL reaches every process */
  if (sbx_cgroup_kill (cg, SIGTERM, &err) < 0)
    report ("kill SIGTERM", err), err = NULL;
  CHECK (reap (idle) == SIGTERM, "SIGTERM delivered to the idle child");
  idle = -1;
  if (sbx_cgroup_kill (cg, SIGKILL, &err) < 0)
    report ("kill SIGKILL", err), err = NULL;
  {
    int sig = reap (busy);
    cleanup_free pid_t *v = NULL;
    size_t n = 99;
    busy = -1;
    CHECK (sig == SIGKILL, "busy child killed by SIGKILL (%d)", sig);
    if (sbx_cgroup_pids (cg, &v, &n, &err) < 0)
      report ("pids after kill", err), err = NULL;
    CHECK (n == 0, "cgroup empty after kill (%zu)", n);
  }

  /* destroy of a frozen, populated cgroup, through a re-loaded manager */
  busy = spawn_busy ();
  if (busy > 0 && sbx_cgroup_enter (cg, busy, &err) == 0 && sbx_cgroup_freeze (cg, true, &err) == 0)
    {
      saved = sbx_cgroup_describe (cg);
      if (sbx_cgroup_load (saved, &loaded, &err) < 0)
        report ("load", err), err = NULL;
      else
        {
          CHECK (sbx_cgroup_is_frozen (loaded), "re-loaded manager sees the frozen state");
          if (sbx_cgroup_destroy (loaded, &err) < 0)
            report ("destroy frozen cgroup", err), err = NULL;
          CHECK (reap (busy) == SIGKILL, "destroy killed the frozen child");
          busy = -1;
          CHECK (all_gone (cg), "ctr cgroup removed from every hierarchy");
        }
    }
  else if (err)
    report ("enter/freeze second child", err), err = NULL;

out:
  if (busy > 0)
    kill (busy, SIGKILL), reap (busy);
  if (idle > 0)
    kill (idle, SIGKILL), reap (idle);
  if (cg)
    {
      if (sbx_cgroup_destroy (cg, &err) < 0)
        report ("destroy ctr (again: already gone is success)", err), err = NULL;
      CHECK (all_gone (cg), "ctr cgroup gone");
    }
  if (sbx_cgroup_destroy (parent, &err) < 0)
    report ("destroy parent", err), err = NULL;
  CHECK (all_gone (parent), "parent cgroup gone from every hierarchy");
  restore_subtree_control (own_dir, own_stc);
  sbx_cgroup_free (loaded);
  sbx_cgroup_free (cg);
  sbx_cgroup_free (parent);
  printf ("# %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
