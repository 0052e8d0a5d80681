/* cgroup/v1.c - v1 controllers, one hierarchy per mount
 * (Documentation/admin-guide/cgroup-v1/), plus the unified hierarchy of
 * hybrid hosts.
 *
 * The cgroup is created in every mounted hierarchy, named ones
 * (name=systemd) and the unified one included, and processes are entered
 * into all of them.  New cpuset cgroups start with empty cpuset.cpus/mems,
 * which would refuse tasks: each level created gets its parent's values.
 * Controllers that the host only has in the unified hierarchy (hugetlb,
 * rdma here and there) are driven there with the v2 file names.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* The error for a controller whose hierarchy has no cgroup of the
   container: left out (rootless, not delegated) or not mounted.  */
static int
no_hier (sbx_cgroup *cg, const char *ctrl, const char *what, sbx_error **err)
{
  const sbx_cg_hier *l = sbx_cg_find_left (cg, ctrl);
  if (l)
    return sbx_error_set (err, l->refused,
                          "%s: the container has no cgroup in the %s hierarchy: an unprivileged caller may "
                          "not create `%s` there (not delegated to the user, see docs/rootless.md)",
                          what, l->controllers, l->dir);
  return sbx_error_set (err, EOPNOTSUPP, "%s: the %s controller is not mounted on this host", what, ctrl);
}

static sbx_cg_hier *
need_v1 (sbx_cgroup *cg, const char *ctrl, const char *field, sbx_error **err)
{
  sbx_cg_hier *h = sbx_cg_find_v1 (cg, ctrl);
  if (h == NULL)
    {
      cleanup_free char *what = xasprintf ("linux.resources.%s", field);
      no_hier (cg, ctrl, what, err);
    }
  return h;
}

/* Move a local error into the caller's.  */
static int
pass_error (sbx_error **err, sbx_error *e)
{
  int r = sbx_error_status (e);
  if (err)
    {
      sbx_error_free (*err);
      *err = e;
    }
  else
    sbx_error_free (e);
  return r;
}

/* ------------------------------------------------------------ creation */

/* Write TEXT into FILE of a cgroup directory given by path (a level above
   the container's, which has no fd of its own); -1 with errno.  */
static int
write_level (const char *dir, const char *file, const char *text)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  size_t n = strlen (text);
  return fd >= 0 && write (fd, text, n) == (ssize_t)n ? 0 : -1;
}

static int
cpuset_level (const char *parent, const char *dir, sbx_error **err)
{
  static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };

  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *mine = NULL, *theirs = NULL;
      cleanup_free char *mp = xasprintf ("%s/%s", dir, files[i]);
      cleanup_free char *pp = xasprintf ("%s/%s", parent, files[i]);

      if (sbx_read_file (mp, 0, &mine, NULL, err) < 0)
        return -1;
      if (strspn (mine, " \n") != strlen (mine))
        continue; /* already set */
      if (sbx_read_file (pp, 0, &theirs, NULL, err) < 0)
        return -1;
      if (write_level (dir, files[i], theirs) < 0)
        return sbx_error_sys (err, "initialize %s from the parent cgroup", mp);
    }
  return 0;
}

/* Rootless (partial_ok): move the hierarchies whose mkdir the kernel
   refused from cg->h to cg->left.  */
static void
leave_out_refused (sbx_cgroup *cg)
{
  size_t k = 0;
  cg->left = xmalloc0 (cg->n * sizeof *cg->left);
  for (size_t i = 0; i < cg->n; i++)
    {
      if (cg->h[i].refused)
        {
          sbx_debug ("cgroup: %s: `%s` not writable (%s): left out", cg->h[i].controllers, cg->h[i].dir,
                     strerror (cg->h[i].refused));
          cg->left[cg->nleft++] = cg->h[i];
          continue;
        }
      cg->h[k++] = cg->h[i];
    }
  cg->n = k;
}

