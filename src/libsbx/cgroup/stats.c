/* cgroup/stats.c - the helpers both backends use to fill sbx_cgroup_stats
 * (memory.stat maps, blkio entries, huge page sizes) and the OOM event
 * watch of `sbxrun events`.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* ---------------------------------------------------------------- stats */

bool
sbx_cg_read_stat_map (sbx_cg_hier *h, const char *file, sbx_cgroup_stats *st)
{
  cleanup_free char *text = NULL;
  char *save = NULL;

  if (sbx_cg_read (h, file, &text, NULL) < 0)
    return false;
  for (char *l = strtok_r (text, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      char *sp = strchr (l, ' ');
      long long v;
      if (sp == NULL)
        continue;
      *sp = '\0';
      if (sbx_parse_int64 (sp + 1, &v) < 0 || v < 0)
        continue;
      st->memory_stat_keys = xrealloc (st->memory_stat_keys, (st->memory_stat_len + 2) * sizeof (char *));
      st->memory_stat_values
          = xrealloc (st->memory_stat_values, (st->memory_stat_len + 1) * sizeof (uint64_t));
      st->memory_stat_keys[st->memory_stat_len] = xstrdup (l);
      st->memory_stat_keys[st->memory_stat_len + 1] = NULL;
      st->memory_stat_values[st->memory_stat_len] = (uint64_t)v;
      st->memory_stat_len++;
    }
  return true;
}

uint64_t
sbx_cg_stat_value (const sbx_cgroup_stats *st, const char *key)
{
  for (size_t i = 0; i < st->memory_stat_len; i++)
    if (strcmp (st->memory_stat_keys[i], key) == 0)
      return st->memory_stat_values[i];
  return 0;
}

void
sbx_cg_blkio_add (sbx_cgroup_blkio_entry **v, size_t *n, uint64_t major, uint64_t minor, const char *op,
                  uint64_t value)
{
  *v = xrealloc (*v, (*n + 1) * sizeof **v);
  (*v)[*n] = (sbx_cgroup_blkio_entry){ major, minor, op, value };
  (*n)++;
}

char **
sbx_cg_hugepage_sizes (void)
{
  DIR *d = opendir ("/sys/kernel/mm/hugepages");
  struct dirent *de;
  char **v = xmalloc0 (sizeof *v);
  size_t n = 0;

  if (d == NULL)
    return v;
  while ((de = readdir (d)))
    {
      unsigned long long kb;
      char unit[8] = "";
      if (sscanf (de->d_name, "hugepages-%llukB", &kb) != 1 || kb == 0)
        continue;
      if (kb % (1024 * 1024) == 0)
        kb /= 1024 * 1024, strcpy (unit, "GB");
      else if (kb % 1024 == 0)
        kb /= 1024, strcpy (unit, "MB");
      else
        strcpy (unit, "KB");
      v = xrealloc (v, (n + 2) * sizeof *v);
      v[n++] = xasprintf ("%llu%s", kb, unit);
      v[n] = NULL;
    }
  closedir (d);
  return v;
}

void
sbx_cg_hugetlb_add (sbx_cgroup_stats *st, const char *size, uint64_t usage, uint64_t max_usage,
                    uint64_t failcnt)
{
  sbx_cgroup_hugetlb_stat *e;
  st->hugetlb = xrealloc (st->hugetlb, (st->hugetlb_len + 1) * sizeof *st->hugetlb);
  e = &st->hugetlb[st->hugetlb_len++];
  memset (e, 0, sizeof *e);
  snprintf (e->page_size, sizeof e->page_size, "%s", size);
  e->usage = usage;
  e->max_usage = max_usage;
  e->failcnt = failcnt;
}

void
sbx_cgroup_stats_release (sbx_cgroup_stats *st)
{
  if (st == NULL)
    return;
  free (st->cpu_percpu_ns);
  sbx_strv_free (st->memory_stat_keys);
  free (st->memory_stat_values);
  free (st->blkio_bytes);
  free (st->blkio_ios);
  free (st->hugetlb);
  memset (st, 0, sizeof *st);
}

/* ---------------------------------------------------------- OOM events */

struct sbx_cgroup_oom_watch
{
  int fd; /* eventfd (v1) or inotify (v2) */
  bool inotify;
  char *dir;     /* the memory cgroup's directory */
  uint64_t last; /* v2: oom_kill count seen so far */
};

static bool
oom_kill_count (const char *dir, uint64_t *out)
{
  cleanup_close int fd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *text = NULL;
  char *p;

  if (fd < 0 || sbx_cg_read_at (fd, "memory.events", &text, NULL) < 0)
    return false;
  for (p = text; p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
    if (strncmp (p, "oom_kill ", 9) == 0)
      {
        *out = strtoull (p + 9, NULL, 10);
        return true;
      }
  return false;
}

int
sbx_cgroup_oom_watch_open (sbx_cgroup *cg, sbx_cgroup_oom_watch **out, sbx_error **err)
{
  sbx_cg_hier *h = cg->mode == SBX_CGROUP_V2 ? &cg->h[0] : sbx_cg_find_v1 (cg, "memory");
  sbx_cgroup_oom_watch *w;

  if (h == NULL)
    return sbx_error_set (err, EOPNOTSUPP, "no memory controller: no OOM notifications");
  w = xmalloc0 (sizeof *w);
  w->fd = -1;
  w->dir = xstrdup (h->dir);
  if (cg->mode == SBX_CGROUP_V2)
    {
      cleanup_free char *file = xasprintf ("%s/memory.events", h->dir);
      w->inotify = true;
      if (!oom_kill_count (h->dir, &w->last))
        {
          sbx_cgroup_oom_watch_free (w);
          return sbx_error_set (err, EOPNOTSUPP,
                                "cgroup `%s` has no memory.events (memory controller not enabled): no OOM "
                                "notifications",
                                h->path);
        }
      w->fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
      if (w->fd < 0 || inotify_add_watch (w->fd, file, IN_MODIFY) < 0)
        {
          sbx_error_sys (err, "watch `%s`", file);
          sbx_cgroup_oom_watch_free (w);
          return -1;
        }
    }
  else
    {
      cleanup_free char *ctl = xasprintf ("%s/cgroup.event_control", h->dir);
      cleanup_free char *oc = xasprintf ("%s/memory.oom_control", h->dir);
      cleanup_close int ocfd = open (oc, O_RDONLY | O_CLOEXEC);
      cleanup_close int ctlfd = open (ctl, O_WRONLY | O_CLOEXEC);
      char line[64];
      int n;

      w->fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (w->fd < 0 || ocfd < 0 || ctlfd < 0)
        {
          sbx_error_sys (err, "register for OOM notifications of `%s`", h->dir);
          sbx_cgroup_oom_watch_free (w);
          return -1;
        }
      n = snprintf (line, sizeof line, "%d %d", w->fd, ocfd);
      if (write (ctlfd, line, n) != n)
        {
          sbx_error_sys (err, "register for OOM notifications in `%s`", ctl);
          sbx_cgroup_oom_watch_free (w);
          return -1;
        }
    }
  *out = w;
  return 0;
}

int
sbx_cgroup_oom_watch_fd (const sbx_cgroup_oom_watch *w)
{
  return w->fd;
}

int
sbx_cgroup_oom_read (sbx_cgroup_oom_watch *w, uint64_t *n_new, sbx_error **err)
{
  *n_new = 0;
  if (w->inotify)
    {
      char buf[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
      uint64_t now = w->last;
      while (read (w->fd, buf, sizeof buf) > 0)
        ;
      if (oom_kill_count (w->dir, &now) && now > w->last)
        {
          *n_new = now - w->last;
          w->last = now;
        }
      return 0;
    }
  else
    {
      uint64_t v = 0;
      if (read (w->fd, &v, sizeof v) != sizeof v)
        {
          if (errno == EAGAIN)
            return 0;
          return sbx_error_sys (err, "read the OOM eventfd");
        }
      /* the kernel also signals the eventfd when the cgroup goes away */
      if (access (w->dir, F_OK) == 0)
        *n_new = v;
      return 0;
    }
}

void
sbx_cgroup_oom_watch_free (sbx_cgroup_oom_watch *w)
{
  if (w == NULL)
    return;
  if (w->fd >= 0)
    close (w->fd);
  free (w->dir);
  free (w);
}
