/* sched.c - process.scheduler, process.ioPriority, linux.personality and
 * linux.memoryPolicy (see process.h).  Every rule the kernel would apply is
 * checked at create, so that a bad value fails there naming the field, not
 * as a bare EINVAL from the middle of the setup.  */
#include <config.h>
#include "process/process.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

/* The first line of a /proc or /sys file, without its newline.  */
static char *
first_line (char *s)
{
  s[strcspn (s, "\n")] = '\0';
  return s;
}

/* ---------------------------------------------------------------- scheduler */

/* The kernel's struct sched_attr, first version (48 bytes): glibc before
   2.41 has no wrapper.  */
struct sbx_sched_attr
{
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime, deadline, period;
};

#define SBX_SCHED_DEADLINE 6
#define SBX_SCHED_FLAG_RESET_ON_FORK 0x01
#define SBX_SCHED_FLAG_RECLAIM 0x02
#define SBX_SCHED_FLAG_DL_OVERRUN 0x04
#define SBX_SCHED_FLAG_KEEP_POLICY 0x08
#define SBX_SCHED_FLAG_KEEP_PARAMS 0x10
/* DL_SCALE: the kernel keeps runtimes in units of 2^10 ns.  */
#define SBX_DL_MIN_RUNTIME 1024ULL

static const struct
{
  const char *name;
  int policy; /* -1: named by the spec, absent from Linux */
} policies[] = {
  { "SCHED_OTHER", 0 },
  { "SCHED_FIFO", 1 },
  { "SCHED_RR", 2 },
  { "SCHED_BATCH", 3 },
  { "SCHED_ISO", -1 },
  { "SCHED_IDLE", 5 },
  { "SCHED_DEADLINE", SBX_SCHED_DEADLINE },
};

static const struct
{
  const char *name;
  uint64_t flag; /* 0: needs fields the spec does not have */
} sched_flags[] = {
  { "SCHED_FLAG_RESET_ON_FORK", SBX_SCHED_FLAG_RESET_ON_FORK },
  { "SCHED_FLAG_RECLAIM", SBX_SCHED_FLAG_RECLAIM },
  { "SCHED_FLAG_DL_OVERRUN", SBX_SCHED_FLAG_DL_OVERRUN },
  { "SCHED_FLAG_KEEP_POLICY", SBX_SCHED_FLAG_KEEP_POLICY },
  { "SCHED_FLAG_KEEP_PARAMS", SBX_SCHED_FLAG_KEEP_PARAMS },
  { "SCHED_FLAG_UTIL_CLAMP_MIN", 0 },
  { "SCHED_FLAG_UTIL_CLAMP_MAX", 0 },
};

/* kernel.sched_deadline_period_{min,max}_us, in ns; the kernel's defaults
   when unreadable.  */
static uint64_t
dl_period_limit (const char *name, uint64_t dflt_us)
{
  cleanup_free char *path = xasprintf ("/proc/sys/kernel/sched_deadline_period_%s_us", name);
  cleanup_free char *text = NULL;
  long long v;
  if (sbx_read_file (path, 64, &text, NULL, NULL) == 0 && sbx_parse_int64 (first_line (text), &v) == 0
      && v >= 0)
    return (uint64_t)v * 1000;
  return dflt_us * 1000;
}

/* Validate and fill *a; the rules are the kernel's (sched_setattr(2) and
   __checkparam_dl).  */