static int
v1_create (sbx_cgroup *cg, sbx_error **err)
{
  cleanup_error sbx_error *refused = NULL;
  size_t nrefused = 0;
  for (size_t i = 0; i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      bool cpuset = !h->unified && sbx_cg_has_word (h->controllers, "cpuset");
      sbx_error *e = NULL;
      if (h->early)
        continue; /* sbx_cgroup_make_early */
      if (sbx_cg_mkdir (h, cpuset ? cpuset_level : NULL, &e) == 0)
        {
          /* Under --systemd-cgroup the scope's placeholder goes into what
             we made too: systemd removes the unit's empty directories in
             the hierarchies of controllers it supports but was not asked
             for (devices, when the rules are not its to say) whenever it
             realizes the unit again, e.g. for our SetUnitProperties before
             the init is in; a cgroup with a process in it stays.  */
          if (cg->hold <= 0 || sbx_cg_writef (h, "cgroup.procs", NULL, &e, "%d", (int)cg->hold) == 0)
            continue;
          sbx_cg_undo_create (cg);
          return pass_error (err, e);
        }
      /* runc's rule for rootless: a hierarchy where the cgroup may not be
         created (not delegated) is done without */
      if (cg->partial_ok && !h->created && (e->errno_ == EACCES || e->errno_ == EPERM || e->errno_ == EROFS))
        {
          h->refused = e->errno_;
          nrefused++;
          if (refused == NULL)
            refused = e;
          else
            sbx_error_free (e);
          continue;
        }
      sbx_cg_undo_create (cg);
      return pass_error (err, e);
    }
  if (nrefused == cg->n)
    return pass_error (err, steal_ptr (refused)); /* none: no cgroup at all */
  if (nrefused)
    leave_out_refused (cg);
  return 0;
}

/* ------------------------------------------------------------ resources */

int
sbx_cg_device_line (const oci_device_cgroup *d, size_t i, char *buf, size_t len, sbx_error **err)
{
  const char *type = d->type && *d->type ? d->type : "a";
  const char *access = d->access && *d->access ? d->access : "rwm";
  char maj[24] = "*", min[24] = "*";

  if (strlen (type) != 1 || strchr ("abc", type[0]) == NULL)
    return sbx_error_set (err, EINVAL, "linux.resources.devices[%zu].type: invalid `%s`", i, type);
  if (strlen (access) > 3 || strspn (access, "rwm") != strlen (access))
    return sbx_error_set (err, EINVAL, "linux.resources.devices[%zu].access: invalid `%s`", i, access);
  if (type[0] == 'a')
    {
      /* the kernel ignores everything after "a": all devices, all access */
      snprintf (buf, len, "a");
      return 0;
    }
  if (d->has_major && d->major >= 0)
    snprintf (maj, sizeof maj, "%lld", (long long)d->major);
  if (d->has_minor && d->minor >= 0)
    snprintf (min, sizeof min, "%lld", (long long)d->minor);
  snprintf (buf, len, "%c %s:%s %s", type[0], maj, min, access);
  return 0;
}

static bool
is_deny_all (const oci_device_cgroup *d)
{
  return !d->allow && (d->type == NULL || *d->type == '\0' || strcmp (d->type, "a") == 0);
}

static int
apply_devices (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  sbx_cg_hier *h = need_v1 (cg, "devices", "devices", err);
  char line[128];

  if (h == NULL)
    return -1;
  for (size_t i = 0; i < r->devices_len; i++) /* validate them all first */
    if (sbx_cg_device_line (r->devices[i], i, line, sizeof line, err) < 0)
      return -1;
  /* Start from "everything allowed" (what a new cgroup below an
     unrestricted parent has, and what an update must reset to), then apply
     the rules in order: the kernel's exception lists then give the
     semantics of cgroup.h (last match wins) for the usual lists, a deny-all
     first and allows after it.  A deny-all first rule is its own reset.  */
  if (!is_deny_all (r->devices[0]))
    {
      cleanup_error sbx_error *e = NULL;
      if (sbx_cg_write (h, "devices.allow", "a", "devices", &e) < 0)
        sbx_debug ("cgroup v1: cannot reset the device rules to allow-all (restricted parent?): %s", e->msg);
    }
  for (size_t i = 0; i < r->devices_len; i++)
    {
      cleanup_free char *field = xasprintf ("devices[%zu]", i);
      sbx_cg_device_line (r->devices[i], i, line, sizeof line, NULL);
      if (sbx_cg_write (h, r->devices[i]->allow ? "devices.allow" : "devices.deny", line, field, err) < 0)
        return -1;
    }
  return 0;
}

static int
write_i64 (sbx_cg_hier *h, const char *file, int64_t v, const char *field, sbx_error **err)
{
  return sbx_cg_writef (h, file, field, err, "%" PRId64, v < 0 ? (int64_t)-1 : v);
}

