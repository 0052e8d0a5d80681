/* process/execve.c - a process's last steps before execve (see process.h):
 * validation, cwd, user, rlimits, fds, privileges, the exec itself.  */
#include <config.h>
#include "process/process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "security/security.h"

static const struct
{
  const char *name;
  int res;
} rlimits[] = {
  { "RLIMIT_AS", RLIMIT_AS },
  { "RLIMIT_CORE", RLIMIT_CORE },
  { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },
  { "RLIMIT_FSIZE", RLIMIT_FSIZE },
  { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
  { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
  { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },
  { "RLIMIT_NPROC", RLIMIT_NPROC },
  { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
  { "RLIMIT_RTTIME", RLIMIT_RTTIME },
  { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

static int
rlimit_res (const char *name)
{
  for (size_t i = 0; i < sizeof rlimits / sizeof *rlimits; i++)
    if (strcmp (rlimits[i].name, name) == 0)
      return rlimits[i].res;
  return -1;
}

int
sbx_process_validate (const oci_process *p, sbx_error **err)
{
  if (p == NULL)
    return sbx_error_set (err, EINVAL, "process: required to create a container");
  if (p->args_len == 0 || p->args[0][0] == '\0')
    return sbx_error_set (err, EINVAL, "process.args: must name the program to run");
  /* Windows-only fields: a Linux config naming them expects something
     this platform does not do.  */
  if (p->command_line)
    return sbx_error_set (err, EINVAL,
                          "process.commandLine: Windows only; on Linux the program is process.args");
  if (p->user && p->user->username)
    return sbx_error_set (
        err, EINVAL, "process.user.username `%s`: Windows only; on Linux the user is process.user.uid/gid",
        p->user->username);
  if (p->cwd[0] != '/')
    return sbx_error_set (err, EINVAL, "process.cwd `%s`: must be an absolute path", p->cwd);
  for (size_t i = 0; i < p->rlimits_len; i++)
    {
      if (rlimit_res (p->rlimits[i]->type) < 0)
        return sbx_error_set (err, EINVAL, "process.rlimits[%zu].type: unknown rlimit `%s`", i,
                              p->rlimits[i]->type);
      if (p->rlimits[i]->soft > p->rlimits[i]->hard)
        return sbx_error_set (err, EINVAL, "process.rlimits[%zu] (%s): soft limit above hard limit", i,
                              p->rlimits[i]->type);
    }
  /* (uid_t)-1 is "no change" to setresuid/setresgid: the process would
     keep the runtime's root.  */
  if (p->user && p->user->uid == UINT32_MAX)
    return sbx_error_set (err, EINVAL, "process.user.uid: %u is not a user id ((uid_t)-1 means \"unchanged\")",
                          p->user->uid);
  if (p->user && p->user->gid == UINT32_MAX)
    return sbx_error_set (err, EINVAL, "process.user.gid: %u is not a group id ((gid_t)-1 means \"unchanged\")",
                          p->user->gid);
  for (size_t i = 0; p->user && i < p->user->additional_gids_len; i++)
    if (p->user->additional_gids[i] == UINT32_MAX)
      return sbx_error_set (err, EINVAL, "process.user.additionalGids[%zu]: %u is not a group id", i,
                            p->user->additional_gids[i]);
  for (size_t i = 0; i < p->env_len; i++)
    if (strchr (p->env[i], '=') == NULL || p->env[i][0] == '=')
      return sbx_error_set (err, EINVAL, "process.env[%zu] `%s`: want NAME=VALUE", i, p->env[i]);
  if (p->has_oom_score_adj && (p->oom_score_adj < -1000 || p->oom_score_adj > 1000))
    return sbx_error_set (err, EINVAL, "process.oomScoreAdj: %d not in [-1000, 1000]", p->oom_score_adj);
  if (sbx_lsm_validate (p, NULL, err) < 0 || sbx_process_sched_validate (p, err) < 0)
    return -1;
  return sbx_caps_validate (p->capabilities, err);
}

/* chdir to cwd resolved inside the current root, refusing magic links such as
   /proc/self/fd/N that would lead out of it.  */
static int
enter_cwd (const char *cwd, sbx_error **err)
{
  struct open_how how
      = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  cleanup_close int fd = syscall (SYS_openat2, AT_FDCWD, cwd, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS)
    fd = open (cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "process.cwd `%s`", cwd);
  if (fchdir (fd) < 0)
    return sbx_error_sys (err, "process.cwd `%s`: chdir", cwd);
  return 0;
}

/* process.env without HOME: the home of the process's uid in the
   container's /etc/passwd, else "/" (as runc and crun do).  The image is
   the attacker's: no magic links, nothing but a regular file, bounded.  */
static char *
home_of (const oci_process *p)
{
  struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  uid_t uid = p->user ? p->user->uid : 0;
  cleanup_close int fd = -1;
  cleanup_free char *text = NULL;
  struct stat st;
  char *home = NULL;

  for (size_t i = 0; i < p->env_len; i++)
    if (sbx_has_prefix (p->env[i], "HOME="))
      return NULL;
  fd = syscall (SYS_openat2, AT_FDCWD, "/etc/passwd", &how, sizeof how);
  if (fd >= 0 && fstat (fd, &st) == 0 && S_ISREG (st.st_mode)
      && sbx_read_fd (fd, 1 << 20, &text, NULL, NULL) == 0)
    for (char *line = text, *next; line && *line && home == NULL; line = next)
      {
        char *f[7] = { 0 };
        int n = 0;
        long long id;
        next = strchr (line, '\n');
        if (next)
          *next++ = '\0';
        for (char *q = line; n < 7 && q; n++)
          {
            f[n] = q;
            q = strchr (q, ':');
            if (q)
              *q++ = '\0';
          }
        if (n >= 6 && sbx_parse_int64 (f[2], &id) == 0 && id == (long long)uid && f[5][0] == '/')
          home = xasprintf ("HOME=%s", f[5]);
      }
  return home ? home : xstrdup ("HOME=/");
}

const sbx_oci_annotation sbx_oci_annotations[] = {
  { SBX_ANN_KEEP_GROUPS, "1: the process keeps the caller's supplementary groups (podman --group-add "
                         "keep-groups), with process.user.additionalGids added" },
  { SBX_ANN_SECCOMP_FAIL_UNKNOWN, "1: a syscall name of linux.seccomp that libseccomp does not know fails "
                                  "create (default: skipped)" },
  { SBX_ANN_HOOKS_STDOUT, "file (appended to, created 0600) for the standard output of the hooks" },
  { SBX_ANN_HOOKS_STDERR, "file (appended to, created 0600) for the standard error of the hooks" },
  { NULL, NULL },
};

bool
sbx_process_annotation_on (const oci_config *c, const char *name)
{
  const char *v
      = c ? ocispec_map_get (c->annotations_keys, c->annotations_values, c->annotations_len, name) : NULL;
  return v && (strcmp (v, "1") == 0 || strcmp (v, "true") == 0);
}

/* The caller's supplementary groups, then `add`.  */
static int
keep_groups (const gid_t *add, size_t nadd, sbx_error **err)
{
  int n = getgroups (0, NULL);
  cleanup_free gid_t *g = NULL;
  if (n < 0)
    return sbx_error_sys (err, "run.oci.keep_original_groups: getgroups");
  g = xmalloc0 ((n + nadd + 1) * sizeof *g);
  n = getgroups (n, g);
  if (n < 0)
    return sbx_error_sys (err, "run.oci.keep_original_groups: getgroups");
  memcpy (g + n, add, nadd * sizeof *g);
  if (setgroups (n + nadd, g) < 0)
    return sbx_error_sys (err, "run.oci.keep_original_groups: setgroups");
  return 0;
}

static int
apply_user (const oci_user *u, bool keep, sbx_error **err)
{
  uid_t uid = u ? u->uid : 0;
  gid_t gid = u ? u->gid : 0;

  if (keep)
    {
      if (keep_groups (u ? u->additional_gids : NULL, u ? u->additional_gids_len : 0, err) < 0)
        return -1;
    }
  else if (u && u->additional_gids_len)
    {
      if (setgroups (u->additional_gids_len, u->additional_gids) < 0)
        return sbx_error_sys (err, "process.user.additionalGids: setgroups");
    }
  else if (setgroups (0, NULL) < 0 && errno != EPERM)
    return sbx_error_sys (err, "setgroups");
  if (setresgid (gid, gid, gid) < 0)
    return sbx_error_sys (err, "process.user.gid %u: setgid", gid);
  if (sbx_caps_keep (1, err) < 0)
    return -1;
  if (setresuid (uid, uid, uid) < 0)
    return sbx_error_sys (err, "process.user.uid %u: setuid", uid);
  return sbx_caps_keep (0, err);
}

/* Mark every fd >= from close-on-exec, and clear it on the preserved ones
   in [3, from) so that they do reach the container.  */
static int
mark_cloexec_from (int from, sbx_error **err)
{
  for (int fd = 3; fd < from; fd++)
    {
      /* Only what our caller passed: a gap in the range may hold one of
         the runtime's own fds (a cgroup dir, the start socket), which must
         stay close-on-exec.  */
      int fl = sbx_fd_inherited (fd) ? fcntl (fd, F_GETFD) : -1;
      if (fl >= 0 && fcntl (fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
        return sbx_error_sys (err, "--preserve-fds: fd %d", fd);
    }
  if (syscall (SYS_close_range, from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    return 0;
  if (errno != ENOSYS && errno != EINVAL)
    return sbx_error_sys (err, "close_range");
  /* Kernels before 5.11: walk /proc/self/fd.  */
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *de;
  if (d == NULL)
    return sbx_error_sys (err, "open /proc/self/fd");
  while ((de = readdir (d)))
    {
      long long fd;
      if (sbx_parse_int64 (de->d_name, &fd) == 0 && fd >= from && fd != dirfd (d))
        fcntl ((int)fd, F_SETFD, FD_CLOEXEC);
    }
  closedir (d);
  return 0;
}

static bool
fd_kept (int fd, const int *keep, size_t n, int preserve_fds)
{
  for (size_t i = 0; i < n; i++)
    if (keep[i] == fd)
      return true;
  return fd < 3 + preserve_fds && sbx_fd_inherited (fd);
}

/* Close lo..hi (hi may be ~0U): one close_range, or (before 5.9) each fd,
   up to the open-files limit (/proc may be the container's by now).  */
static int
close_between (unsigned int lo, unsigned int hi, sbx_error **err)
{
  long max;
  if (lo > hi)
    return 0;
  if (syscall (SYS_close_range, lo, hi, 0) == 0)
    return 0;
  if (errno != ENOSYS)
    return sbx_error_sys (err, "close_range");
  max = sysconf (_SC_OPEN_MAX);
  max = max > 0 && max < (1 << 20) ? max : 1 << 20;
  for (long fd = lo; fd <= (long)hi && fd < max; fd++)
    close ((int)fd);
  return 0;
}

static int
int_cmp (const void *a, const void *b)
{
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

int
sbx_process_close_fds_except (const int *keep, size_t n, int preserve_fds, sbx_error **err)
{
  /* The gaps between the fds kept, each closed with one call (the init
     used to close ~160 fds one by one).  */
  size_t nk = 0, cap = n + (preserve_fds > 0 ? (size_t)preserve_fds : 0);
  cleanup_free int *k = xmalloc0 ((cap + 1) * sizeof *k);
  unsigned int next = 3;
  for (int fd = 3; fd < 3 + preserve_fds; fd++)
    if (fd_kept (fd, keep, n, preserve_fds))
      k[nk++] = fd;
  for (size_t i = 0; i < n; i++)
    if (keep[i] >= 3)
      k[nk++] = keep[i];
  qsort (k, nk, sizeof *k, int_cmp);
  for (size_t i = 0; i < nk; i++)
    {
      if ((unsigned int)k[i] < next)
        continue; /* a duplicate */
      if (close_between (next, (unsigned int)k[i] - 1, err) < 0)
        return -1;
      next = (unsigned int)k[i] + 1;
    }
  return close_between (next, ~0U, err);
}

/* The file execvp would run, searched in the container's PATH (not ours).
   Done before the last word to the runtime, so that a missing or
   non-executable program is reported as such and only execve is left.  */
static char *
resolve_exec (const oci_process *p, sbx_error **err)
{
  const char *path = NULL, *arg0 = p->args[0];
  int saved = ENOENT;

  if (strchr (arg0, '/'))
    {
      if (faccessat (AT_FDCWD, arg0, X_OK, AT_EACCESS) < 0)
        {
          sbx_error_sys (err, "exec `%s`", arg0);
          return NULL;
        }
      return xstrdup (arg0);
    }
  for (size_t i = 0; i < p->env_len; i++)
    if (sbx_has_prefix (p->env[i], "PATH="))
      path = p->env[i] + 5;
  if (path == NULL)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char *s = path; *s;)
    {
      const char *e = strchrnul (s, ':');
      char *cand = xasprintf ("%.*s/%s", (int)(e - s), s, arg0);
      struct stat st;
      if (e > s && stat (cand, &st) == 0 && S_ISREG (st.st_mode))
        {
          if (faccessat (AT_FDCWD, cand, X_OK, AT_EACCESS) == 0)
            return cand;
          saved = errno;
        }
      free (cand);
      s = *e ? e + 1 : e;
    }
  sbx_error_set (err, saved, "exec `%s`: executable file not found in $PATH `%s`", arg0, path);
  return NULL;
}

/* The last word before execve: the runtime takes EOF without it for a
   death before exec.  Under a seccomp filter (`plain`) it goes by write(2),
   which any profile allows.  A notify fd rides along (sendmsg, as the
   spec's notify flow implies), to be forwarded to listenerPath; then we
   exec only once the runtime says the listener has it.  */
static int
tell_exec_ready (int sock, int notify_fd, bool plain, sbx_error **err)
{
  cleanup_error sbx_error *e = NULL;
  int r;

  if (sock < 0)
    return 0;
  if (notify_fd >= 0)
    {
      if (sbx_process_sync_send (sock, SYNC_EXEC_READY, notify_fd, err) < 0)
        return -1;
      close (notify_fd);
      if (sbx_process_sync_expect (sock, SYNC_GO, NULL, err) < 0)
        return sbx_error_wrap (err, "seccomp listener");
      return 0;
    }
  r = plain ? sbx_process_sync_send_plain (sock, SYNC_EXEC_READY, &e)
            : sbx_process_sync_send (sock, SYNC_EXEC_READY, -1, &e);
  /* A runtime gone (start killed, exec --detach) has nobody to tell: the
     process still runs, as it would have had the runtime waited.  */
  if (r == SBX_SYNC_HUNG_UP)
    return 0;
  if (r < 0)
    *err = steal_ptr (e);
  return r;
}

/* The first half: everything that needs the runtime's privileges, ending
   with the container's own credentials.  A process that a container
   process may see while it waits (the created init) must have done this
   first: with CAP_SYS_PTRACE a container can inject code into it, which
   must then hold nothing the container does not.  */
int
sbx_process_drop_privileges (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err)
{
  const oci_process *p = ctx->p;
  const sbx_seccomp *sc = ctx->seccomp;

  *prep = (sbx_exec_prep)SBX_EXEC_PREP_INIT;
  prep->procfd = ctx->procfd;
  /* First, before a seccomp filter can refuse the calls: nothing of ours
     may reach the container.  */
  if (mark_cloexec_from (3 + ctx->preserve_fds, err) < 0)
    return -1;
  /* Every write to procfs goes through a checked procfs fd (procfs.h),
     opened while the runtime's capabilities and no filter are in force.  */
  if (prep->procfd < 0
      && (p->has_oom_score_adj || (p->apparmor_profile && *p->apparmor_profile)
          || (p->selinux_label && *p->selinux_label)))
    {
      /* We may be seen (pid 1 of a created container, an exec): never
         hold an unmasked copy of /proc.  */
      prep->own_procfd = sbx_proc_open_as (AT_FDCWD, "/proc", SBX_PROC_MOUNTED, err);
      if (prep->own_procfd < 0)
        return sbx_error_wrap (err, "the container's /proc");
      prep->procfd = prep->own_procfd;
    }
  if (enter_cwd (p->cwd, err) < 0)
    return -1;
  prep->home = home_of (p);
  /* The paths are opened in the final root, as root, before any filter.  */
  if (ctx->landlock && sbx_landlock_prepare (ctx->landlock, &prep->landlock_fd, err) < 0)
    return -1;
  for (size_t i = 0; i < p->rlimits_len; i++)
    {
      struct rlimit rl = { p->rlimits[i]->soft, p->rlimits[i]->hard };
      if (setrlimit (rlimit_res (p->rlimits[i]->type), &rl) < 0)
        return sbx_error_sys (err, "process.rlimits[%zu] (%s): setrlimit", i, p->rlimits[i]->type);
    }
  /* Before a filter can refuse personality(2) or set_mempolicy(2).  */
  if (sbx_process_linux_proc_apply (ctx->linux, err) < 0)
    return -1;
  if (p->has_oom_score_adj)
    {
      char buf[16];
      int n = snprintf (buf, sizeof buf, "%d", p->oom_score_adj);
      if (sbx_proc_write (prep->procfd, "self/oom_score_adj", buf, n, err) < 0)
        return sbx_error_wrap (err, "process.oomScoreAdj");
    }
  if (p->user && p->user->has_umask)
    umask (p->user->umask);
  /* First of the filters: the profile's may refuse seccomp(2).  */
  if (ctx->packet_guard && sbx_packet_guard_load (err) < 0)
    return -1;
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
     before the capabilities go.  The runtime's own calls up to execve then
     run under it: it must allow them (setresuid, capset, prctl, write...).  */
  if (sc && !p->no_new_privileges && sbx_seccomp_load (sc, &prep->notify_fd, err) < 0)
    return -1;
  /* Back into the container's cgroup (the init did its setup outside it,
     see init.c) while we still have the runtime's credentials: what
     follows is charged to the container.  */
  if (ctx->cg && sbx_cgroup_stage_enter (ctx->cg, err) < 0)
    return -1;
  if (sbx_process_cpu_affinity_apply (p, false, err) < 0)
    return -1;
  if (apply_user (p->user, ctx->keep_groups, err) < 0 || sbx_caps_apply (p->capabilities, err) < 0)
    return -1;
  if (p->no_new_privileges && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return sbx_error_sys (err, "process.noNewPrivileges: prctl");
  return 0;
}

int
sbx_process_resolve (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err)
{
  free (prep->file);
  prep->file = resolve_exec (ctx->p, err);
  return prep->file ? 0 : -1;
}

/* process.env, and HOME when it has none (home_of); the strings are
   borrowed, only the array is malloc'd.  */
char **
sbx_process_exec_env (const oci_process *p, const sbx_exec_prep *prep)
{
  char **env = xmalloc0 ((p->env_len + 2) * sizeof *env);
  for (size_t i = 0; i < p->env_len; i++)
    env[i] = p->env[i];
  env[p->env_len] = prep->home;
  return env;
}

/* A NOTIFY filter under no_new_privs: whatever the process does after
   loading it (the word to the runtime, the wait, execve) may be a NOTIFY
   rule, answered only once the listener has the fd.  So the process says
   beforehand which fd number the listener will get (the lowest free one:
   we are single-threaded), loads the filter and waits; the runtime takes
   the fd with pidfd_getfd(2), hands it to listenerPath, and says go.  */
static int
notify_then_exec (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, const char *file, sbx_error **err)
{
  const oci_process *p = ctx->p;
  char buf[16];
  int probe = fcntl (ctx->notify_sock, F_DUPFD_CLOEXEC, 0);
  if (probe < 0)
    return sbx_error_sys (err, "seccomp notify: find a free fd");
  snprintf (buf, sizeof buf, "%d", probe);
  close (probe);
  char **env = sbx_process_exec_env (p, prep);
  if (sbx_process_sync_send_text (ctx->notify_sock, SYNC_EXEC_READY, -1, buf, err) < 0)
    goto fail;
  if (sbx_seccomp_load (ctx->seccomp, &prep->notify_fd, err) < 0)
    goto fail;
  if (prep->notify_fd != probe)
    {
      sbx_error_set (err, EBADF, "seccomp notify: the listener got fd %d, not %d", prep->notify_fd, probe);
      goto fail;
    }
  if (sbx_process_sync_expect (ctx->notify_sock, SYNC_GO, NULL, err) < 0)
    {
      sbx_error_wrap (err, "seccomp listener");
      goto fail;
    }
  /* The listener is close-on-exec anyway: the container never holds it. */
  close (steal_fd (&prep->notify_fd));
  execve (file, p->args, env);
  sbx_error_sys (err, "exec `%s`", file);
fail:
  free (env);
  return -1;
}

/* The second half: the LSM label for the exec, the PATH lookup, the last
   word, the filter under no_new_privs (as late as possible, so that it
   need allow little of ours), execve.  */
int
sbx_process_finish_exec (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err)
{
  const oci_process *p = ctx->p;
  const sbx_seccomp *sc = ctx->seccomp;

  if (sbx_lsm_apply_exec (p, prep->procfd, err) < 0)
    return -1;
  /* Resolved already by the created init (sbx_process_resolve).  */
  cleanup_free char *file = prep->file ? steal_ptr (prep->file) : resolve_exec (p, err);
  if (file == NULL)
    return -1;
  /* The last restriction before the program: after the lookup, which
     the rules need not allow.  */
  if (sbx_landlock_enforce (&prep->landlock_fd, err) < 0)
    return -1;
  /* With no_new_privs only execve follows the filter: speak before it, so
     that it need not allow sendmsg (unless a listener waits for the notify
     fd, which only loading the filter makes).  */
  bool early = sc && p->no_new_privileges && !sbx_seccomp_uses_notify (sc);
  if (early && tell_exec_ready (ctx->notify_sock, -1, false, err) < 0)
    return -1;
  if (sc && p->no_new_privileges && sbx_seccomp_uses_notify (sc) && ctx->notify_sock >= 0)
    return notify_then_exec (ctx, prep, file, err);
  if (sc && p->no_new_privileges && sbx_seccomp_load (sc, &prep->notify_fd, err) < 0)
    return -1;
  int notify_fd = steal_fd (&prep->notify_fd);
  if (!early && tell_exec_ready (ctx->notify_sock, notify_fd, sc != NULL, err) < 0)
    return -1;
  {
    char **env = sbx_process_exec_env (p, prep);
    execve (file, p->args, env);
    free (env);
  }
  return sbx_error_sys (err, "exec `%s`", file);
}

