/* cgroup/systemd.c - the systemd cgroup driver (--systemd-cgroup).
 *
 * linux.cgroupsPath is "slice:prefix:name".  The container gets a transient
 * unit from systemd over D-Bus (sd-bus of libsystemd): a scope
 * "prefix-name.scope" in the slice (Delegate=yes, so the cgroup below it is
 * ours to write), or, when name ends in ".slice", that slice.  Once systemd
 * has made the unit's cgroup, the ordinary cgroupfs code drives it by path
 * (the same path in every hierarchy on v1/hybrid hosts, where systemd only
 * realizes its own controllers), and the limits systemd knows are also set
 * as unit properties so that a daemon-reload does not undo them.
 *
 * A scope must be started with a process in it, and the container's init
 * must be cloned into an existing cgroup; so a placeholder child (which
 * does nothing but wait) is the scope's first process until the init is in,
 * then it is killed (sbx_cg_systemd_release).  Rootless from a cgroup that
 * may not reach the unit's (systemd_user.c), the init itself is the first
 * process, given to systemd to place.
 *
 * libsystemd is dlopen'ed on first use: runs without --systemd-cgroup do not
 * pay for loading it.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

#define DEFAULT_SLICE "system.slice"

/* ------------------------------------------------------- cgroupsPath */

int
sbx_cg_systemd_expand_slice (const char *slice, char **out, sbx_error **err)
{
  size_t l = strlen (slice);
  cleanup_free char *base = NULL;
  char *path, *w;

  if (l <= strlen (".slice") || strcmp (slice + l - 6, ".slice") != 0 || strchr (slice, '/') != NULL
      || strpbrk (slice, "\t\n") != NULL)
    return sbx_error_set (err, EINVAL, "linux.cgroupsPath: invalid slice name `%s`", slice);
  base = xasprintf ("%.*s", (int)(l - 6), slice);
  if (strcmp (base, "-") == 0)
    {
      *out = xstrdup ("");
      return 0;
    }
  /* "a-b-c" -> /a.slice/a-b.slice/a-b-c.slice; no empty component */
  path = w = xmalloc0 (l * (l + 8) + 1);
  for (const char *c = base;;)
    {
      size_t cl = strcspn (c, "-");
      if (cl == 0)
        {
          free (path);
          return sbx_error_set (err, EINVAL, "linux.cgroupsPath: invalid slice name `%s`", slice);
        }
      w += sprintf (w, "/%.*s.slice", (int)(c + cl - base), base);
      if (c[cl] == '\0')
        break;
      c += cl + 1;
    }
  *out = path;
  return 0;
}

static bool
is_slice_unit (const char *unit)
{
  size_t l = strlen (unit);
  return l > 6 && strcmp (unit + l - 6, ".slice") == 0;
}

int
sbx_cg_systemd_parse (const char *cgroups_path, const char *id, char **slice, char **unit, sbx_error **err)
{
  cleanup_free char *dup = NULL, *expanded = NULL;
  char *c1, *c2;
  const char *sl, *prefix, *name;

  if (cgroups_path == NULL || *cgroups_path == '\0')
    {
      if (id == NULL || *id == '\0')
        return sbx_error_set (err, EINVAL, "linux.cgroupsPath: empty, and no container id");
      *slice = xstrdup (DEFAULT_SLICE);
      *unit = xasprintf ("sbxrun-%s.scope", id);
      return 0;
    }
  dup = xstrdup (cgroups_path);
  c1 = strchr (dup, ':');
  c2 = c1 ? strchr (c1 + 1, ':') : NULL;
  if (c1 == NULL || c2 == NULL || strchr (c2 + 1, ':') != NULL)
    return sbx_error_set (err, EINVAL,
                          "linux.cgroupsPath: `%s` is not of the form slice:prefix:name (as "
                          "--systemd-cgroup needs)",
                          cgroups_path);
  *c1 = *c2 = '\0';
  sl = *dup ? dup : DEFAULT_SLICE;
  prefix = c1 + 1;
  name = c2 + 1;
  if (*name == '\0' || strpbrk (cgroups_path, "/\t\n") != NULL)
    return sbx_error_set (err, EINVAL, "linux.cgroupsPath: invalid `%s` (slice:prefix:name, no `/`, a name)",
                          cgroups_path);
  if (sbx_cg_systemd_expand_slice (sl, &expanded, err) < 0)
    return sbx_error_wrap (err, "`%s`", cgroups_path);
  *slice = xstrdup (sl);
  if (is_slice_unit (name))
    *unit = xstrdup (name);
  else
    *unit = xasprintf ("%s-%s.scope", prefix, name);
  return 0;
}

bool
sbx_cg_systemd_hierarchy (const sbx_cg_hier *h)
{
  static const char *const ctrls[] = { "memory", "cpu", "cpuacct", "blkio", "devices", "pids" };
  if (h->unified || strchr (h->controllers, '=') != NULL)
    return true;
  for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++)
    if (sbx_cg_has_word (h->controllers, ctrls[i]))
      return true;
  return false;
}