static int
apply_memory (sbx_cgroup *cg, const oci_memory *m, sbx_error **err)
{
  bool want_swap = m->has_swap && m->swap != 0, swap_done = false;
  sbx_cg_hier *h;

  if (!(m->has_limit || m->has_reservation || want_swap || m->has_swappiness || m->has_disable_oom_killer
        || m->has_kernel_tcp || m->has_use_hierarchy))
    return 0;
  h = need_v1 (cg, "memory", "memory", err);
  if (h == NULL)
    return -1;
  if (want_swap && !sbx_cg_exists (h, "memory.memsw.limit_in_bytes"))
    {
      if (m->swap != -1)
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.memory.swap: no memory.memsw.limit_in_bytes (swap accounting "
                              "is off)");
      want_swap = false;
    }
  if (want_swap && m->swap < -1)
    return sbx_error_set (err, EINVAL, "linux.resources.memory.swap: invalid value %" PRId64, m->swap);
  if (m->has_limit)
    {
      sbx_error *e = NULL;
      if (write_i64 (h, "memory.limit_in_bytes", m->limit, "memory.limit", &e) < 0)
        {
          /* memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes:
             when raising both, the memsw one has to go first */
          if (!(want_swap && e->errno_ == EINVAL))
            return pass_error (err, e);
          sbx_error_free (e);
          if (write_i64 (h, "memory.memsw.limit_in_bytes", m->swap, "memory.swap", err) < 0
              || write_i64 (h, "memory.limit_in_bytes", m->limit, "memory.limit", err) < 0)
            return -1;
          swap_done = true;
        }
    }
  if (want_swap && !swap_done
      && write_i64 (h, "memory.memsw.limit_in_bytes", m->swap, "memory.swap", err) < 0)
    return -1;
  if (m->has_reservation
      && write_i64 (h, "memory.soft_limit_in_bytes", m->reservation, "memory.reservation", err) < 0)
    return -1;
  if (m->has_swappiness)
    {
      if (m->swappiness > 100)
        return sbx_error_set (err, EINVAL, "linux.resources.memory.swappiness: %" PRIu64 " is above 100",
                              m->swappiness);
      if (sbx_cg_writef (h, "memory.swappiness", "memory.swappiness", err, "%" PRIu64, m->swappiness) < 0)
        return -1;
    }
  if (m->has_disable_oom_killer
      && sbx_cg_write (h, "memory.oom_control", m->disable_oom_killer ? "1" : "0", "memory.disableOOMKiller",
                       err)
             < 0)
    return -1;
  if (m->has_kernel_tcp)
    {
      if (!sbx_cg_exists (h, "memory.kmem.tcp.limit_in_bytes"))
        return sbx_error_set (
            err, EOPNOTSUPP,
            "linux.resources.memory.kernelTCP: this kernel has no memory.kmem.tcp.limit_in_bytes");
      if (write_i64 (h, "memory.kmem.tcp.limit_in_bytes", m->kernel_tcp, "memory.kernelTCP", err) < 0)
        return -1;
    }
  if (m->has_use_hierarchy
      && sbx_cg_write (h, "memory.use_hierarchy", m->use_hierarchy ? "1" : "0", "memory.useHierarchy", err)
             < 0)
    return -1;
  return 0;
}

/* A period and the time allowed in it (CFS quota, realtime runtime),
   which the kernel checks together and against the parent's: the period
   first; if the kernel refuses it next to the old time (the ratio would
   exceed the parent's), the time first, then the period.  */
static int
write_period_pair (sbx_cg_hier *h, const char *pfile, const char *pfield, bool set_p, uint64_t p,
                   const char *tfile, const char *tfield, bool set_t, int64_t t, sbx_error **err)
{
  sbx_error *e = NULL;
  if (set_p && sbx_cg_writef (h, pfile, pfield, &e, "%" PRIu64, p) < 0)
    {
      if (!(set_t && e->errno_ == EINVAL))
        return pass_error (err, e);
      sbx_error_free (e);
      if (write_i64 (h, tfile, t, tfield, err) < 0)
        return -1;
      return sbx_cg_writef (h, pfile, pfield, err, "%" PRIu64, p);
    }
  if (set_t && write_i64 (h, tfile, t, tfield, err) < 0)
    return -1;
  return 0;
}

