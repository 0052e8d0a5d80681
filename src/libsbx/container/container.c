/* container/container.c - operations on an existing container: state,
 * pause and resume (the freezer), kill, delete, ps; and list.  Create and run are in
 * create.c, start in start.c, update in update.c, events in events.c, exec
 * in exec.c.  */
#include <config.h>
#include "container/container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "container/init_internal.h"
#include "core/core.h"
#include "egress/egress.h"
#include "fs/fs.h"
#include "process/process.h"
#include "security/security.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* ---------------------------------------------------------------- common */

int
sbx_container_load_cgroup (sbx_state *s, const char *what, sbx_cgroup **cg, sbx_error **err)
{
  if (s->st->cgroup == NULL)
    return sbx_error_set (err, EPERM,
                          "%s container \"%s\": not permitted without a cgroup, and it has none (it was "
                          "created by an unprivileged user with no writable cgroup subtree delegated: "
                          "see docs/rootless.md)",
                          what, s->id);
  if (sbx_cgroup_load (s->st->cgroup, cg, err) < 0)
    return sbx_error_wrap (err, "container \"%s\"", s->id);
  return 0;
}

/* ------------------------------------------------------- pause / resume */

/* pause (frozen) or resume: the container must be running, or paused.  */
static int
set_frozen (const char *root, const char *id, bool frozen, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  cleanup_cgroup sbx_cgroup *cg = NULL;
  const char *status;

  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  status = sbx_state_status (s);
  if (frozen && strcmp (status, "paused") == 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" is already paused", id);
  if (strcmp (status, frozen ? "running" : "paused") != 0)
    return sbx_error_set (err, EINVAL, "container \"%s\" cannot be %s: it is %s, not %s", id,
                          frozen ? "paused" : "resumed", status, frozen ? "running" : "paused");
  if (sbx_container_load_cgroup (s, frozen ? "pause" : "resume", &cg, err) < 0)
    return -1;
  if (sbx_cgroup_freeze (cg, frozen, err) < 0)
    return sbx_error_wrap (err, "%s container \"%s\"", frozen ? "pause" : "resume", id);
  return 0;
}

int
sbx_container_pause (const char *root, const char *id, sbx_error **err)
{
  return set_frozen (root, id, true, err);
}

int
sbx_container_resume (const char *root, const char *id, sbx_error **err)
{
  return set_frozen (root, id, false, err);
}

/* ---------------------------------------------------------------- state */

int
sbx_container_state (const char *root, const char *id, char **json, sbx_error **err)
{
  sbx_state *s = NULL;
  oci_config *c = NULL;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  sbx_state_config (s, &c, NULL); /* annotations are optional extras */
  if (c && sbx_net_config_has_policy (c) && strcmp (sbx_state_status (s), "stopped") != 0)
    {
      /* what the egress policy refused lately, read from its nftables set */
      char *denied = sbx_net_container_denied (s->dir_fd, s->id, s->st->pid);
      if (denied)
        sbx_config_annotate (c, SBX_NET_DENIED, denied);
      free (denied);
    }
  *json = sbx_state_json (s, c, sbx_state_status (s), true);
  oci_config_free (c);
  sbx_state_free (s);
  return 0;
}

/* ---------------------------------------------------------------- kill */