static int
sched_attr_make (const oci_scheduler *s, struct sbx_sched_attr *a, sbx_error **err)
{
  int policy = -2;
  for (size_t i = 0; i < sizeof policies / sizeof *policies; i++)
    if (strcmp (policies[i].name, s->policy) == 0)
      policy = policies[i].policy;
  if (policy == -2)
    return sbx_error_set (err, EINVAL,
                          "process.scheduler.policy: unknown policy `%s` (want SCHED_OTHER, SCHED_FIFO, "
                          "SCHED_RR, SCHED_BATCH, SCHED_IDLE or SCHED_DEADLINE)",
                          s->policy);
  if (policy < 0)
    return sbx_error_set (err, ENOTSUP, "process.scheduler.policy: `%s` is not implemented by Linux",
                          s->policy);
  *a = (struct sbx_sched_attr){ .size = sizeof *a, .policy = (uint32_t)policy };
  for (size_t i = 0; i < s->flags_len; i++)
    {
      size_t j;
      for (j = 0; j < sizeof sched_flags / sizeof *sched_flags; j++)
        if (strcmp (sched_flags[j].name, s->flags[i]) == 0)
          break;
      if (j == sizeof sched_flags / sizeof *sched_flags)
        return sbx_error_set (err, EINVAL, "process.scheduler.flags[%zu]: unknown flag `%s`", i, s->flags[i]);
      if (sched_flags[j].flag == 0)
        return sbx_error_set (err, ENOTSUP,
                              "process.scheduler.flags[%zu]: `%s` needs a utilization clamp value, which "
                              "runtime-spec has no field for",
                              i, s->flags[i]);
      if ((sched_flags[j].flag & (SBX_SCHED_FLAG_RECLAIM | SBX_SCHED_FLAG_DL_OVERRUN))
          && policy != SBX_SCHED_DEADLINE)
        return sbx_error_set (err, EINVAL, "process.scheduler.flags[%zu]: `%s` is for SCHED_DEADLINE only", i,
                              s->flags[i]);
      a->flags |= sched_flags[j].flag;
    }
  if (s->has_nice && (s->nice < -20 || s->nice > 19))
    return sbx_error_set (err, EINVAL, "process.scheduler.nice: %d not in [-20, 19]", s->nice);
  if (s->has_nice && s->nice != 0 && policy != 0 && policy != 3)
    return sbx_error_set (err, EINVAL,
                          "process.scheduler.nice: %d has no effect under %s (only SCHED_OTHER and "
                          "SCHED_BATCH use it)",
                          s->nice, s->policy);
  a->nice = s->has_nice ? s->nice : 0;
  if (policy == 1 || policy == 2)
    {
      if (!s->has_priority || s->priority < 1 || s->priority > 99)
        return sbx_error_set (err, EINVAL,
                              "process.scheduler.priority: %s needs a priority in [1, 99], not %d", s->policy,
                              s->has_priority ? s->priority : 0);
    }
  else if (s->has_priority && s->priority != 0)
    return sbx_error_set (err, EINVAL, "process.scheduler.priority: must be 0 under %s, not %d", s->policy,
                          s->priority);
  a->priority = (uint32_t)(s->has_priority ? s->priority : 0);
  if (policy != SBX_SCHED_DEADLINE)
    {
      if ((s->has_runtime && s->runtime) || (s->has_deadline && s->deadline) || (s->has_period && s->period))
        return sbx_error_set (err, EINVAL,
                              "process.scheduler: runtime, deadline and period are for SCHED_DEADLINE only "
                              "(policy is %s)",
                              s->policy);
      return 0;
    }
  a->runtime = s->runtime;
  a->deadline = s->deadline;
  a->period = s->period;
  if (a->deadline == 0)
    return sbx_error_set (err, EINVAL, "process.scheduler.deadline: SCHED_DEADLINE needs a deadline (ns)");
  if (a->runtime < SBX_DL_MIN_RUNTIME)
    return sbx_error_set (err, EINVAL,
                          "process.scheduler.runtime: %llu ns is below the kernel's minimum of %llu ns",
                          (unsigned long long)a->runtime, SBX_DL_MIN_RUNTIME);
  if ((a->deadline | a->period) >> 63)
    return sbx_error_set (err, EINVAL, "process.scheduler: deadline and period must be below 2^63 ns");
  if (a->runtime > a->deadline)
    return sbx_error_set (err, EINVAL, "process.scheduler: runtime %llu ns is above deadline %llu ns",
                          (unsigned long long)a->runtime, (unsigned long long)a->deadline);
  if (a->period && a->deadline > a->period)
    return sbx_error_set (err, EINVAL, "process.scheduler: deadline %llu ns is above period %llu ns",
                          (unsigned long long)a->deadline, (unsigned long long)a->period);
  {
    uint64_t period = a->period ? a->period : a->deadline;
    uint64_t lo = dl_period_limit ("min", 100), hi = dl_period_limit ("max", 1ULL << 22);
    if (period < lo || period > hi)
      return sbx_error_set (err, EINVAL,
                            "process.scheduler.period: %llu ns not in [%llu, %llu] ns "
                            "(kernel.sched_deadline_period_min_us/max_us)",
                            (unsigned long long)period, (unsigned long long)lo, (unsigned long long)hi);
  }
  return 0;
}