/* A realtime budget is refused (EINVAL) unless every ancestor has one at
   least as large: the levels above the container's that this create made
   get the container's period and runtime first.  Levels made by others
   (a pod's, kubelet's) are theirs to give.  */
static int
rt_budget_down (sbx_cg_hier *h, const oci_cpu *c, sbx_error **err)
{
  cleanup_free char *level = NULL;
  size_t len = strlen (h->dir), end = h->made_from;
  char period[24], runtime[24];

  if (!c->has_realtime_runtime || c->realtime_runtime <= 0 || end == 0 || end >= len)
    return 0;
  level = xstrdup (h->dir);
  snprintf (period, sizeof period, "%" PRIu64, c->realtime_period);
  snprintf (runtime, sizeof runtime, "%" PRId64, c->realtime_runtime);
  for (;;)
    {
      const char *next;
      level[end] = '\0';
      if ((c->has_realtime_period && c->realtime_period
           && write_level (level, "cpu.rt_period_us", period) < 0)
          || write_level (level, "cpu.rt_runtime_us", runtime) < 0)
        return sbx_error_sys (err,
                              "linux.resources.cpu.realtimeRuntime: give %" PRId64
                              " us to `%s`, which this create made",
                              c->realtime_runtime, level);
      level[end] = '/';
      next = strchr (h->dir + end + 1, '/');
      if (next == NULL)
        break;
      end = (size_t)(next - h->dir);
    }
  return 0;
}

static int
apply_cpu (sbx_cgroup *cg, const oci_cpu *c, sbx_error **err)
{
  bool any = (c->has_shares && c->shares) || c->has_quota || (c->has_period && c->period) || c->has_burst
             || c->has_realtime_runtime || c->has_realtime_period || c->has_idle;
  sbx_cg_hier *h;

  if (any)
    {
      h = need_v1 (cg, "cpu", "cpu", err);
      if (h == NULL)
        return -1;
      if (c->has_shares && c->shares
          && sbx_cg_writef (h, "cpu.shares", "cpu.shares", err, "%" PRIu64, c->shares) < 0)
        return -1;
      if (write_period_pair (h, "cpu.cfs_period_us", "cpu.period", c->has_period && c->period, c->period,
                             "cpu.cfs_quota_us", "cpu.quota", c->has_quota, c->quota, err)
          < 0)
        return -1;
      if (c->has_burst && sbx_cg_writef (h, "cpu.cfs_burst_us", "cpu.burst", err, "%" PRIu64, c->burst) < 0)
        return -1;
      if (rt_budget_down (h, c, err) < 0)
        return -1;
      if (write_period_pair (h, "cpu.rt_period_us", "cpu.realtimePeriod",
                             c->has_realtime_period && c->realtime_period, c->realtime_period,
                             "cpu.rt_runtime_us", "cpu.realtimeRuntime", c->has_realtime_runtime,
                             c->realtime_runtime, err)
          < 0)
        return -1;
      if (c->has_idle && sbx_cg_writef (h, "cpu.idle", "cpu.idle", err, "%" PRId64, c->idle) < 0)
        return -1;
    }
  if ((c->cpus && *c->cpus) || (c->mems && *c->mems))
    {
      h = need_v1 (cg, "cpuset", c->cpus && *c->cpus ? "cpu.cpus" : "cpu.mems", err);
      if (h == NULL)
        return -1;
      if (c->cpus && *c->cpus && sbx_cg_write (h, "cpuset.cpus", c->cpus, "cpu.cpus", err) < 0)
        return -1;
      if (c->mems && *c->mems && sbx_cg_write (h, "cpuset.mems", c->mems, "cpu.mems", err) < 0)
        return -1;
    }
  return 0;
}

