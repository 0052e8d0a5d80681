/* container/events.c - events: stats and OOM notifications as JSON lines,
 * in runc's format so that containerd and friends can read them.  */
#include <config.h>
#include "container/container.h"

#include "egress/egress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "core/core.h"
#include "json.h"
#include "state/state.h"


int
sbx_parse_duration_ms (const char *s, long long *ms, sbx_error **err)
{
  static const struct
  {
    const char *unit;
    double ms;
  } units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
                { "s", 1000 },  { "m", 60000 }, { "h", 3600000 } };
  const char *p = s;
  double total = 0;

  if (s == NULL || *s == '\0')
    return sbx_error_set (err, EINVAL, "invalid duration ``");
  if (strspn (s, "0123456789.") == strlen (s))
    {
      /* a bare number: seconds */
      char *end;
      total = strtod (s, &end) * 1000;
      if (*end)
        return sbx_error_set (err, EINVAL, "invalid duration `%s`", s);
      p = end;
    }
  while (*p)
    {
      char *end;
      double v;
      size_t best = SIZE_MAX, bl = 0;

      if ((*p < '0' || *p > '9') && *p != '.')
        return sbx_error_set (err, EINVAL, "invalid duration `%s`", s);
      v = strtod (p, &end);
      if (end == p)
        return sbx_error_set (err, EINVAL, "invalid duration `%s`", s);
      p = end;
      for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        {
          size_t l = strlen (units[k].unit);
          if (strncmp (p, units[k].unit, l) == 0 && l > bl)
            best = k, bl = l;
        }
      if (best == SIZE_MAX)
        return sbx_error_set (err, EINVAL, "invalid duration `%s` (units: ns, us, ms, s, m, h)", s);
      total += v * units[best].ms;
      p += bl;
    }
  if (total > 1e15)
    return sbx_error_set (err, ERANGE, "duration `%s` is too long", s);
  *ms = (long long)(total + 0.5); /* total >= 0 */
  return 0;
}

/* ---------------------------------------------------------------- events */

static void
mem_entry (oj_writer *w, const char *key, uint64_t limit, uint64_t usage, uint64_t max, uint64_t failcnt)
{
  oj_w_key (w, key);
  oj_w_begin_object (w);
  oj_w_key (w, "limit");
  oj_w_uint (w, limit);
  oj_w_key (w, "usage");
  oj_w_uint (w, usage);
  oj_w_key (w, "max");
  oj_w_uint (w, max);
  oj_w_key (w, "failcnt");
  oj_w_uint (w, failcnt);
  oj_w_end_object (w);
}

static void
blkio_list (oj_writer *w, const char *key, const sbx_cgroup_blkio_entry *v, size_t n)
{
  oj_w_key (w, key);
  oj_w_begin_array (w);
  for (size_t i = 0; i < n; i++)
    {
      oj_w_begin_object (w);
      oj_w_key (w, "major");
      oj_w_uint (w, v[i].major);
      oj_w_key (w, "minor");
      oj_w_uint (w, v[i].minor);
      oj_w_key (w, "op");
      oj_w_string (w, v[i].op);
      oj_w_key (w, "value");
      oj_w_uint (w, v[i].value);
      oj_w_end_object (w);
    }
  oj_w_end_array (w);
}

/* Packets the egress allowlist dropped (org.sbxrun.net.*), when there is one. */
struct egress_drops
{
  bool have;
  uint64_t packets, bytes;
  char *denied; /* JSON array (sbx_net_policy_denied) or NULL */
};