int
sbx_cg_systemd_unit_path (const char *slice, const char *unit, char **out, sbx_error **err)
{
  cleanup_free char *sp = NULL;
  /* a slice is placed by its own name; a scope goes in its slice */
  if (is_slice_unit (unit))
    return sbx_cg_systemd_expand_slice (unit, out, err);
  if (sbx_cg_systemd_expand_slice (slice, &sp, err) < 0)
    return -1;
  *out = xasprintf ("%s/%s", sp, unit);
  return 0;
}

#ifdef HAVE_SYSTEMD

#include <dlfcn.h>
#include <systemd/sd-bus.h>

/* ------------------------------------------------- libsystemd, lazily */

static struct
{
  bool loaded;
  int (*open_system) (sd_bus **);
  int (*open_user) (sd_bus **);
  sd_bus *(*flush_close_unref) (sd_bus *);
  int (*new_method_call) (sd_bus *, sd_bus_message **, const char *, const char *, const char *,
                          const char *);
  int (*append) (sd_bus_message *, const char *, ...);
  int (*append_array) (sd_bus_message *, char, const void *, size_t);
  int (*open_container) (sd_bus_message *, char, const char *);
  int (*close_container) (sd_bus_message *);
  int (*call) (sd_bus *, sd_bus_message *, uint64_t, sd_bus_error *, sd_bus_message **);
  int (*call_method) (sd_bus *, const char *, const char *, const char *, const char *, sd_bus_error *,
                      sd_bus_message **, const char *, ...);
  int (*read) (sd_bus_message *, const char *, ...);
  sd_bus_message *(*message_unref) (sd_bus_message *);
  int (*match_signal) (sd_bus *, sd_bus_slot **, const char *, const char *, const char *, const char *,
                       sd_bus_message_handler_t, void *);
  sd_bus_slot *(*slot_unref) (sd_bus_slot *);
  int (*process) (sd_bus *, sd_bus_message **);
  int (*wait) (sd_bus *, uint64_t);
  int (*get_property_string) (sd_bus *, const char *, const char *, const char *, const char *,
                              sd_bus_error *, char **);
  void (*error_free) (sd_bus_error *);
} sd;