static int
apply_blkio (sbx_cgroup *cg, const oci_blkio *b, sbx_error **err)
{
  sbx_cg_hier *h = need_v1 (cg, "blkio", "blockIO", err);
  const char *wfile, *wdfile;
  bool dev_weight = false; /* an entry may carry only a leafWeight */

  if (h == NULL)
    return -1;
  for (size_t i = 0; i < b->weight_device_len; i++)
    dev_weight |= b->weight_device[i]->has_weight;
  /* CFQ had blkio.weight; with BFQ the files are blkio.bfq.* */
  wfile = sbx_cg_exists (h, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
  wdfile = sbx_cg_exists (h, "blkio.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device";
  if ((b->has_weight || dev_weight) && !sbx_cg_exists (h, wfile))
    return sbx_error_set (err, EOPNOTSUPP,
                          "linux.resources.blockIO.weight%s: no %s (the host's I/O scheduler has no weights: "
                          "BFQ or CFQ needed)",
                          b->has_weight ? "" : "Device", wfile);
  if (b->has_weight && sbx_cg_writef (h, wfile, "blockIO.weight", err, "%" PRIu16, b->weight) < 0)
    return -1;
  if (b->has_leaf_weight)
    {
      if (!sbx_cg_exists (h, "blkio.leaf_weight"))
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.blockIO.leafWeight: this kernel has no blkio.leaf_weight "
                              "(gone since Linux 5.0)");
      if (sbx_cg_writef (h, "blkio.leaf_weight", "blockIO.leafWeight", err, "%" PRIu16, b->leaf_weight) < 0)
        return -1;
    }
  for (size_t i = 0; i < b->weight_device_len; i++)
    {
      const oci_blkio_weight_device *d = b->weight_device[i];
      if (d->has_weight
          && sbx_cg_writef (h, wdfile, "blockIO.weightDevice", err, "%" PRId64 ":%" PRId64 " %" PRIu16,
                            d->major, d->minor, d->weight)
                 < 0)
        return -1;
      if (d->has_leaf_weight)
        {
          if (!sbx_cg_exists (h, "blkio.leaf_weight_device"))
            return sbx_error_set (err, EOPNOTSUPP,
                                  "linux.resources.blockIO.weightDevice[%zu].leafWeight: this kernel has no "
                                  "blkio.leaf_weight_device (gone since Linux 5.0)",
                                  i);
          if (sbx_cg_writef (h, "blkio.leaf_weight_device", "blockIO.weightDevice", err,
                             "%" PRId64 ":%" PRId64 " %" PRIu16, d->major, d->minor, d->leaf_weight)
              < 0)
            return -1;
        }
    }
  for (size_t t = 0; t < SBX_CG_THROTTLE_KINDS; t++)
    {
      size_t len;
      oci_blkio_throttle *const *arr = sbx_cg_throttle_list (b, t, &len);
      for (size_t i = 0; i < len; i++)
        if (sbx_cg_writef (h, sbx_cg_throttles[t].v1_file, sbx_cg_throttles[t].field, err,
                           "%" PRId64 ":%" PRId64 " %" PRIu64, arr[i]->major, arr[i]->minor, arr[i]->rate)
            < 0)
          return -1;
    }
  return 0;
}

static int
apply_hugetlb (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  sbx_cg_hier *h = sbx_cg_find_v1 (cg, "hugetlb");

  if (h == NULL)
    {
      /* hybrid hosts may have hugetlb in the unified hierarchy only */
      h = sbx_cg_find (cg, "hugetlb");
      if (h == NULL)
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.hugepageLimits: no hugetlb controller on this host");
      return sbx_cg_v2_apply_hugetlb (h, r, err);
    }
  return sbx_cg_hugetlb_write (h, r, "limit_in_bytes", err);
}

static int
apply_rdma (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  sbx_cg_hier *h = sbx_cg_find_v1 (cg, "rdma");

  if (h)
    return sbx_cg_rdma_write (h, r, err);
  h = sbx_cg_find (cg, "rdma");
  if (h == NULL)
    return sbx_error_set (err, EOPNOTSUPP, "linux.resources.rdma: no rdma controller on this host");
  return sbx_cg_v2_apply_rdma (h, r, err);
}

static int
apply_network (sbx_cgroup *cg, const oci_network *n, sbx_error **err)
{
  sbx_cg_hier *h;

  if (n->has_class_id)
    {
      h = sbx_cg_find_v1 (cg, "net_cls");
      if (h == NULL)
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.network.classID: the net_cls controller is not "
                              "mounted on this host");
      if (sbx_cg_writef (h, "net_cls.classid", "network.classID", err, "%" PRIu32, n->class_id) < 0)
        return -1;
    }
  if (n->priorities_len)
    {
      h = sbx_cg_find_v1 (cg, "net_prio");
      if (h == NULL)
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.network.priorities: the net_prio controller is "
                              "not mounted on this host");
      for (size_t i = 0; i < n->priorities_len; i++)
        {
          const oci_network_priority *p = n->priorities[i];
          if (p->name == NULL || *p->name == '\0' || strpbrk (p->name, " \t\n"))
            return sbx_error_set (err, EINVAL, "linux.resources.network.priorities[%zu].name: invalid", i);
          if (sbx_cg_writef (h, "net_prio.ifpriomap", "network.priorities", err, "%s %" PRIu32, p->name,
                             p->priority)
              < 0)
            return -1;
        }
    }
  return 0;
}

