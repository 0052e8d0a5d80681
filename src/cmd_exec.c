/* cmd_exec.c - `sbxrun exec`: run a new process in a container, described
 * by --process FILE (as podman and containerd do) or by flags + arguments
 * layered over the container's own process (as runc does).  */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"

enum
{
  OPT_PROCESS,
  OPT_TTY,
  OPT_CONSOLE_SOCKET,
  OPT_DETACH,
  OPT_PID_FILE,
  OPT_ENV,
  OPT_CWD,
  OPT_USER,
  OPT_CAP,
  OPT_NNP,
  OPT_PRESERVE_FDS,
  OPT_GIDS,
  OPT_CGROUP,
  OPT_IGNORE_PAUSED,
};
static const sbx_opt opts[] = {
  [OPT_PROCESS] = { "process", 'p', true, "FILE", "process.json describing the whole process" },
  [OPT_TTY] = { "tty", 't', false, NULL, "allocate a pseudo-terminal" },
  [OPT_CONSOLE_SOCKET] = { "console-socket", 0, true, "PATH", "unix socket receiving the pty master" },
  [OPT_DETACH] = { "detach", 'd', false, NULL, "do not wait for the process" },
  [OPT_PID_FILE] = { "pid-file", 0, true, "FILE", "write the process' pid to FILE" },
  [OPT_ENV] = { "env", 'e', true, "K=V", "set an environment variable (repeatable)" },
  [OPT_CWD] = { "cwd", 0, true, "DIR", "working directory in the container" },
  [OPT_USER] = { "user", 'u', true, "UID[:GID]", "run as this user" },
  [OPT_CAP] = { "cap", 'c', true, "CAP", "add a capability (repeatable)" },
  [OPT_NNP] = { "no-new-privs", 0, false, NULL, "set no_new_privs" },
  [OPT_PRESERVE_FDS] = { "preserve-fds", 0, true, "N", "pass fds 3..3+N-1 to the process" },
  [OPT_GIDS] = { "additional-gids", 'g', true, "GID", "add a supplementary group (repeatable)" },
  [OPT_CGROUP] = { "cgroup", 0, true, "[CTRL[,CTRL]:]PATH",
                   "join this existing sub-cgroup of the container's (repeatable; CTRL: v1 only)" },
  [OPT_IGNORE_PAUSED]
  = { "ignore-paused", 0, false, NULL, "exec into a paused container (runs once resumed)" },
  { 0 },
};

struct args
{
  sbx_exec_opts o;
  sbx_exec_flags f;
  char **env, **caps, **cgroups;
  uint32_t gids[64];
};

static char **
push (char **v, size_t *n, const char *s)
{
  v = xrealloc (v, (*n + 2) * sizeof *v);
  v[(*n)++] = (char *) s;
  v[*n] = NULL;
  return v;
}

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  struct args *a = data;
  long long n;
  switch (key)
    {
    case OPT_PROCESS: a->f.process_file = arg; break;
    case OPT_TTY: a->f.tty = true; break;
    case OPT_CONSOLE_SOCKET: a->o.console_socket = arg; break;
    case OPT_DETACH: a->o.detach = true; break;
    case OPT_PID_FILE: a->o.pid_file = arg; break;
    case OPT_ENV:
      a->f.env = a->env = push (a->env, &a->f.nenv, arg);
      break;
    case OPT_CWD: a->f.cwd = arg; break;
    case OPT_USER: a->f.user = arg; break;
    case OPT_CAP: a->f.caps = a->caps = push (a->caps, &a->f.ncaps, arg); break;
    case OPT_NNP: a->f.no_new_privs = true; break;
    case OPT_PRESERVE_FDS:
      if (sbx_parse_int64 (arg, &n) < 0 || n < 0 || n > 65536)
        return sbx_error_set (err, EINVAL, "invalid number `%s`", arg);
      a->o.preserve_fds = (int) n;
      break;
    case OPT_GIDS:
      if (sbx_parse_int64 (arg, &n) < 0 || n < 0 || n > UINT32_MAX || a->f.ngids == 64)
        return sbx_error_set (err, EINVAL, "invalid group id `%s`", arg);
      a->gids[a->f.ngids++] = (uint32_t) n;
      break;
    case OPT_CGROUP:
      a->o.cgroups = a->cgroups = push (a->cgroups, &a->o.ncgroups, arg);
      break;
    case OPT_IGNORE_PAUSED:
      a->o.ignore_paused = true;
      break;
    }
  return 0;
}

/* As runc: once the command line is understood (options and an ID), any
   failure of exec itself exits 255, so that a caller tells it from the
   process's own exit status.  */
static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  struct args a = { 0 };
  int i, r = -1;

  i = sbx_cli_parse (&sbx_cmd_exec, argc, argv, on_opt, &a, err);
  if (i < 0)
    r = i;
  else if (a.f.process_file && argc - i > 1)
    {
      /* runc ignores them (and exits 255 if the rest fails); refuse them,
         with its status.  */
      sbx_error_set (err, EINVAL,
                     "exec: `%s`: no arguments after the ID with --process (the file gives them)",
                     argv[i + 1]);
      r = SBX_CLI_FAILED_255;
    }
  else if (sbx_cli_nargs (&sbx_cmd_exec, argc - i, 1, -1, err) == 0)
    {
      a.o.root = g->root;
      a.o.id = argv[i];
      a.f.args = argv + i + 1;
      a.f.nargs = (size_t) (argc - i - 1);
      a.f.gids = a.gids;
      a.o.flags = &a.f;
      if (a.f.process_file == NULL && a.f.nargs == 0)
        sbx_error_set (err, EINVAL, "exec: no COMMAND given (nor --process)");
      else
        r = sbx_container_exec (&a.o, err);
      if (r < 0)
        r = SBX_CLI_FAILED_255;
    }
  free (a.env);
  free (a.caps);
  free (a.cgroups);
  return r;
}

const sbx_command sbx_cmd_exec = {
  .name = "exec",
  .args = "ID [COMMAND [ARG...]]",
  .summary = "run a new process inside a running container",
  .opts = opts,
  .run = run,
  .stop_at_args = true,
  .sealed = true,
};