static const struct
{
  const char *name;
  int signo;
} signals[] = {
  { "HUP", SIGHUP },       { "INT", SIGINT },   { "QUIT", SIGQUIT },     { "ILL", SIGILL },
  { "TRAP", SIGTRAP },     { "ABRT", SIGABRT }, { "IOT", SIGIOT },       { "BUS", SIGBUS },
  { "FPE", SIGFPE },       { "KILL", SIGKILL }, { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
  { "USR2", SIGUSR2 },     { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },     { "TERM", SIGTERM },
  { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },     { "STOP", SIGSTOP },
  { "TSTP", SIGTSTP },     { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },
  { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
  { "WINCH", SIGWINCH },   { "IO", SIGIO },     { "POLL", SIGPOLL },     { "PWR", SIGPWR },
  { "SYS", SIGSYS },
};

int
sbx_parse_signal (const char *s, sbx_error **err)
{
  long long n;
  const char *name = s;
  if (sbx_parse_int64 (s, &n) == 0)
    {
      /* 0 is a liveness check (kill(2)), as runc takes it.  */
      if (n < 0 || n > SIGRTMAX)
        return sbx_error_set (err, EINVAL, "invalid signal `%s`", s);
      return (int)n;
    }
  if (strncasecmp (name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof signals / sizeof *signals; i++)
    if (strcasecmp (name, signals[i].name) == 0)
      return signals[i].signo;
  if (strncasecmp (name, "RTMIN", 5) == 0 || strncasecmp (name, "RTMAX", 5) == 0)
    {
      long long off = 0;
      int base = strncasecmp (name, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
      if (name[5] == '\0'
          || (sbx_parse_int64 (name + 5, &off) == 0 && base + off >= SIGRTMIN && base + off <= SIGRTMAX))
        return base + (int)off;
    }
  return sbx_error_set (err, EINVAL, "invalid signal `%s`", s);
}

/* Signal the init through a pidfd checked against the saved start time,
   so a recycled pid is never hit.  */
static int
signal_init (sbx_state *s, int signo, sbx_error **err)
{
  cleanup_close int pidfd = sbx_pidfd_open (s->st->pid);
  if (pidfd < 0 || !sbx_state_alive (s))
    return sbx_error_set (err, ESRCH, "container not running");
  if (syscall (SYS_pidfd_send_signal, pidfd, signo, NULL, 0) < 0)
    {
      if (errno == ESRCH)
        return sbx_error_set (err, ESRCH, "container not running");
      return sbx_error_sys (err, "kill container \"%s\"", s->id);
    }
  return 0;
}

/* Whether pid is in the pid namespace ns (a stat of its ns/pid link).  */
static bool
in_pidns (long pid, const struct stat *ns)
{
  struct stat st;
  char p[64];
  snprintf (p, sizeof p, "/proc/%ld/ns/pid", pid);
  return stat (p, &st) == 0 && st.st_dev == ns->st_dev && st.st_ino == ns->st_ino;
}

/* Without a cgroup (rootless, none delegated): the processes of the
   init's pid namespace when it has one of its own (its ns/pid in *ns),
   else the init alone.  Returns the count, *pids malloc'd.  */
static size_t
pidns_members (pid_t init, pid_t **pids, struct stat *ns)
{
  struct stat self;
  char p[64];
  size_t n = 0, cap = 16;
  DIR *d;
  struct dirent *e;

  *pids = xmalloc0 (cap * sizeof **pids);
  (*pids)[n++] = init;
  snprintf (p, sizeof p, "/proc/%d/ns/pid", init);
  if (stat (p, ns) < 0 || stat ("/proc/self/ns/pid", &self) < 0
      || (ns->st_dev == self.st_dev && ns->st_ino == self.st_ino) || (d = opendir ("/proc")) == NULL)
    return n;
  while ((e = readdir (d)))
    {
      char *end;
      long pid = strtol (e->d_name, &end, 10);
      if (*end || pid <= 0 || pid == init || !in_pidns (pid, ns))
        continue;
      if (n == cap)
        *pids = xrealloc (*pids, (cap *= 2) * sizeof **pids);
      (*pids)[n++] = (pid_t)pid;
    }
  closedir (d);
  return n;
}

static int
kill_locked (sbx_state *s, int signo, bool all, sbx_error **err)
{
  if (all && s->st->cgroup)
    {
      sbx_cgroup *cg = NULL;
      int r;
      if (sbx_cgroup_load (s->st->cgroup, &cg, err) < 0)
        return -1;
      r = sbx_cgroup_kill (cg, signo, err);
      sbx_cgroup_free (cg);
      return r;
    }
  if (strcmp (sbx_state_status (s), "stopped") == 0)
    return sbx_error_set (err, ESRCH, "container not running");
  if (all)
    {
      /* no cgroup: the init, then the rest of its pid namespace */
      cleanup_free pid_t *pids = NULL;
      struct stat ns;
      size_t n = pidns_members (s->st->pid, &pids, &ns);
      if (signal_init (s, signo, err) < 0)
        return -1;
      for (size_t i = 1; i < n; i++)
        {
          /* checked again once held: the pid may have been reused */
          cleanup_close int fd = sbx_pidfd_open (pids[i]);
          if (fd >= 0 && in_pidns (pids[i], &ns))
            syscall (SYS_pidfd_send_signal, fd, signo, NULL, 0);
        }
      return 0;
    }
  return signal_init (s, signo, err);
}

int
sbx_container_kill (const char *root, const char *id, int signo, bool all, sbx_error **err)
{
  sbx_state *s = NULL;
  int r;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  r = kill_locked (s, signo, all, err);
  sbx_state_free (s);
  return r;
}

/* ---------------------------------------------------------------- delete */

/* Wait (bounded) for the init to be gone after SIGKILL.  */
static void
wait_gone (sbx_state *s)
{
  cleanup_close int pidfd = sbx_pidfd_open (s->st->pid);
  if (pidfd >= 0 && sbx_state_alive (s))
    {
      struct pollfd p = { pidfd, POLLIN, 0 };
      poll (&p, 1, 5000);
    }
  /* Reap it if it is ours (run).  */
  waitpid (s->st->pid, NULL, WNOHANG);
}

void
sbx_container_kill_and_wait (sbx_state *s, sbx_cgroup *cg, bool paused)
{
  if (cg && paused)
    sbx_cgroup_freeze (cg, false, NULL);
  if (cg)
    sbx_cgroup_kill (cg, SIGKILL, NULL);
  signal_init (s, SIGKILL, NULL);
  wait_gone (s);
}

int
sbx_container_delete_locked (sbx_state *s, bool force, sbx_error **err)
{
  const char *status = sbx_state_status (s);
  cleanup_oci_config oci_config *owned = NULL;
  const oci_config *c = NULL;
  sbx_cgroup *cg = NULL;
  sbx_net_teardown *nt;

  /* runtime-spec: deleting a container that is not stopped is an error
     (created included: runtime.md's MUST, checked by the OCI validation
     suite, although runc and crun delete a created one); --force kills it
     first.  */
  if (strcmp (status, "stopped") != 0 && strcmp (status, "deleting") != 0 && !force)
    return sbx_error_set (err, EBUSY,
                          "cannot delete container \"%s\" that is not stopped: %s%s (use --force)", s->id,
                          status, strcmp (status, "creating") == 0 ? " (a create that did not finish)" : "");
  /* Journal first: a delete killed from here on leaves a container that
     list shows as "deleting" and the next delete finishes.  */
  if (sbx_state_set_phase (s, "deleting", err) < 0)
    return sbx_error_wrap (err, "delete container \"%s\"", s->id);
  sbx_test_kill_point ("delete:marked");
  if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, NULL) < 0)
    cg = NULL;
  /* Egress rules: found before the kill (a live init's namespace),
     removed after it, so the container is never unrestricted.  */
  nt = sbx_net_teardown_prepare (s->dir_fd, s->id, strcmp (status, "stopped") ? s->st->pid : 0);
  if (sbx_state_config_ref (s, &c, &owned, NULL) < 0)
    c = NULL;
  if (strcmp (status, "stopped") != 0)
    {
      /* linux.netDevices go back to the host while the namespace lives.  */
      if (c && c->linux && c->linux->net_devices_len)
        {
          char p[64];
          cleanup_close int netns = -1;
          snprintf (p, sizeof p, "/proc/%d/ns/net", s->st->pid);
          netns = open (p, O_RDONLY | O_CLOEXEC);
          if (netns >= 0 && sbx_state_alive (s))
            sbx_process_netdev_move_out (c->linux, netns);
        }
      sbx_container_kill_and_wait (s, cg, strcmp (status, "paused") == 0);
      sbx_test_kill_point ("delete:killed");
    }
  /* Processes that outlived the init (no pid namespace) go before the
     egress rules do: they must never run unrestricted.  */
  if (cg)
    {
      cleanup_error sbx_error *e = NULL;
      if (sbx_cgroup_destroy (cg, &e) < 0)
        sbx_warn ("container \"%s\": remove cgroup: %s", s->id, e->msg);
      sbx_cgroup_free (cg);
      sbx_test_kill_point ("delete:cgroup");
    }
  sbx_container_net_teardown (s, nt);
  /* The rootfs bind made without a mount namespace of its own: if it
     cannot be removed the state stays, for another delete; a mount there
     that is not ours is left alone.  */
  if (sbx_fs_host_root_release (s->st, err) < 0)
    {
      if ((*err)->errno_ != EXDEV)
        return sbx_error_wrap (err, "delete container \"%s\"", s->id);
      sbx_warn ("container \"%s\": %s", s->id, (*err)->msg);
      sbx_error_freep (err);
    }
  if (c && c->hooks && c->hooks->poststop_len)
    {
      cleanup_free char *json = sbx_state_json (s, c, "stopped", false);
      sbx_process_hooks_set_output (c);
      sbx_process_hooks_run_warn ("poststop", c->hooks->poststop, c->hooks->poststop_len, json);
    }
  return sbx_state_remove (s, err);
}

int
sbx_container_delete (const char *root, const char *id, bool force, sbx_error **err)
{
  return sbx_container_delete_known (root, id, force, NULL, err);
}

int
sbx_container_delete_known (const char *root, const char *id, bool force, const oci_config *saved,
                            sbx_error **err)
{
  sbx_state *s = NULL;
  cleanup_error sbx_error *e = NULL;
  int r;
  if (sbx_state_open (root, id, &s, &e) < 0)
    {
      /* delete --force is idempotent: a missing container is fine.  */
      if (force && e->errno_ == ENOENT)
        return 0;
      *err = steal_ptr (e);
      return -1;
    }
  s->config = saved;
  r = sbx_container_delete_locked (s, force, err);
  sbx_state_free (s);
  return r;
}

/* ---------------------------------------------------------------- ps */

int
sbx_container_pids (const char *root, const char *id, pid_t **pids, size_t *n, sbx_error **err)
{
  sbx_state *s = NULL;
  sbx_cgroup *cg = NULL;
  int r = 0;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  *pids = NULL;
  *n = 0;
  if (strcmp (sbx_state_status (s), "stopped") == 0)
    ;
  else if (s->st->cgroup && sbx_cgroup_load (s->st->cgroup, &cg, err) == 0)
    r = sbx_cgroup_pids (cg, pids, n, err);
  else if (s->st->cgroup)
    r = -1;
  else
    {
      struct stat ns;
      *n = pidns_members (s->st->pid, pids, &ns);
    }
  sbx_cgroup_free (cg);
  sbx_state_free (s);
  return r;
}

/* Run ps(1) with args (NULL-terminated, argv[0] excluded) and return its
   stdout and stderr together, malloc'd; on failure the error carries them.  */
static char *
run_ps (char **args, sbx_error **err)
{
  size_t nargs = 0, len;
  cleanup_free char **argv = NULL;
  cleanup_free char *buf = NULL;
  int code;

  while (args && args[nargs])
    nargs++;
  argv = xmalloc0 ((nargs + 2) * sizeof *argv);
  argv[0] = (char *)"ps";
  for (size_t k = 0; k < nargs; k++)
    argv[k + 1] = args[k];
  if (nargs == 0)
    argv[1] = (char *)"-ef";
  code = sbx_run_capture (argv, NULL, &buf, err);
  if (code < 0)
    return NULL;
  if (code != 0)
    {
      len = strlen (buf);
      while (len && buf[len - 1] == '\n')
        buf[--len] = '\0';
      return sbx_error_set (err, ECHILD, "ps exited with status %d: %s", code, buf), NULL;
    }
  return steal_ptr (buf);
}

/* The whitespace-separated field of line[0..len) numbered col (0-based):
   its start, and its length in *flen; NULL if the line has fewer fields.  */
static const char *
nth_field (const char *line, size_t len, int col, size_t *flen)
{
  for (size_t k = 0; k < len;)
    {
      size_t e;
      while (k < len && (line[k] == ' ' || line[k] == '\t'))
        k++;
      if (k == len)
        break;
      for (e = k; e < len && line[e] != ' ' && line[e] != '\t'; e++)
        ;
      if (col-- == 0)
        {
          *flen = e - k;
          return line + k;
        }
      k = e;
    }
  return NULL;
}

/* Number of the PID column of ps's header line, or -1.  */
static int
pid_column (const char *line, size_t len)
{
  const char *f;
  size_t flen;
  for (int col = 0; (f = nth_field (line, len, col, &flen)); col++)
    if (flen == 3 && memcmp (f, "PID", 3) == 0)
      return col;
  return -1;
}

/* The pid in column col of line; -1 if there is none (a blank line), -2 if
   it is not a number.  */
static long
field_pid (const char *line, size_t len, int col)
{
  size_t flen;
  const char *f = nth_field (line, len, col, &flen);
  long v = 0;
  if (!f)
    return -1;
  for (size_t j = 0; j < flen; j++)
    {
      if (f[j] < '0' || f[j] > '9' || v > 1L << 32)
        return -2;
      v = v * 10 + (f[j] - '0');
    }
  return v;
}

int
sbx_container_ps (const char *root, const char *id, bool json, char **ps_args, FILE *out, sbx_error **err)
{
  cleanup_free pid_t *pids = NULL;
  cleanup_free char *text = NULL;
  size_t n = 0;
  const char *nl;
  int col;
  if (sbx_container_pids (root, id, &pids, &n, err) < 0)
    return -1;
  if (json)
    {
      fprintf (out, "[");
      for (size_t k = 0; k < n; k++)
        fprintf (out, "%s%d", k ? "," : "", pids[k]);
      fprintf (out, "]\n");
      return 0;
    }
  if (!(text = run_ps (ps_args, err)))
    return -1;
  nl = strchr (text, '\n');
  col = pid_column (text, nl ? (size_t)(nl - text) : strlen (text));
  if (col < 0)
    return sbx_error_set (err, EINVAL, "no PID column in the output of ps (its header: `%.*s`)",
                          (int)(nl ? nl - text : (ptrdiff_t)strlen (text)), text);
  fprintf (out, "%.*s\n", (int)(nl ? nl - text : (ptrdiff_t)strlen (text)), text);
  for (const char *line = nl ? nl + 1 : NULL; line && *line; line = nl ? nl + 1 : NULL)
    {
      size_t len;
      long p;
      nl = strchr (line, '\n');
      len = nl ? (size_t)(nl - line) : strlen (line);
      p = field_pid (line, len, col);
      if (p == -1)
        continue; /* blank line */
      if (p == -2)
        return sbx_error_set (err, EINVAL, "cannot parse the PID of ps line `%.*s`", (int)len, line);
      for (size_t k = 0; k < n; k++)
        if (pids[k] == (pid_t)p)
          {
            fprintf (out, "%.*s\n", (int)len, line);
            break;
          }
    }
  return 0;
}

/* ---------------------------------------------------------------- list */

int
sbx_container_list (const char *root, bool json, bool quiet, FILE *out, sbx_error **err)
{
  cleanup_strv char **ids = NULL;
  bool first = true;
  if (sbx_state_list (root, &ids, err) < 0)
    return -1;
  if (!json && !quiet)
    fprintf (out, "%-24s %-8s %-8s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  for (char **id = ids; *id; id++)
    {
      cleanup_free char *state = NULL;
      sbx_state *s = NULL;
      const char *status;
      if (quiet)
        {
          fprintf (out, "%s\n", *id);
          continue;
        }
      if (sbx_state_open (root, *id, &s, NULL) < 0)
        continue; /* deleted meanwhile */
      status = sbx_state_status (s);
      if (json)
        {
          oci_config *c = NULL;
          sbx_state_config (s, &c, NULL); /* for the annotations, listed only if any (runc) */
          state = sbx_state_json (s, c && c->annotations_len ? c : NULL, status, false);
          oci_config_free (c);
          fprintf (out, "%s%s", first ? "[" : ",", state);
        }
      else
        fprintf (out, "%-24s %-8d %-8s %-40s %-32s %s\n", *id, strcmp (status, "stopped") ? s->st->pid : 0,
                 status, s->st->bundle, s->st->created ? s->st->created : "", sbx_state_owner (s));
      first = false;
      sbx_state_free (s);
    }
  if (json && !quiet) /* runc's (Go's) empty list is null */
    fprintf (out, "%s\n", first ? "null" : "]");
  return 0;
}