static int
v1_apply (sbx_cgroup *cg, const oci_resources *r, sbx_error **err)
{
  if (r->devices_len && apply_devices (cg, r, err) < 0)
    return -1;
  if (r->memory && apply_memory (cg, r->memory, err) < 0)
    return -1;
  if (r->cpu && apply_cpu (cg, r->cpu, err) < 0)
    return -1;
  if (r->pids)
    {
      sbx_cg_hier *h = need_v1 (cg, "pids", "pids", err);
      if (h == NULL)
        return -1;
      if ((r->pids->limit > 0 ? sbx_cg_writef (h, "pids.max", "pids.limit", err, "%" PRId64, r->pids->limit)
                              : sbx_cg_write (h, "pids.max", "max", "pids.limit", err))
          < 0)
        return -1;
    }
  if (r->block_io && apply_blkio (cg, r->block_io, err) < 0)
    return -1;
  if (r->hugepage_limits_len && apply_hugetlb (cg, r, err) < 0)
    return -1;
  if (r->rdma_len && apply_rdma (cg, r, err) < 0)
    return -1;
  if (r->network && apply_network (cg, r->network, err) < 0)
    return -1;
  if (r->unified_len)
    {
      sbx_cg_hier *u = sbx_cg_unified (cg);
      if (u == NULL)
        return sbx_error_set (err, EOPNOTSUPP,
                              "linux.resources.unified: needs cgroup v2; this host has only cgroup v1");
      if (sbx_cg_v2_apply_unified (u, r, true, err) < 0)
        return -1;
    }
  return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int
v1_enter (sbx_cgroup *cg, pid_t pid, sbx_error **err)
{
  for (size_t i = 0; i < cg->n; i++)
    if (sbx_cg_writef (&cg->h[i], "cgroup.procs", NULL, err, "%d", (int)pid) < 0)
      return -1;
  return 0;
}

static bool
v1_is_frozen (sbx_cgroup *cg)
{
  sbx_cg_hier *h = sbx_cg_find_v1 (cg, "freezer"), *u;
  cleanup_free char *state = NULL;

  if (h)
    {
      if (h->fd < 0 && access (h->dir, F_OK) < 0)
        return false;
      return sbx_cg_read (h, "freezer.state", &state, NULL) == 0 && strcmp (state, "FROZEN") == 0;
    }
  u = sbx_cg_unified (cg);
  return u && sbx_cg_v2_is_frozen_hier (u);
}

static int
v1_freeze (sbx_cgroup *cg, bool frozen, sbx_error **err)
{
  sbx_cg_hier *h = sbx_cg_find_v1 (cg, "freezer"), *u;
  const char *want = frozen ? "FROZEN" : "THAWED";
  long long deadline = sbx_now_ms () + SBX_CG_FREEZE_TIMEOUT_MS;

  if (h == NULL)
    {
      u = sbx_cg_unified (cg);
      if (u && sbx_cg_exists (u, "cgroup.freeze"))
        return sbx_cg_v2_freeze_hier (u, frozen, err);
      return no_hier (cg, "freezer", "freeze", err);
    }
  for (int ms = 1;; ms = ms < 32 ? ms * 2 : ms)
    {
      cleanup_free char *state = NULL;
      /* (re)writing FROZEN retries tasks that could not be frozen yet */
      if (sbx_cg_write (h, "freezer.state", want, NULL, err) < 0
          || sbx_cg_read (h, "freezer.state", &state, err) < 0)
        return -1;
      if (strcmp (state, want) == 0)
        return 0;
      if (sbx_now_ms () > deadline)
        {
          if (frozen)
            sbx_cg_write (h, "freezer.state", "THAWED", NULL, NULL);
          return sbx_error_set (err, ETIMEDOUT, "cgroup `%s`: timed out waiting for freezer.state %s (is %s)",
                                h->path, want, state);
        }
      sbx_cg_sleep_ms (ms);
    }
}

static void
thaw_quietly (sbx_cgroup *cg)
{
  sbx_cg_hier *u = sbx_cg_unified (cg);
  if (v1_is_frozen (cg))
    {
      cleanup_error sbx_error *e = NULL;
      if (v1_freeze (cg, false, &e) < 0)
        sbx_debug ("cgroup: thaw before kill: %s", e->msg);
    }
  if (u && sbx_cg_find_v1 (cg, "freezer") && sbx_cg_v2_is_frozen_hier (u))
    sbx_cg_v2_freeze_hier (u, false, NULL);
}

static int
v1_kill (sbx_cgroup *cg, int signo, sbx_error **err)
{
  long long deadline = sbx_now_ms () + SBX_CG_KILL_TIMEOUT_MS;
  bool thawed = false;
  size_t seen = 0;

  if (signo != SIGKILL)
    return sbx_cg_signal_all (cg, signo, &seen, err);
  /* Hybrid hosts: the processes are in the unified hierarchy too, whose
     cgroup.kill (5.14) kills them all at once, forks in flight included.  */
  {
    sbx_cg_hier *u = sbx_cg_unified (cg);
    if (u && (u->fd >= 0 || access (u->dir, F_OK) == 0) && sbx_cg_exists (u, "cgroup.kill"))
      {
        cleanup_error sbx_error *e = NULL;
        if (sbx_cg_write (u, "cgroup.kill", "1", NULL, &e) < 0)
          sbx_debug ("cgroup: %s", e->msg);
      }
  }
  for (;;)
    {
      if (sbx_cg_signal_all (cg, SIGKILL, &seen, err) < 0)
        return -1;
      if (seen == 0)
        return 0;
      if (!thawed)
        {
          /* frozen tasks die only once thawed; the signal is already queued */
          thaw_quietly (cg);
          thawed = true;
        }
      if (sbx_now_ms () > deadline)
        return sbx_error_set (err, EBUSY, "cgroup `%s` still has %zu processes after SIGKILL",
                              sbx_cgroup_path (cg), seen);
      sbx_cg_sleep_ms (10);
    }
}

/* blkio.*_recursive: "MAJ:MIN Read 4096" lines and a final "Total N" */
static void
blkio_file (sbx_cg_hier *h, const char *file, sbx_cgroup_blkio_entry **v, size_t *n)
{
  static const char *const ops[] = { "Read", "Write", "Sync", "Async", "Discard", "Total" };
  cleanup_free char *text = NULL;
  char *save = NULL;

  if (sbx_cg_read (h, file, &text, NULL) < 0)
    return;
  for (char *l = strtok_r (text, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      unsigned long long maj, min, val;
      char op[16];
      if (sscanf (l, "%llu:%llu %15s %llu", &maj, &min, op, &val) != 4)
        continue;
      for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (strcmp (op, ops[k]) == 0)
          sbx_cg_blkio_add (v, n, maj, min, ops[k], val);
    }
}

static void
v1_hugetlb_stats (sbx_cg_hier *h, sbx_cgroup_stats *st)
{
  cleanup_strv char **sizes = sbx_cg_hugepage_sizes ();
  for (size_t i = 0; sizes[i]; i++)
    {
      cleanup_free char *u = xasprintf ("hugetlb.%s.usage_in_bytes", sizes[i]);
      cleanup_free char *m = xasprintf ("hugetlb.%s.max_usage_in_bytes", sizes[i]);
      cleanup_free char *f = xasprintf ("hugetlb.%s.failcnt", sizes[i]);
      uint64_t usage = 0, max = 0, fail = 0;
      if (!sbx_cg_read_u64 (h, u, &usage))
        continue;
      sbx_cg_read_u64 (h, m, &max);
      sbx_cg_read_u64 (h, f, &fail);
      sbx_cg_hugetlb_add (st, sizes[i], usage, max, fail);
    }
}

static int
v1_stats (sbx_cgroup *cg, sbx_cgroup_stats *st, sbx_error **err)
{
  sbx_cg_hier *h;
  long hz = sysconf (_SC_CLK_TCK);

  if (hz <= 0)
    hz = 100;
  if ((h = sbx_cg_find_v1 (cg, "cpuacct")) && sbx_cg_read_u64 (h, "cpuacct.usage", &st->cpu_usage_ns))
    {
      cleanup_free char *percpu = NULL;
      st->has_cpu = true;
      st->cpu_user_ns = sbx_cg_keyed_u64 (h, "cpuacct.stat", "user") * (1000000000ULL / (uint64_t)hz);
      st->cpu_system_ns = sbx_cg_keyed_u64 (h, "cpuacct.stat", "system") * (1000000000ULL / (uint64_t)hz);
      if (sbx_cg_read (h, "cpuacct.usage_percpu", &percpu, NULL) == 0)
        for (char *p = percpu, *end;; p = end)
          {
            unsigned long long v = strtoull (p, &end, 10);
            if (end == p)
              break;
            st->cpu_percpu_ns = xrealloc (st->cpu_percpu_ns, (st->cpu_ncpu + 1) * sizeof (uint64_t));
            st->cpu_percpu_ns[st->cpu_ncpu++] = v;
          }
    }
  if ((h = sbx_cg_find_v1 (cg, "cpu")) && sbx_cg_exists (h, "cpu.stat"))
    {
      st->cpu_nr_periods = sbx_cg_keyed_u64 (h, "cpu.stat", "nr_periods");
      st->cpu_nr_throttled = sbx_cg_keyed_u64 (h, "cpu.stat", "nr_throttled");
      st->cpu_throttled_ns = sbx_cg_keyed_u64 (h, "cpu.stat", "throttled_time");
    }
  if ((h = sbx_cg_find_v1 (cg, "memory")) && sbx_cg_read_u64 (h, "memory.usage_in_bytes", &st->memory_usage))
    {
      uint64_t memsw = 0;
      st->has_memory = true;
      sbx_cg_read_u64 (h, "memory.max_usage_in_bytes", &st->memory_max_usage);
      sbx_cg_read_u64 (h, "memory.limit_in_bytes", &st->memory_limit);
      if (st->memory_limit >= (UINT64_C (1) << 62)) /* PAGE_COUNTER_MAX: unlimited */
        st->memory_limit = 0;
      if (sbx_cg_read_u64 (h, "memory.memsw.usage_in_bytes", &memsw) && memsw > st->memory_usage)
        st->memory_swap_usage = memsw - st->memory_usage;
      if (sbx_cg_read_u64 (h, "memory.memsw.limit_in_bytes", &st->memory_swap_limit)
          && st->memory_swap_limit >= (UINT64_C (1) << 62))
        st->memory_swap_limit = 0;
      sbx_cg_read_u64 (h, "memory.failcnt", &st->memory_failcnt);
      sbx_cg_read_u64 (h, "memory.kmem.usage_in_bytes", &st->memory_kernel_usage);
      st->memory_oom_kill = sbx_cg_keyed_u64 (h, "memory.oom_control", "oom_kill");
      if (sbx_cg_read_stat_map (h, "memory.stat", st))
        st->memory_cache = sbx_cg_stat_value (st, "total_cache");
    }
  if ((h = sbx_cg_find_v1 (cg, "pids")) && sbx_cg_read_u64 (h, "pids.current", &st->pids_current))
    {
      st->has_pids = true;
      sbx_cg_read_u64 (h, "pids.max", &st->pids_limit);
    }
  if ((h = sbx_cg_find_v1 (cg, "blkio")))
    {
      bool thr = sbx_cg_exists (h, "blkio.throttle.io_service_bytes_recursive");
      st->has_blkio = true;
      blkio_file (h, thr ? "blkio.throttle.io_service_bytes_recursive" : "blkio.io_service_bytes_recursive",
                  &st->blkio_bytes, &st->blkio_bytes_len);
      blkio_file (h, thr ? "blkio.throttle.io_serviced_recursive" : "blkio.io_serviced_recursive",
                  &st->blkio_ios, &st->blkio_ios_len);
    }
  if ((h = sbx_cg_find_v1 (cg, "hugetlb")))
    v1_hugetlb_stats (h, st);
  else if ((h = sbx_cg_find (cg, "hugetlb")) && sbx_cg_open (h, NULL) == 0)
    sbx_cg_v2_hugetlb_stats (h, st); /* hybrid: hugetlb in the unified hierarchy */
  (void)err;
  return 0;
}

const sbx_cg_ops sbx_cg_v1_ops = {
  .create = v1_create,
  .apply = v1_apply,
  .enter = v1_enter,
  .kill = v1_kill,
  .freeze = v1_freeze,
  .is_frozen = v1_is_frozen,
  .stats = v1_stats,
};