static int
load_libsystemd (sbx_error **err)
{
  void *h;

  if (sd.loaded)
    return 0;
  h = dlopen ("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    return sbx_error_set (err, ENOENT, "--systemd-cgroup: cannot load libsystemd.so.0: %s", dlerror ());
#define SYM(field, name)                                                                                     \
  if ((*(void **)&sd.field = dlsym (h, name)) == NULL)                                                       \
    return sbx_error_set (err, ENOENT, "--systemd-cgroup: libsystemd.so.0 has no %s", name);
  SYM (open_system, "sd_bus_open_system");
  SYM (open_user, "sd_bus_open_user");
  SYM (flush_close_unref, "sd_bus_flush_close_unref");
  SYM (new_method_call, "sd_bus_message_new_method_call");
  SYM (append, "sd_bus_message_append");
  SYM (append_array, "sd_bus_message_append_array");
  SYM (open_container, "sd_bus_message_open_container");
  SYM (close_container, "sd_bus_message_close_container");
  SYM (call, "sd_bus_call");
  SYM (call_method, "sd_bus_call_method");
  SYM (read, "sd_bus_message_read");
  SYM (message_unref, "sd_bus_message_unref");
  SYM (match_signal, "sd_bus_match_signal");
  SYM (slot_unref, "sd_bus_slot_unref");
  SYM (process, "sd_bus_process");
  SYM (wait, "sd_bus_wait");
  SYM (get_property_string, "sd_bus_get_property_string");
  SYM (error_free, "sd_bus_error_free");
#undef SYM
  sd.loaded = true;
  return 0;
}

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define JOB_TIMEOUT_MS 60000 /* TCG guests are slow */

struct sbx_cg_systemd
{
  sd_bus *bus;
  sd_bus_slot *slot;
  char *job;    /* the job being waited for */
  char *result; /* its JobRemoved result */
};

static void
bus_close (sbx_cg_systemd *s)
{
  if (s == NULL)
    return;
  if (s->slot)
    sd.slot_unref (s->slot);
  if (s->bus)
    sd.flush_close_unref (s->bus);
  free (s->job);
  free (s->result);
  free (s);
}

static int
on_job_removed (sd_bus_message *m, void *userdata, sd_bus_error *ret)
{
  sbx_cg_systemd *s = userdata;
  uint32_t id;
  const char *path, *unit, *result;

  (void)ret;
  if (sd.read (m, "uoss", &id, &path, &unit, &result) < 0)
    return 0;
  if (s->job && strcmp (path, s->job) == 0 && s->result == NULL)
    s->result = xstrdup (result);
  return 0;
}

static int
bus_open (bool user, sbx_cg_systemd **out, sbx_error **err)
{
  const char *which = user ? "user bus ($DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus)" : "system bus";
  sbx_cg_systemd *s;
  int r;

  if (load_libsystemd (err) < 0)
    return -1;
  s = xmalloc0 (sizeof *s);
  r = user ? sd.open_user (&s->bus) : sd.open_system (&s->bus);
  if (r < 0)
    {
      free (s);
      return sbx_error_set (
          err, -r, "--systemd-cgroup: cannot connect to systemd's %s: is %s running?", which,
          user ? "the user's systemd (user@UID.service, with loginctl enable-linger or a login)" : "systemd");
    }
  r = sd.match_signal (s->bus, &s->slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, s);
  if (r >= 0)
    {
      sd_bus_error e = SD_BUS_ERROR_NULL;
      sd_bus_message *reply = NULL;
      r = sd.call_method (s->bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &e, &reply, "");
      if (reply)
        sd.message_unref (reply);
      sd.error_free (&e);
    }
  if (r < 0)
    {
      bus_close (s);
      return sbx_error_set (err, -r, "--systemd-cgroup: systemd's %s", which);
    }
  *out = s;
  return 0;
}

/* Wait until the JobRemoved signal of the job in reply; its result in
   s->result ("done" is success).  */
static int
wait_job (sbx_cg_systemd *s, sd_bus_message *reply, const char *what, sbx_error **err)
{
  const char *job;
  long long deadline = sbx_now_ms () + JOB_TIMEOUT_MS;
  int r;

  r = sd.read (reply, "o", &job);
  if (r < 0)
    return sbx_error_set (err, -r, "%s: bad reply from systemd", what);
  free (s->job);
  free (s->result);
  s->job = xstrdup (job);
  s->result = NULL;
  while (s->result == NULL)
    {
      long long left = deadline - sbx_now_ms ();
      if (left <= 0)
        return sbx_error_set (err, ETIMEDOUT, "%s: systemd's job %s did not finish", what, s->job);
      r = sd.process (s->bus, NULL);
      if (r < 0)
        return sbx_error_set (err, -r, "%s: systemd's bus: %s", what, strerror (-r));
      if (r == 0 && s->result == NULL)
        {
          r = sd.wait (s->bus, (uint64_t)left * 1000);
          if (r < 0 && r != -EINTR)
            return sbx_error_set (err, -r, "%s: systemd's bus: %s", what, strerror (-r));
        }
    }
  return 0;
}

static int bus_err (sbx_error **err, const sd_bus_error *e, int r, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
bus_err (sbx_error **err, const sd_bus_error *e, int r, const char *fmt, ...)
{
  cleanup_free char *head = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&head, fmt, ap) < 0)
    head = NULL;
  va_end (ap);
  return sbx_error_set (err, r < 0 ? -r : EIO, "%s: %s", head ? head : "systemd",
                        e && e->message ? e->message : strerror (r < 0 ? -r : EIO));
}

/* ------------------------------------------------ properties */

/* One property in an a(sv) container already open in m.  */
static int
prop_u64 (sd_bus_message *m, const char *name, uint64_t v)
{
  return sd.append (m, "(sv)", name, "t", v);
}

/* A cpuset list ("0-3,7") as the little-endian bitmask systemd takes.  */
static int
cpuset_mask (const char *list, uint8_t **mask, size_t *len)
{
  cleanup_free char *dup = xstrdup (list);
  char *save = NULL;
  uint8_t *m = NULL;
  size_t n = 0;

  for (char *t = strtok_r (dup, ",", &save); t; t = strtok_r (NULL, ",", &save))
    {
      char *end;
      unsigned long a, b;
      while (*t == ' ' || *t == '\n')
        t++;
      if (*t == '\0')
        continue;
      a = strtoul (t, &end, 10);
      b = a;
      if (end == t)
        return -1;
      if (*end == '-')
        {
          char *s = end + 1;
          b = strtoul (s, &end, 10);
          if (end == s || b < a)
            return -1;
        }
      while (*end == ' ' || *end == '\n')
        end++;
      if (*end != '\0' || b >= 65536)
        return -1;
      if (b / 8 + 1 > n)
        {
          m = xrealloc (m, b / 8 + 1);
          memset (m + n, 0, b / 8 + 1 - n);
          n = b / 8 + 1;
        }
      for (unsigned long i = a; i <= b; i++)
        m[i / 8] |= (uint8_t)(1u << (i % 8));
    }
  *mask = m;
  *len = n;
  return 0;
}

typedef struct
{
  const char *field; /* linux.resources.<field> */
  const char *name;  /* the unit property */
  char type;         /* 't', 'y' (a byte array), 'd' (device path, value pairs), 's' (the string
                        in shown) or 'A' (DeviceAllow: path, access pairs in devs) */
  uint64_t u;
  uint8_t *mask;
  size_t masklen;
  char *shown; /* the value for messages */
  char **dev;  /* 'd': /dev/block/MAJ:MIN ... */
  uint64_t *val;
  size_t ndev;
  sbx_cg_sd_device *devs;
} sd_prop;