static void
write_stats (oj_writer *w, const sbx_cgroup_stats *st, const struct egress_drops *drops)
{
  /* unlimited reads as the largest value, as runc reports cgroup v2 "max" */
  uint64_t mem_limit = st->memory_limit ? st->memory_limit : UINT64_MAX;
  uint64_t swap_limit = st->memory_swap_limit ? st->memory_swap_limit : UINT64_MAX;

  oj_w_begin_object (w);
  oj_w_key (w, "cpu");
  oj_w_begin_object (w);
  oj_w_key (w, "usage");
  oj_w_begin_object (w);
  oj_w_key (w, "total");
  oj_w_uint (w, st->cpu_usage_ns);
  if (st->cpu_ncpu)
    {
      oj_w_key (w, "percpu");
      oj_w_begin_array (w);
      for (size_t i = 0; i < st->cpu_ncpu; i++)
        oj_w_uint (w, st->cpu_percpu_ns[i]);
      oj_w_end_array (w);
    }
  oj_w_key (w, "kernel");
  oj_w_uint (w, st->cpu_system_ns);
  oj_w_key (w, "user");
  oj_w_uint (w, st->cpu_user_ns);
  oj_w_end_object (w);
  oj_w_key (w, "throttling");
  oj_w_begin_object (w);
  oj_w_key (w, "periods");
  oj_w_uint (w, st->cpu_nr_periods);
  oj_w_key (w, "throttledPeriods");
  oj_w_uint (w, st->cpu_nr_throttled);
  oj_w_key (w, "throttledTime");
  oj_w_uint (w, st->cpu_throttled_ns);
  oj_w_end_object (w);
  oj_w_end_object (w);

  oj_w_key (w, "memory");
  oj_w_begin_object (w);
  oj_w_key (w, "cache");
  oj_w_uint (w, st->memory_cache);
  mem_entry (w, "usage", mem_limit, st->memory_usage, st->memory_max_usage, st->memory_failcnt);
  mem_entry (w, "swap", swap_limit, st->memory_swap_usage, 0, 0);
  mem_entry (w, "kernel", 0, st->memory_kernel_usage, 0, 0);
  mem_entry (w, "kernelTCP", 0, 0, 0, 0);
  oj_w_key (w, "raw");
  oj_w_begin_object (w);
  for (size_t i = 0; i < st->memory_stat_len; i++)
    {
      oj_w_key (w, st->memory_stat_keys[i]);
      oj_w_uint (w, st->memory_stat_values[i]);
    }
  oj_w_end_object (w);
  oj_w_end_object (w);

  oj_w_key (w, "pids");
  oj_w_begin_object (w);
  oj_w_key (w, "current");
  oj_w_uint (w, st->pids_current);
  oj_w_key (w, "limit");
  oj_w_uint (w, st->pids_limit);
  oj_w_end_object (w);

  oj_w_key (w, "blkio");
  oj_w_begin_object (w);
  blkio_list (w, "ioServiceBytesRecursive", st->blkio_bytes, st->blkio_bytes_len);
  blkio_list (w, "ioServicedRecursive", st->blkio_ios, st->blkio_ios_len);
  oj_w_end_object (w);

  oj_w_key (w, "hugetlb");
  oj_w_begin_object (w);
  for (size_t i = 0; i < st->hugetlb_len; i++)
    {
      oj_w_key (w, st->hugetlb[i].page_size);
      oj_w_begin_object (w);
      oj_w_key (w, "usage");
      oj_w_uint (w, st->hugetlb[i].usage);
      oj_w_key (w, "max");
      oj_w_uint (w, st->hugetlb[i].max_usage);
      oj_w_key (w, "failcnt");
      oj_w_uint (w, st->hugetlb[i].failcnt);
      oj_w_end_object (w);
    }
  oj_w_end_object (w);
  oj_w_key (w, "intel_rdt");
  oj_w_begin_object (w);
  oj_w_end_object (w);
  oj_w_key (w, "network_interfaces");
  oj_w_null (w);
  if (drops && drops->have)
    {
      oj_w_key (w, "egress");
      oj_w_begin_object (w);
      oj_w_key (w, "dropped_packets");
      oj_w_uint (w, drops->packets);
      oj_w_key (w, "dropped_bytes");
      oj_w_uint (w, drops->bytes);
      if (drops->denied)
        {
          oj_value *v = oj_parse (drops->denied, strlen (drops->denied), NULL);
          if (v)
            {
              oj_w_key (w, "denied");
              oj_w_value (w, v);
              oj_free (v);
            }
        }
      oj_w_end_object (w);
    }
  oj_w_end_object (w);
}

/* One event line; data may be NULL.  */
static int
emit_event (int fd, const char *type, const char *id, const sbx_cgroup_stats *data,
            const struct egress_drops *drops, sbx_error **err)
{
  oj_writer *w = oj_writer_new (false);
  cleanup_free char *line = NULL;
  size_t len = 0;

  oj_w_begin_object (w);
  oj_w_key (w, "type");
  oj_w_string (w, type);
  oj_w_key (w, "id");
  oj_w_string (w, id);
  if (data)
    {
      oj_w_key (w, "data");
      write_stats (w, data, drops);
    }
  oj_w_end_object (w);
  line = oj_writer_finish (w, &len);
  line = xrealloc (line, len + 2);
  line[len++] = '\n';
  line[len] = '\0';
  if (sbx_write_all (fd, line, len) < 0)
    return sbx_error_sys (err, "write event");
  return 0;
}

