/* namespaces.c - see namespaces.h.  */
#include <config.h>
#include "process/process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static const struct
{
  const char *name;
  int flag;
  const char *proc;
} ns_table[] = {
  /* user first: joining it decides what else we may join.  */
  { "user", CLONE_NEWUSER, "user" },       { "pid", CLONE_NEWPID, "pid" },
  { "network", CLONE_NEWNET, "net" },      { "mount", CLONE_NEWNS, "mnt" },
  { "ipc", CLONE_NEWIPC, "ipc" },          { "uts", CLONE_NEWUTS, "uts" },
  { "cgroup", CLONE_NEWCGROUP, "cgroup" }, { "time", CLONE_NEWTIME, "time" },
};

const char *const sbx_ns_names[]
    = { "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts", NULL };

int
sbx_process_ns_flag (const char *type)
{
  for (size_t i = 0; i < sizeof ns_table / sizeof *ns_table; i++)
    if (strcmp (ns_table[i].name, type) == 0)
      return ns_table[i].flag;
  return 0;
}

const char *
sbx_process_ns_proc_name (int flag)
{
  for (size_t i = 0; i < sizeof ns_table / sizeof *ns_table; i++)
    if (ns_table[i].flag == flag)
      return ns_table[i].proc;
  return NULL;
}