static void
props_free (sd_prop *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (p[i].mask);
      free (p[i].shown);
      for (size_t k = 0; p[i].dev && k < p[i].ndev; k++)
        free (p[i].dev[k]);
      sbx_cg_sd_devices_free (p[i].devs, p[i].devs ? p[i].ndev : 0);
      free (p[i].dev);
      free (p[i].val);
    }
  free (p);
}

static void
add_u64 (sd_prop **p, size_t *n, const char *field, const char *name, uint64_t v)
{
  *p = xrealloc (*p, (*n + 1) * sizeof **p);
  (*p)[*n]
      = (sd_prop){ field, name, 't', v, NULL, 0, xasprintf ("%llu", (unsigned long long)v), NULL, NULL, 0 };
  (*n)++;
}

static int
add_mask (sd_prop **p, size_t *n, const char *field, const char *name, const char *list, sbx_error **err)
{
  uint8_t *m = NULL;
  size_t len = 0;
  if (cpuset_mask (list, &m, &len) < 0)
    return sbx_error_set (err, EINVAL, "linux.resources.%s: invalid list `%s`", field, list);
  *p = xrealloc (*p, (*n + 1) * sizeof **p);
  (*p)[*n] = (sd_prop){ field, name, 'y', 0, m, len, xstrdup (list), NULL, NULL, 0 };
  (*n)++;
  return 0;
}

/* blockIO throttle lists -> IO{Read,Write}{Bandwidth,IOPS}Max (a rate of 0
   is "max").  */
static void
add_throttle (sd_prop **p, size_t *n, const char *field, const char *name, oci_blkio_throttle *const *arr,
              size_t len)
{
  sd_prop *q;
  if (len == 0)
    return;
  *p = xrealloc (*p, (*n + 1) * sizeof **p);
  q = &(*p)[(*n)++];
  *q = (sd_prop){
    field, name, 'd', 0, NULL, 0, NULL, xmalloc0 (len * sizeof (char *)), xmalloc0 (len * sizeof (uint64_t)),
    len
  };
  for (size_t i = 0; i < len; i++)
    {
      q->dev[i] = xasprintf ("/dev/block/%lld:%lld", (long long)arr[i]->major, (long long)arr[i]->minor);
      q->val[i] = arr[i]->rate ? arr[i]->rate : UINT64_MAX;
    }
  q->shown = xasprintf ("%s %llu%s", q->dev[0], (unsigned long long)q->val[0], len > 1 ? " ..." : "");
}

/* devices -> DevicePolicy= and DeviceAllow= (cgroup/systemd_devices.c):
   the list is emptied first, as a DeviceAllow= with entries adds to it.  */
static void
add_devices (sd_prop **p, size_t *n, oci_device_cgroup *const *rules, size_t len)
{
  sbx_cg_sd_device *v = NULL;
  size_t nv = 0;
  bool strict = sbx_cg_systemd_devices (rules, len, NULL, &v, &nv);

  /* On v1 systemd's list, written again at each realize, is the cgroup's
     only one: a block list it cannot say is left to ours alone
     (sbx_cg_systemd_set refuses it for a unit that has an allow list).  */
  if (!strict && sbx_cgroup_host_mode () != SBX_CGROUP_V2)
    {
      sbx_cg_sd_devices_free (v, nv);
      return;
    }
  *p = xrealloc (*p, (*n + 3) * sizeof **p);
  (*p)[(*n)++] = (sd_prop){ "devices", "DevicePolicy", 's', .shown = xstrdup (strict ? "strict" : "auto") };
  (*p)[(*n)++] = (sd_prop){ "devices", "DeviceAllow", 'A', .shown = xstrdup ("(empty)") };
  if (nv)
    (*p)[(*n)++]
        = (sd_prop){ "devices", "DeviceAllow",
                     'A',       .shown = xasprintf ("%s %s%s", v[0].path, v[0].access, nv > 1 ? " ..." : ""),
                     .devs = v, .ndev = nv };
}

/* linux.resources -> the unit properties systemd has for them.  What it has
   none for (rdma, hugetlb, unified, cpu.idle, realtime, weightDevice) is
   only written into the cgroup.  */