/* ---------------------------------------------------------------- ioPriority */

#define SBX_IOPRIO_WHO_PROCESS 1
#define SBX_IOPRIO_CLASS_SHIFT 13

static int
ioprio_make (const oci_io_priority *io, int *value, sbx_error **err)
{
  static const char *const classes[] = { "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE" };
  int cls = 0;
  for (int i = 0; i < 3; i++)
    if (strcmp (io->class_, classes[i]) == 0)
      cls = i + 1;
  if (cls == 0)
    return sbx_error_set (err, EINVAL,
                          "process.ioPriority.class: unknown class `%s` (want IOPRIO_CLASS_RT, "
                          "IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)",
                          io->class_);
  if (io->priority < 0 || io->priority > 7)
    return sbx_error_set (err, EINVAL, "process.ioPriority.priority: %d not in [0, 7]", io->priority);
  if (cls == 3 && io->priority != 0)
    return sbx_error_set (
        err, EINVAL, "process.ioPriority.priority: IOPRIO_CLASS_IDLE has no levels (%d given)", io->priority);
  *value = (cls << SBX_IOPRIO_CLASS_SHIFT) | io->priority;
  return 0;
}

int
sbx_process_sched_validate (const oci_process *p, sbx_error **err)
{
  struct sbx_sched_attr a;
  int v;
  if (p->scheduler && sched_attr_make (p->scheduler, &a, err) < 0)
    return -1;
  if (p->io_priority && ioprio_make (p->io_priority, &v, err) < 0)
    return -1;
  return sbx_process_cpu_affinity_validate (p, err);
}

int
sbx_process_sched_apply_to (pid_t pid, const oci_process *p, sbx_error **err)
{
  struct sbx_sched_attr a;
  int v;
  if (p->scheduler)
    {
      if (sched_attr_make (p->scheduler, &a, err) < 0)
        return -1;
      if (syscall (SYS_sched_setattr, pid, &a, 0) < 0)
        {
          int e = errno;
          return sbx_error_set (err, e, "process.scheduler (%s): sched_setattr%s", p->scheduler->policy,
                                e == EPERM && (a.policy == 1 || a.policy == 2)
                                    ? " (a realtime policy needs a realtime budget in the container's cpu "
                                      "cgroup: linux.resources.cpu.realtimeRuntime)"
                                : e == EBUSY ? " (no SCHED_DEADLINE bandwidth left on this host)"
                                             : "");
        }
    }
  if (p->io_priority)
    {
      if (ioprio_make (p->io_priority, &v, err) < 0)
        return -1;
      if (syscall (SYS_ioprio_set, SBX_IOPRIO_WHO_PROCESS, pid, v) < 0)
        return sbx_error_sys (err, "process.ioPriority (%s): ioprio_set", p->io_priority->class_);
    }
  return 0;
}

/* ---------------------------------------------------------------- personality */