int
sbx_process_ns_plan_make (const oci_linux *l, sbx_ns_plan *plan, sbx_error **err)
{
  int fds_by_flag[SBX_NS_MAX];
  memset (plan, 0, sizeof *plan);
  for (size_t i = 0; i < SBX_NS_MAX; i++)
    fds_by_flag[i] = -1;
  for (size_t i = 0; l && i < l->namespaces_len; i++)
    {
      const oci_namespace *ns = l->namespaces[i];
      int flag = sbx_process_ns_flag (ns->type), fd, kind;
      size_t slot = 0;
      if (flag == 0)
        {
          sbx_error_set (err, EINVAL, "linux.namespaces[%zu].type: unknown namespace `%s`", i, ns->type);
          goto fail;
        }
      if ((plan->new_flags | plan->join_flags) & flag)
        {
          sbx_error_set (err, EINVAL, "linux.namespaces[%zu]: namespace `%s` given twice", i, ns->type);
          goto fail;
        }
      if (ns->path == NULL || *ns->path == '\0')
        {
          plan->new_flags |= flag;
          continue;
        }
      fd = open (ns->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        {
          sbx_error_sys (err, "linux.namespaces[%zu].path: open `%s`", i, ns->path);
          goto fail;
        }
      /* The path must be a namespace of the named kind, not just any file. */
      kind = ioctl (fd, NS_GET_NSTYPE);
      if (kind != flag)
        {
          if (kind < 0)
            sbx_error_set (err, EINVAL, "linux.namespaces[%zu].path `%s`: not a namespace", i, ns->path);
          else
            sbx_error_set (err, EINVAL, "linux.namespaces[%zu].path `%s`: not a %s namespace", i, ns->path,
                           ns->type);
          close (fd);
          goto fail;
        }
      while (ns_table[slot].flag != flag)
        slot++;
      fds_by_flag[slot] = fd;
      plan->join_flags |= flag;
    }
  /* Join order follows the table: user namespace first.  */
  for (size_t k = 0; k < SBX_NS_MAX; k++)
    if (fds_by_flag[k] >= 0)
      {
        plan->join_fds[plan->njoin] = fds_by_flag[k];
        plan->join_types[plan->njoin++] = ns_table[k].flag;
      }
  return 0;

fail:
  for (size_t k = 0; k < SBX_NS_MAX; k++)
    if (fds_by_flag[k] >= 0)
      close (fds_by_flag[k]);
  memset (plan, 0, sizeof *plan);
  return -1;
}

void
sbx_process_ns_plan_close (sbx_ns_plan *plan)
{
  for (size_t i = 0; i < plan->njoin; i++)
    if (plan->join_fds[i] >= 0)
      close (plan->join_fds[i]);
  plan->njoin = 0;
}

int
sbx_process_ns_join (const sbx_ns_plan *plan, bool skip_pid, sbx_error **err)
{
  for (size_t i = 0; i < plan->njoin; i++)
    {
      int t = plan->join_types[i];
      if (skip_pid && (t == CLONE_NEWPID || t == CLONE_NEWTIME))
        continue;
      if (setns (plan->join_fds[i], t) < 0)
        return sbx_error_sys (err, "join %s namespace", sbx_process_ns_proc_name (t));
    }
  return 0;
}

static int
write_map (int procfd, pid_t pid, const char *file, oci_id_mapping *const *m, size_t n, sbx_error **err)
{
  char rel[64];
  size_t cap = 64 * (n + 1), len = 0;
  cleanup_free char *buf = xmalloc0 (cap);

  for (size_t i = 0; i < n; i++)
    len += snprintf (buf + len, cap - len, "%u %u %u\n", m[i]->container_id, m[i]->host_id, m[i]->size);
  snprintf (rel, sizeof rel, "%d/%s", pid, file);
  return sbx_proc_write (procfd, rel, buf, len, err);
}

/* Ranges beyond the caller's own id need the setuid newuidmap/newgidmap
   (package uidmap), which check them against /etc/subuid and /etc/subgid.
   Its stderr is the error's text.  */
static int
run_idmap_helper (const char *tool, pid_t pid, oci_id_mapping *const *m, size_t n, sbx_error **err)
{
  size_t argc = 0;
  cleanup_strv char **argv = xmalloc0 ((3 * n + 3) * sizeof *argv);
  cleanup_free char *out = NULL;
  size_t len;
  int code;

  argv[argc++] = xstrdup (tool);
  argv[argc++] = xasprintf ("%d", pid);
  for (size_t i = 0; i < n; i++)
    {
      argv[argc++] = xasprintf ("%u", m[i]->container_id);
      argv[argc++] = xasprintf ("%u", m[i]->host_id);
      argv[argc++] = xasprintf ("%u", m[i]->size);
    }
  code = sbx_run_capture (argv, " (install the uidmap package)", &out, err);
  if (code < 0)
    return -1;
  if (code != 0)
    {
      len = strlen (out);
      while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
      return sbx_error_set (err, EPERM, "%s failed (%.511s): the ranges must be granted in /etc/sub%cid",
                            tool, len ? out : "no message", tool[3] == 'u' ? 'u' : 'g');
    }
  return 0;
}

/* Only the caller's own id, once: what an unprivileged user may map.  */
static bool
maps_only_self (oci_id_mapping *const *m, size_t n, unsigned self)
{
  return n == 1 && m[0]->host_id == self && m[0]->size == 1;
}

static int
write_one_map (int procfd, pid_t pid, bool rootless, bool gid, oci_id_mapping *const *m, size_t n,
               sbx_error **err)
{
  char rel[64];
  unsigned self = gid ? getegid () : geteuid ();
  if (rootless && !maps_only_self (m, n, self))
    return run_idmap_helper (gid ? "newgidmap" : "newuidmap", pid, m, n, err);
  /* Without CAP_SETGID over the parent namespace the kernel takes a gid_map
     only once setgroups is denied, so that dropping groups cannot uncover
     files a negative group permission hides.  */
  if (rootless && gid)
    {
      snprintf (rel, sizeof rel, "%d/setgroups", pid);
      if (sbx_proc_write (procfd, rel, "deny", 4, err) < 0)
        return -1;
    }
  return write_map (procfd, pid, gid ? "gid_map" : "uid_map", m, n, err);
}

int
sbx_process_ns_write_id_maps (pid_t pid, const oci_linux *l, bool rootless, sbx_error **err)
{
  cleanup_close int procfd = -1;

  /* Neither: the caller becomes the namespace's root, alone (size 1), as
     the reference runtimes do.  Only one of them is a mistake.  */
  oci_id_mapping self_uid = { .container_id = 0, .host_id = geteuid (), .size = 1 };
  oci_id_mapping self_gid = { .container_id = 0, .host_id = getegid (), .size = 1 };
  oci_id_mapping *const self_u[] = { &self_uid }, *const self_g[] = { &self_gid };
  bool none = l->uid_mappings_len == 0 && l->gid_mappings_len == 0;

  if (!none && (l->uid_mappings_len == 0 || l->gid_mappings_len == 0))
    return sbx_error_set (err, EINVAL,
                          "%s is required with %s in a new user namespace (or neither, to map the caller to "
                          "root)",
                          l->uid_mappings_len ? "linux.gidMappings" : "linux.uidMappings",
                          l->uid_mappings_len ? "linux.uidMappings" : "linux.gidMappings");
  procfd = sbx_proc_open (AT_FDCWD, "/proc", err);
  if (procfd < 0)
    return -1;
  if (write_one_map (procfd, pid, rootless, false, none ? self_u : l->uid_mappings,
                     none ? 1 : l->uid_mappings_len, err)
      < 0)
    return sbx_error_wrap (err, "linux.uidMappings");
  if (write_one_map (procfd, pid, rootless, true, none ? self_g : l->gid_mappings,
                     none ? 1 : l->gid_mappings_len, err)
      < 0)
    return sbx_error_wrap (err, "linux.gidMappings");
  return 0;
}

int
sbx_process_ns_write_time_offsets (const oci_linux *l, sbx_error **err)
{
  cleanup_close int fd = -1, procfd = -1;
  char buf[256];
  if (l == NULL || l->time_offsets_len == 0)
    return 0;
  procfd = sbx_proc_open (AT_FDCWD, "/proc", err);
  if (procfd < 0)
    return sbx_error_wrap (err, "linux.timeOffsets");
  fd = sbx_proc_open_write (procfd, "self/timens_offsets", err);
  if (fd < 0)
    return sbx_error_wrap (err, "linux.timeOffsets");
  for (size_t i = 0; i < l->time_offsets_len; i++)
    {
      const char *clock = l->time_offsets_keys[i];
      const oci_time_offset *o = l->time_offsets_values[i];
      if (strcmp (clock, "monotonic") && strcmp (clock, "boottime"))
        return sbx_error_set (err, EINVAL,
                              "linux.timeOffsets: unknown clock `%s` (want monotonic or boottime)", clock);
      int n = snprintf (buf, sizeof buf, "%s %lld %u\n", clock, (long long)o->secs, o->nanosecs);
      if (write (fd, buf, n) < 0)
        return sbx_error_sys (err, "linux.timeOffsets[\"%s\"]: write timens_offsets", clock);
    }
  return 0;
}