static int
props_from (const oci_resources *r, bool slice, sd_prop **out, size_t *n, sbx_error **err)
{
  sd_prop *p = NULL;

  *n = 0;
  if (r->memory)
    {
      const oci_memory *m = r->memory;
      if (m->has_limit && m->limit != 0)
        add_u64 (&p, n, "memory.limit", "MemoryMax", m->limit < 0 ? UINT64_MAX : (uint64_t)m->limit);
      if (m->has_reservation)
        add_u64 (&p, n, "memory.reservation", "MemoryLow",
                 m->reservation < 0 ? UINT64_MAX : (uint64_t)m->reservation);
      if (m->has_swap && sbx_cgroup_host_mode () == SBX_CGROUP_V2)
        {
          cleanup_error sbx_error *e = NULL;
          int64_t sw;
          int k = sbx_cg_swap_v2 (m, &sw, &e);
          if (k < 0)
            {
              props_free (p, *n);
              *err = steal_ptr (e);
              return -1;
            }
          if (k > 0)
            add_u64 (&p, n, "memory.swap", "MemorySwapMax", sw < 0 ? UINT64_MAX : (uint64_t)sw);
        }
    }
  if (r->cpu)
    {
      const oci_cpu *c = r->cpu;
      if (c->has_shares && c->shares)
        add_u64 (&p, n, "cpu.shares", "CPUWeight", sbx_cg_shares_to_weight (c->shares));
      if (c->has_quota && !slice)
        {
          uint64_t period = c->has_period && c->period ? c->period : 100000;
          /* quota per period -> per second; runc rounds up to whole 10 ms */
          uint64_t persec = c->quota > 0 ? (uint64_t)c->quota * 1000000 / period : UINT64_MAX;
          if (persec != UINT64_MAX && persec % 10000)
            persec = (persec / 10000 + 1) * 10000;
          add_u64 (&p, n, "cpu.quota", "CPUQuotaPerSecUSec", persec);
        }
      if (c->has_period && c->period)
        add_u64 (&p, n, "cpu.period", "CPUQuotaPeriodUSec", c->period);
      if (c->cpus && *c->cpus && add_mask (&p, n, "cpu.cpus", "AllowedCPUs", c->cpus, err) < 0)
        goto fail;
      if (c->mems && *c->mems && add_mask (&p, n, "cpu.mems", "AllowedMemoryNodes", c->mems, err) < 0)
        goto fail;
    }
  if (r->pids && r->pids->limit != 0)
    add_u64 (&p, n, "pids.limit", "TasksMax", r->pids->limit < 0 ? UINT64_MAX : (uint64_t)r->pids->limit);
  if (r->block_io)
    {
      const oci_blkio *b = r->block_io;
      if (b->has_weight && b->weight)
        add_u64 (&p, n, "blockIO.weight", "IOWeight", sbx_cg_blkio_to_io_weight (b->weight));
      add_throttle (&p, n, "blockIO.throttleReadBpsDevice", "IOReadBandwidthMax", b->throttle_read_bps_device,
                    b->throttle_read_bps_device_len);
      add_throttle (&p, n, "blockIO.throttleWriteBpsDevice", "IOWriteBandwidthMax",
                    b->throttle_write_bps_device, b->throttle_write_bps_device_len);
      add_throttle (&p, n, "blockIO.throttleReadIOPSDevice", "IOReadIOPSMax", b->throttle_read_iops_device,
                    b->throttle_read_iops_device_len);
      add_throttle (&p, n, "blockIO.throttleWriteIOPSDevice", "IOWriteIOPSMax", b->throttle_write_iops_device,
                    b->throttle_write_iops_device_len);
    }
  if (r->devices_len)
    add_devices (&p, n, r->devices, r->devices_len);
  *out = p;
  return 0;
fail:
  props_free (p, *n);
  return -1;
}

static int
append_props (sd_bus_message *m, const sd_prop *p, size_t n)
{
  int r = 0;
  for (size_t i = 0; i < n && r >= 0; i++)
    {
      if (p[i].type == 't')
        r = prop_u64 (m, p[i].name, p[i].u);
      else if (p[i].type == 's')
        r = sd.append (m, "(sv)", p[i].name, "s", p[i].shown);
      else if (p[i].type == 'A')
        {
          if ((r = sd.open_container (m, 'r', "sv")) >= 0 && (r = sd.append (m, "s", p[i].name)) >= 0
              && (r = sd.open_container (m, 'v', "a(ss)")) >= 0
              && (r = sd.open_container (m, 'a', "(ss)")) >= 0)
            for (size_t k = 0; k < p[i].ndev && r >= 0; k++)
              r = sd.append (m, "(ss)", p[i].devs[k].path, p[i].devs[k].access);
          if (r >= 0 && (r = sd.close_container (m)) >= 0 && (r = sd.close_container (m)) >= 0)
            r = sd.close_container (m);
        }
      else if (p[i].type == 'd')
        {
          if ((r = sd.open_container (m, 'r', "sv")) >= 0 && (r = sd.append (m, "s", p[i].name)) >= 0
              && (r = sd.open_container (m, 'v', "a(st)")) >= 0
              && (r = sd.open_container (m, 'a', "(st)")) >= 0)
            for (size_t k = 0; k < p[i].ndev && r >= 0; k++)
              r = sd.append (m, "(st)", p[i].dev[k], p[i].val[k]);
          if (r >= 0 && (r = sd.close_container (m)) >= 0 && (r = sd.close_container (m)) >= 0)
            r = sd.close_container (m);
        }
      else if ((r = sd.open_container (m, 'r', "sv")) >= 0 && (r = sd.append (m, "s", p[i].name)) >= 0
               && (r = sd.open_container (m, 'v', "ay")) >= 0
               && (r = sd.append_array (m, 'y', p[i].mask, p[i].masklen)) >= 0
               && (r = sd.close_container (m)) >= 0)
        r = sd.close_container (m);
    }
  return r;
}