static const struct
{
  const char *name;
  unsigned long flag;
} personality_flags[] = {
  { "ADDR_COMPAT_LAYOUT", ADDR_COMPAT_LAYOUT }, { "ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE },
  { "ADDR_LIMIT_32BIT", ADDR_LIMIT_32BIT },     { "ADDR_LIMIT_3GB", ADDR_LIMIT_3GB },
  { "FDPIC_FUNCPTRS", FDPIC_FUNCPTRS },         { "MMAP_PAGE_ZERO", MMAP_PAGE_ZERO },
  { "READ_IMPLIES_EXEC", READ_IMPLIES_EXEC },   { "SHORT_INODE", SHORT_INODE },
  { "STICKY_TIMEOUTS", STICKY_TIMEOUTS },       { "UNAME26", UNAME26 },
  { "WHOLE_SECONDS", WHOLE_SECONDS },
};

static int
personality_make (const oci_personality *pe, unsigned long *out, sbx_error **err)
{
  if (strcmp (pe->domain, "LINUX") == 0)
    *out = PER_LINUX;
  else if (strcmp (pe->domain, "LINUX32") == 0)
    *out = PER_LINUX32;
  else
    return sbx_error_set (
        err, EINVAL, "linux.personality.domain: unknown domain `%s` (want LINUX or LINUX32)", pe->domain);
  for (size_t i = 0; i < pe->flags_len; i++)
    {
      size_t j;
      for (j = 0; j < sizeof personality_flags / sizeof *personality_flags; j++)
        if (strcmp (personality_flags[j].name, pe->flags[i]) == 0)
          break;
      if (j == sizeof personality_flags / sizeof *personality_flags)
        return sbx_error_set (err, EINVAL, "linux.personality.flags[%zu]: unknown flag `%s` (personality(2))",
                              i, pe->flags[i]);
      *out |= personality_flags[j].flag;
    }
  return 0;
}

/* ---------------------------------------------------------------- memoryPolicy */

#define SBX_MAX_NODES 1024
#define SBX_MPOL_F_NUMA_BALANCING (1 << 13)
#define SBX_MPOL_F_RELATIVE_NODES (1 << 14)
#define SBX_MPOL_F_STATIC_NODES (1 << 15)

typedef struct
{
  int mode; /* with the flags */
  unsigned long mask[SBX_MAX_NODES / (8 * sizeof (unsigned long))];
  bool empty;
} mempolicy;

enum
{
  MP_DEFAULT,
  MP_PREFERRED,
  MP_BIND,
  MP_INTERLEAVE,
  MP_LOCAL,
  MP_PREFERRED_MANY,
  MP_WEIGHTED_INTERLEAVE
};

static const char *const mpol_modes[]
    = { "MPOL_DEFAULT",        "MPOL_PREFERRED",          "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL",
        "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE" };

#define BITS_PER_UL (8 * sizeof (unsigned long))

/* A node or CPU list as in cpuset(7): "0-3,7", ids below max.  Returns
   -1 with *bad at the faulty part.  */
static int
parse_id_list (const char *s, unsigned long max, unsigned long *mask, bool *empty, const char **bad)
{
  *empty = true;
  while (*s)
    {
      char *end;
      unsigned long a, b;
      *bad = s;
      if (*s < '0' || *s > '9')
        return -1;
      a = strtoul (s, &end, 10);
      b = a;
      if (*end == '-')
        {
          if (end[1] < '0' || end[1] > '9')
            return -1;
          b = strtoul (end + 1, &end, 10);
        }
      if (a > b || b >= max || (*end && *end != ','))
        return -1;
      for (unsigned long n = a; n <= b; n++)
        mask[n / BITS_PER_UL] |= 1UL << (n % BITS_PER_UL);
      *empty = false;
      s = *end ? end + 1 : end;
      if (*end && *s == '\0')
        return -1; /* a trailing comma */
    }
  return 0;
}

static int
mempolicy_make (const oci_memory_policy *m, mempolicy *out, sbx_error **err)
{
  int mode = -1, flags = 0;
  const char *bad = NULL;
  for (int i = 0; i < (int)(sizeof mpol_modes / sizeof *mpol_modes); i++)
    if (strcmp (mpol_modes[i], m->mode) == 0)
      mode = i;
  if (mode < 0)
    return sbx_error_set (err, EINVAL, "linux.memoryPolicy.mode: unknown mode `%s`", m->mode);
  for (size_t i = 0; i < m->flags_len; i++)
    {
      if (strcmp (m->flags[i], "MPOL_F_NUMA_BALANCING") == 0)
        flags |= SBX_MPOL_F_NUMA_BALANCING;
      else if (strcmp (m->flags[i], "MPOL_F_RELATIVE_NODES") == 0)
        flags |= SBX_MPOL_F_RELATIVE_NODES;
      else if (strcmp (m->flags[i], "MPOL_F_STATIC_NODES") == 0)
        flags |= SBX_MPOL_F_STATIC_NODES;
      else
        return sbx_error_set (err, EINVAL, "linux.memoryPolicy.flags[%zu]: unknown flag `%s`", i,
                              m->flags[i]);
    }
  *out = (mempolicy){ .mode = mode | flags, .empty = true };
  if (m->nodes && parse_id_list (m->nodes, SBX_MAX_NODES, out->mask, &out->empty, &bad) < 0)
    return sbx_error_set (
        err, EINVAL, "linux.memoryPolicy.nodes `%s`: bad node list at `%s` (want e.g. 0-3,7)", m->nodes, bad);
  if ((flags & SBX_MPOL_F_STATIC_NODES) && (flags & SBX_MPOL_F_RELATIVE_NODES))
    return sbx_error_set (err, EINVAL,
                          "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude "
                          "each other");
  if ((flags & SBX_MPOL_F_NUMA_BALANCING) && mode != MP_BIND && mode != MP_PREFERRED_MANY)
    return sbx_error_set (err, EINVAL,
                          "linux.memoryPolicy.flags: MPOL_F_NUMA_BALANCING is for MPOL_BIND and "
                          "MPOL_PREFERRED_MANY only, not %s",
                          m->mode);
  switch (mode)
    {
    case MP_DEFAULT:
    case MP_LOCAL:
      if (!out->empty || flags)
        return sbx_error_set (err, EINVAL, "linux.memoryPolicy: %s takes neither nodes nor flags", m->mode);
      break;
    case MP_PREFERRED:
      if (out->empty && flags)
        return sbx_error_set (err, EINVAL, "linux.memoryPolicy: %s without nodes takes no flags", m->mode);
      break;
    default:
      if (out->empty)
        return sbx_error_set (err, EINVAL, "linux.memoryPolicy.nodes: %s needs at least one node", m->mode);
    }
  if (out->empty || (flags & SBX_MPOL_F_RELATIVE_NODES))
    return 0; /* relative nodes are positions in the allowed set, not ids */
  {
    cleanup_free char *online = NULL;
    unsigned long host[sizeof out->mask / sizeof *out->mask] = { 0 };
    bool none;
    if (sbx_read_file ("/sys/devices/system/node/online", 4096, &online, NULL, NULL) < 0
        || parse_id_list (first_line (online), SBX_MAX_NODES, host, &none, &bad) < 0)
      return sbx_error_set (err, ENOTSUP,
                            "linux.memoryPolicy: this host has no NUMA support "
                            "(/sys/devices/system/node/online is unreadable)");
    for (size_t n = 0; n < SBX_MAX_NODES; n++)
      if ((out->mask[n / BITS_PER_UL] >> (n % BITS_PER_UL) & 1)
          && !(host[n / BITS_PER_UL] >> (n % BITS_PER_UL) & 1))
        return sbx_error_set (err, EINVAL,
                              "linux.memoryPolicy.nodes `%s`: node %zu is not online on this host (%s)",
                              m->nodes, n, online);
  }
  return 0;
}

int
sbx_process_linux_proc_validate (const oci_linux *l, sbx_error **err)
{
  unsigned long per;
  mempolicy mp;
  if (l == NULL)
    return 0;
  if (l->personality && personality_make (l->personality, &per, err) < 0)
    return -1;
  if (l->memory_policy && mempolicy_make (l->memory_policy, &mp, err) < 0)
    return -1;
  return 0;
}

int
sbx_process_linux_proc_apply (const oci_linux *l, sbx_error **err)
{
  unsigned long per;
  mempolicy mp;
  if (l == NULL)
    return 0;
  if (l->personality)
    {
      if (personality_make (l->personality, &per, err) < 0)
        return -1;
      if (personality (per) < 0)
        return sbx_error_sys (err, "linux.personality (%s): personality", l->personality->domain);
    }
  if (l->memory_policy)
    {
      if (mempolicy_make (l->memory_policy, &mp, err) < 0)
        return -1;
      /* maxnode counts one past the last bit, as the kernel wants.  */
      if (syscall (SYS_set_mempolicy, mp.mode, mp.empty ? NULL : mp.mask, mp.empty ? 0 : SBX_MAX_NODES + 1)
          < 0)
        return sbx_error_sys (err, "linux.memoryPolicy (%s): set_mempolicy", l->memory_policy->mode);
    }
  return 0;
}

/* ---------------------------------------------------------------- execCPUAffinity */

static int
cpu_list_make (const char *list, const char *field, cpu_set_t *set, sbx_error **err)
{
  unsigned long mask[CPU_SETSIZE / BITS_PER_UL] = { 0 }, host[CPU_SETSIZE / BITS_PER_UL] = { 0 };
  cleanup_free char *online = NULL;
  const char *bad = NULL;
  bool empty;
  if (parse_id_list (list, CPU_SETSIZE, mask, &empty, &bad) < 0 || empty)
    return sbx_error_set (err, EINVAL, "process.execCPUAffinity.%s `%s`: bad CPU list%s%s (want e.g. 0-3,7)",
                          field, list, bad ? " at " : "", bad ? bad : "");
  if (sbx_read_file ("/sys/devices/system/cpu/online", 4096, &online, NULL, NULL) == 0
      && parse_id_list (first_line (online), CPU_SETSIZE, host, &empty, &bad) == 0)
    for (size_t n = 0; n < CPU_SETSIZE; n++)
      if ((mask[n / BITS_PER_UL] >> (n % BITS_PER_UL) & 1)
          && !(host[n / BITS_PER_UL] >> (n % BITS_PER_UL) & 1))
        return sbx_error_set (err, EINVAL, "process.execCPUAffinity.%s `%s`: CPU %zu is not online (%s)",
                              field, list, n, online);
  CPU_ZERO (set);
  for (size_t n = 0; n < CPU_SETSIZE; n++)
    if (mask[n / BITS_PER_UL] >> (n % BITS_PER_UL) & 1)
      CPU_SET (n, set);
  return 0;
}

int
sbx_process_cpu_affinity_validate (const oci_process *p, sbx_error **err)
{
  cpu_set_t set;
  const oci_cpu_affinity *a = p->exec_cpu_affinity;
  if (a && a->initial && cpu_list_make (a->initial, "initial", &set, err) < 0)
    return -1;
  if (a && a->final && cpu_list_make (a->final, "final", &set, err) < 0)
    return -1;
  return 0;
}

int
sbx_process_cpu_affinity_apply (const oci_process *p, bool initial, sbx_error **err)
{
  cpu_set_t set;
  const oci_cpu_affinity *a = p->exec_cpu_affinity;
  const char *list = a ? (initial ? a->initial : a->final) : NULL;
  const char *field = initial ? "initial" : "final";
  if (list == NULL)
    return 0;
  if (cpu_list_make (list, field, &set, err) < 0)
    return -1;
  if (sched_setaffinity (0, sizeof set, &set) < 0)
    return sbx_error_sys (err, "process.execCPUAffinity.%s `%s`: sched_setaffinity", field, list);
  return 0;
}