/* state_dirfd (unlocked) and pid locate the egress policy's counters.  */
static int
emit_stats (int fd, sbx_cgroup *cg, const char *id, int state_dirfd, pid_t pid, sbx_error **err)
{
  sbx_cgroup_stats st;
  struct egress_drops drops = { 0 };
  int r;

  if (sbx_cgroup_get_stats (cg, &st, err) < 0)
    return sbx_error_wrap (err, "container \"%s\": stats", id);
  if (state_dirfd >= 0)
    drops.have = sbx_net_container_counters (state_dirfd, id, pid, &drops.packets, &drops.bytes, NULL) == 0;
  if (drops.have)
    drops.denied = sbx_net_container_denied (state_dirfd, id, pid);
  r = emit_event (fd, "stats", id, &st, &drops, err);
  free (drops.denied);
  sbx_cgroup_stats_release (&st);
  return r;
}

static int
emit_ooms (int fd, sbx_cgroup_oom_watch *w, const char *id, sbx_error **err)
{
  uint64_t n = 0;
  if (w == NULL)
    return 0;
  if (sbx_cgroup_oom_read (w, &n, err) < 0)
    return -1;
  /* one line per notification, as runc: a burst of kills is one event */
  if (n && emit_event (fd, "oom", id, NULL, NULL, err) < 0)
    return -1;
  return 0;
}

int
sbx_container_events (const char *root, const char *id, const sbx_events_opts *o, sbx_error **err)
{
  cleanup_cgroup sbx_cgroup *cg = NULL;
  cleanup_close int pidfd = -1, state_dirfd = -1;
  sbx_cgroup_oom_watch *ow = NULL;
  long long next;
  pid_t pid;
  unsigned long long pid_start;
  int ret = -1;

  {
    /* everything needed is read under the lock, which is not held while
       waiting: start, kill and delete must keep working */
    cleanup_state sbx_state *s = NULL;
    if (sbx_state_open (root, id, &s, err) < 0)
      return -1;
    pid = s->st->pid;
    pid_start = s->st->pid_start;
    /* without pidfds (old kernels, valgrind) the init is polled */
    pidfd = sbx_pidfd_open (pid);
    if (strcmp (sbx_state_status (s), "stopped") == 0)
      return sbx_error_set (err, ESRCH, "container \"%s\" is not running", id);
    if (sbx_container_load_cgroup (s, "events of", &cg, err) < 0)
      return -1;
    /* A second open of the state directory, without the lock, for the
       egress counters (their namespace is found from its net.json).  */
    state_dirfd = openat (s->root_fd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (o->stats_only)
    return emit_stats (o->out_fd, cg, id, state_dirfd, pid, err);

  {
    cleanup_error sbx_error *e = NULL;
    if (sbx_cgroup_oom_watch_open (cg, &ow, &e) < 0)
      sbx_debug ("events: %s", e->msg);
  }
  next = o->interval_ms > 0 ? sbx_now_ms () + o->interval_ms : -1;
  for (;;)
    {
      struct pollfd p[2] = { { pidfd, POLLIN, 0 }, { ow ? sbx_cgroup_oom_watch_fd (ow) : -1, POLLIN, 0 } };
      int timeout = -1, r;

      if (next >= 0)
        {
          long long left = next - sbx_now_ms ();
          timeout = left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
        }
      if (pidfd < 0 && (timeout < 0 || timeout > 200))
        timeout = 200;
      r = poll (p, 2, timeout);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          sbx_error_sys (err, "poll");
          goto out;
        }
      if ((p[1].revents & POLLIN) && emit_ooms (o->out_fd, ow, id, err) < 0)
        goto out;
      if ((p[0].revents & (POLLIN | POLLHUP)) || (pidfd < 0 && sbx_pid_start_time (pid) != pid_start))
        {
          /* the init is gone: report an OOM that killed it, then stop */
          if (emit_ooms (o->out_fd, ow, id, err) < 0)
            goto out;
          break;
        }
      if (next >= 0 && sbx_now_ms () >= next)
        {
          if (emit_stats (o->out_fd, cg, id, state_dirfd, pid, err) < 0)
            goto out;
          next += o->interval_ms;
          if (next < sbx_now_ms ())
            next = sbx_now_ms () + o->interval_ms;
        }
    }
  ret = 0;
out:
  sbx_cgroup_oom_watch_free (ow);
  return ret;
}