static int
set_props (sbx_cg_systemd *s, const char *unit, const sd_prop *p, size_t n, sd_bus_error *e)
{
  sd_bus_message *m = NULL, *reply = NULL;
  int r;

  r = sd.new_method_call (s->bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "SetUnitProperties");
  if (r >= 0)
    r = sd.append (m, "sb", unit, 1);
  if (r >= 0)
    r = sd.open_container (m, 'a', "(sv)");
  if (r >= 0)
    r = append_props (m, p, n);
  if (r >= 0)
    r = sd.close_container (m);
  if (r >= 0)
    r = sd.call (s->bus, m, 0, e, &reply);
  if (reply)
    sd.message_unref (reply);
  if (m)
    sd.message_unref (m);
  return r;
}

static int check_v1_block_list (sbx_cg_systemd *s, const char *unit, const oci_resources *r, sbx_error **err);

int
sbx_cg_systemd_set (sbx_cg_systemd *s, const char *unit, const oci_resources *r, sbx_error **err)
{
  sd_prop *p = NULL;
  size_t n = 0;
  sd_bus_error e = SD_BUS_ERROR_NULL;
  int rc;

  if (check_v1_block_list (s, unit, r, err) < 0 || props_from (r, is_slice_unit (unit), &p, &n, err) < 0)
    return -1;
  if (n == 0)
    return 0;
  rc = set_props (s, unit, p, n, &e);
  if (rc < 0)
    {
      /* find the property systemd refuses, to name it */
      for (size_t i = 0; i < n; i++)
        {
          sd_bus_error e1 = SD_BUS_ERROR_NULL;
          if (set_props (s, unit, &p[i], 1, &e1) < 0)
            {
              cleanup_free char *head = xasprintf ("linux.resources.%s: systemd refused %s=%s for %s",
                                                   p[i].field, p[i].name, p[i].shown, unit);
              sbx_error_set (err, EINVAL, "%s: %s", head, e1.message ? e1.message : strerror (-rc));
              sd.error_free (&e1);
              sd.error_free (&e);
              props_free (p, n);
              return -1;
            }
        }
      bus_err (err, &e, rc, "systemd refused the properties of %s", unit);
      sd.error_free (&e);
      props_free (p, n);
      return -1;
    }
  props_free (p, n);
  return 0;
}

/* -------------------------------------------------------- units */

static pid_t
spawn_hold (sbx_error **err)
{
  pid_t pid = fork ();
  if (pid < 0)
    return sbx_error_sys (err, "--systemd-cgroup: fork");
  if (pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      syscall (SYS_close_range, 0, ~0U, 0);
      for (;;)
        pause ();
    }
  return pid;
}

void
sbx_cg_systemd_release (sbx_cgroup *cg)
{
  if (cg->hold > 0)
    {
      kill (cg->hold, SIGKILL);
      while (waitpid (cg->hold, NULL, 0) < 0 && errno == EINTR)
        ;
      cg->hold = 0;
    }
}

static int
start_unit (sbx_cg_systemd *s, const char *id, const char *slice, const char *unit, pid_t hold,
            sbx_error **err)
{
  sd_bus_message *m = NULL, *reply = NULL;
  sd_bus_error e = SD_BUS_ERROR_NULL;
  bool is_slice = hold <= 0;
  cleanup_free char *desc = xasprintf ("sbxrun container %s", id);
  int r;

  r = sd.new_method_call (s->bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
  if (r >= 0)
    r = sd.append (m, "ss", unit, "fail");
  if (r >= 0)
    r = sd.open_container (m, 'a', "(sv)");
  if (r >= 0)
    r = sd.append (m, "(sv)", "Description", "s", desc);
  if (r >= 0 && is_slice)
    r = sd.append (m, "(sv)", "Wants", "as", 1, slice);
  if (r >= 0 && !is_slice)
    r = sd.append (m, "(sv)(sv)(sv)", "Slice", "s", slice, "Delegate", "b", 1, "PIDs", "au", 1,
                   (uint32_t)hold);
  /* On v1 a delegated unit gets only the controllers it asks for (as runc
     does, all of systemd's but devices, whose rules come with the
     resources): systemd makes their cgroups with the scope and never
     removes them under us.  */
  if (r >= 0 && sbx_cgroup_host_mode () != SBX_CGROUP_V2)
    r = sd.append (m, "(sv)(sv)(sv)(sv)", "MemoryAccounting", "b", 1, "CPUAccounting", "b", 1,
                   "BlockIOAccounting", "b", 1, "TasksAccounting", "b", 1);
  if (r >= 0)
    r = sd.append (m, "(sv)", "DefaultDependencies", "b", 0);
  if (r >= 0)
    r = sd.close_container (m);
  if (r >= 0)
    r = sd.append (m, "a(sa(sv))", 0);
  if (r >= 0)
    r = sd.call (s->bus, m, 0, &e, &reply);
  sd.message_unref (m);
  if (r < 0 && e.name && strcmp (e.name, "org.freedesktop.systemd1.UnitExists") == 0)
    {
      sbx_error_set (err, EEXIST,
                     "--systemd-cgroup: unit `%s` exists already (another container's, or someone "
                     "else's): sbxrun leaves it alone; name another unit in linux.cgroupsPath",
                     unit);
      sd.error_free (&e);
      return -1;
    }
  if (r < 0)
    {
      bus_err (err, &e, r, "--systemd-cgroup: systemd refused to start unit `%s` in `%s`", unit, slice);
      sd.error_free (&e);
      return -1;
    }
  r = wait_job (s, reply, "--systemd-cgroup: start unit", err);
  sd.message_unref (reply);
  if (r < 0)
    return -1;
  if (strcmp (s->result, "done") != 0)
    return sbx_error_set (err, EIO, "--systemd-cgroup: starting unit `%s` in `%s`: job %s", unit, slice,
                          s->result);
  return 0;
}

/* A string property of the unit's Scope or Slice interface.  */
static int
unit_string (sbx_cg_systemd *s, const char *unit, const char *prop, char **out, sd_bus_error *e)
{
  sd_bus_message *reply = NULL;
  const char *obj;
  bool is_slice = is_slice_unit (unit);
  int r;

  *out = NULL;
  r = sd.call_method (s->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", e, &reply, "s", unit);
  if (r >= 0)
    r = sd.read (reply, "o", &obj);
  if (r >= 0)
    r = sd.get_property_string (
        s->bus, SD_DEST, obj, is_slice ? "org.freedesktop.systemd1.Slice" : "org.freedesktop.systemd1.Scope",
        prop, e, out);
  if (reply)
    sd.message_unref (reply);
  return r;
}

static int
unit_cgroup (sbx_cg_systemd *s, const char *unit, char **out, sbx_error **err)
{
  sd_bus_error e = SD_BUS_ERROR_NULL;
  int r = unit_string (s, unit, "ControlGroup", out, &e);

  if (r < 0 || *out == NULL || **out != '/')
    {
      bus_err (err, &e, r, "--systemd-cgroup: the cgroup of unit `%s`", unit);
      sd.error_free (&e);
      return -1;
    }
  return 0;
}

/* On v1 a block list goes to a unit only if systemd filters nothing
   there: its allow list, written again at each realize, would be the
   cgroup's only one, and replacing it by DevicePolicy=auto without entries
   would make systemd move the processes out of the devices cgroup.  */
static int
check_v1_block_list (sbx_cg_systemd *s, const char *unit, const oci_resources *r, sbx_error **err)
{
  cleanup_free char *policy = NULL;
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sbx_cg_sd_device *v = NULL;
  size_t nv = 0;
  bool strict;
  int rc;

  if (r->devices_len == 0 || sbx_cgroup_host_mode () == SBX_CGROUP_V2)
    return 0;
  strict = sbx_cg_systemd_devices (r->devices, r->devices_len, NULL, &v, &nv);
  sbx_cg_sd_devices_free (v, nv);
  if (strict)
    return 0;
  rc = unit_string (s, unit, "DevicePolicy", &policy, &e);
  sd.error_free (&e);
  if (rc >= 0 && policy && strcmp (policy, "auto") == 0)
    return 0;
  return sbx_error_set (err, EOPNOTSUPP,
                        "linux.resources.devices: a block list (no deny-all rule first) cannot replace the "
                        "allow list of unit `%s` (DevicePolicy=%s) on a cgroup v1 host, where systemd's list "
                        "is the cgroup's only one",
                        unit, policy ? policy : "unknown");
}

/* Stop the unit and wait until systemd has forgotten it.  */
static int
stop_unit (sbx_cg_systemd *s, const char *unit, sbx_error **err)
{
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message *reply = NULL;
  long long deadline;
  int r;

  r = sd.call_method (s->bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &e, &reply, "ss", unit, "replace");
  if (r < 0)
    {
      bool gone = e.name && strcmp (e.name, "org.freedesktop.systemd1.NoSuchUnit") == 0;
      if (!gone)
        bus_err (err, &e, r, "stop unit `%s`", unit);
      sd.error_free (&e);
      return gone ? 0 : -1;
    }
  r = wait_job (s, reply, "stop unit", err);
  sd.message_unref (reply);
  if (r < 0)
    return -1;
  reply = NULL;
  sd.call_method (s->bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", &e, &reply, "s", unit);
  if (reply)
    sd.message_unref (reply);
  sd.error_free (&e);
  for (deadline = sbx_now_ms () + SBX_CG_KILL_TIMEOUT_MS;;)
    {
      bool gone;
      reply = NULL;
      r = sd.call_method (s->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply, "s", unit);
      gone = r < 0 && e.name && strcmp (e.name, "org.freedesktop.systemd1.NoSuchUnit") == 0;
      if (reply)
        sd.message_unref (reply);
      sd.error_free (&e);
      if (gone)
        return 0;
      if (sbx_now_ms () > deadline)
        return sbx_error_set (err, ETIMEDOUT, "stop unit `%s`: still loaded after it stopped", unit);
      sbx_cg_sleep_ms (10);
    }
}

int
sbx_cg_systemd_start (sbx_cgroup *cg, pid_t init, sbx_error **err)
{
  cleanup_free char *path = NULL;

  if (cg->bus == NULL && bus_open (cg->user_bus, &cg->bus, err) < 0)
    return -1;
  if (init <= 0 && !is_slice_unit (cg->unit) && (cg->hold = spawn_hold (err)) < 0)
    {
      cg->hold = 0;
      return -1;
    }
  if (start_unit (cg->bus, cg->id, cg->slice, cg->unit, init > 0 ? init : cg->hold, err) < 0)
    {
      if (err && *err && (*err)->errno_ == EEXIST)
        {
          cg->foreign = true;
          sbx_cg_systemd_release (cg);
          return -1;
        }
      if (init > 0)
        sbx_error_wrap (err,
                        "--systemd-cgroup (rootless): sbxrun runs in `%s`, from where the user may not "
                        "move processes into `%s`: the user manager was asked to move the container "
                        "process %d into unit `%s` (through the system manager) and could not",
                        cg->placed_from, cg->unit_path, (int)init, cg->unit);
      goto fail;
    }
  if (unit_cgroup (cg->bus, cg->unit, &path, err) < 0)
    goto fail;
  /* the path recorded in the journal (plan) is the one to clean up */
  if (strcmp (path, cg->unit_path) != 0)
    {
      sbx_error_set (err, EIO, "--systemd-cgroup: systemd put unit `%s` at `%s`, not at `%s`", cg->unit, path,
                     cg->unit_path);
      goto fail;
    }
  sbx_debug ("cgroup: systemd unit %s, cgroup %s", cg->unit, path);
  return 0;
fail:
  stop_unit (cg->bus, cg->unit, NULL);
  sbx_cg_systemd_release (cg);
  return -1;
}

int
sbx_cg_systemd_attach (sbx_cg_systemd *s, const char *unit, pid_t pid, sbx_error **err)
{
  sd_bus_message *m = NULL, *reply = NULL;
  sd_bus_error e = SD_BUS_ERROR_NULL;
  int r;

  r = sd.new_method_call (s->bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "AttachProcessesToUnit");
  if (r >= 0)
    r = sd.append (m, "ss", unit, "");
  if (r >= 0)
    r = sd.append (m, "au", 1, (uint32_t)pid);
  if (r >= 0)
    r = sd.call (s->bus, m, 0, &e, &reply);
  if (m)
    sd.message_unref (m);
  if (reply)
    sd.message_unref (reply);
  if (r < 0)
    {
      bus_err (err, &e, r, "systemd refused to move process %d into unit `%s`", (int)pid, unit);
      sd.error_free (&e);
      return -1;
    }
  return 0;
}

int
sbx_cg_systemd_open (bool user, sbx_cg_systemd **out, sbx_error **err)
{
  return bus_open (user, out, err);
}

int
sbx_cg_systemd_stop (sbx_cg_systemd *s, const char *unit, sbx_error **err)
{
  return stop_unit (s, unit, err);
}

void
sbx_cg_systemd_close (sbx_cg_systemd *s)
{
  bus_close (s);
}

#else /* !HAVE_SYSTEMD */

int
sbx_cg_systemd_start (sbx_cgroup *cg, pid_t init, sbx_error **err)
{
  (void)cg, (void)init;
  return sbx_error_set (err, ENOTSUP,
                        "--systemd-cgroup: this sbxrun was built without libsystemd (configure "
                        "--with-systemd)");
}

int
sbx_cg_systemd_open (bool user, sbx_cg_systemd **out, sbx_error **err)
{
  (void)out, (void)user;
  return sbx_error_set (err, ENOTSUP, "--systemd-cgroup: this sbxrun was built without libsystemd");
}

int
sbx_cg_systemd_set (sbx_cg_systemd *s, const char *unit, const oci_resources *r, sbx_error **err)
{
  (void)s, (void)unit, (void)r, (void)err;
  return 0;
}

int
sbx_cg_systemd_attach (sbx_cg_systemd *s, const char *unit, pid_t pid, sbx_error **err)
{
  (void)s, (void)unit, (void)pid;
  return sbx_error_set (err, ENOTSUP, "--systemd-cgroup: this sbxrun was built without libsystemd");
}

int
sbx_cg_systemd_stop (sbx_cg_systemd *s, const char *unit, sbx_error **err)
{
  (void)s, (void)unit, (void)err;
  return 0;
}

void
sbx_cg_systemd_close (sbx_cg_systemd *s)
{
  (void)s;
}

void
sbx_cg_systemd_release (sbx_cgroup *cg)
{
  (void)cg;
}

#endif
