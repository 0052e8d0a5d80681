/* cmd_exec.c - `sbxrun exec`: run a new process in a container, described
 * by --process FILE (as podman and containerd do) or by flags + arguments
 * layered over the container's own process (as runc does).  */
#include <config.h>

#include <errno.h>
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
  { 0 },
};

struct args
{
  sbx_exec_opts o;
  const char *process_file, *cwd, *user;
  bool tty, nnp;
  char **env, **caps;
  size_t nenv, ncaps;
  uint32_t gids[64];
  size_t ngids;
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
    case OPT_PROCESS: a->process_file = arg; break;
    case OPT_TTY: a->tty = true; break;
    case OPT_CONSOLE_SOCKET: a->o.console_socket = arg; break;
    case OPT_DETACH: a->o.detach = true; break;
    case OPT_PID_FILE: a->o.pid_file = arg; break;
    case OPT_ENV:
      if (!strchr (arg, '='))
        return sbx_error_set (err, EINVAL, "`%s`: want KEY=VALUE", arg);
      a->env = push (a->env, &a->nenv, arg);
      break;
    case OPT_CWD: a->cwd = arg; break;
    case OPT_USER: a->user = arg; break;
    case OPT_CAP: a->caps = push (a->caps, &a->ncaps, arg); break;
    case OPT_NNP: a->nnp = true; break;
    case OPT_PRESERVE_FDS:
      if (sbx_parse_int64 (arg, &n) < 0 || n < 0 || n > 65536)
        return sbx_error_set (err, EINVAL, "invalid number `%s`", arg);
      a->o.preserve_fds = (int) n;
      break;
    case OPT_GIDS:
      if (sbx_parse_int64 (arg, &n) < 0 || n < 0 || n > UINT32_MAX || a->ngids == 64)
        return sbx_error_set (err, EINVAL, "invalid group id `%s`", arg);
      a->gids[a->ngids++] = (uint32_t) n;
      break;
    }
  return 0;
}

static void
strv_add (char ***v, size_t *len, const char *s)
{
  for (size_t i = 0; i < *len; i++)
    if (strcmp ((*v)[i], s) == 0)
      return;
  *v = xrealloc (*v, (*len + 2) * sizeof **v);
  (*v)[(*len)++] = xstrdup (s);
  (*v)[*len] = NULL;
}

/* Set KEY=V, replacing an existing KEY.  */
static void
env_set (oci_process *p, const char *kv)
{
  size_t klen = strchr (kv, '=') - kv + 1;
  for (size_t i = 0; i < p->env_len; i++)
    if (strncmp (p->env[i], kv, klen) == 0)
      {
        free (p->env[i]);
        p->env[i] = xstrdup (kv);
        return;
      }
  p->env = xrealloc (p->env, (p->env_len + 2) * sizeof (char *));
  p->env[p->env_len++] = xstrdup (kv);
  p->env[p->env_len] = NULL;
}

static int
apply_flags (struct args *a, oci_process *p, int nargs, char **args, sbx_error **err)
{
  sbx_strv_free (p->args);
  p->args = xmalloc0 ((nargs + 1) * sizeof (char *));
  for (int k = 0; k < nargs; k++)
    p->args[k] = xstrdup (args[k]);
  p->args_len = nargs;
  p->terminal = a->tty;
  p->has_terminal = true;
  for (size_t k = 0; k < a->nenv; k++)
    env_set (p, a->env[k]);
  if (a->cwd)
    {
      free (p->cwd);
      p->cwd = xstrdup (a->cwd);
    }
  if (a->user)
    {
      long long uid, gid = -1;
      cleanup_free char *u = xstrdup (a->user);
      char *colon = strchr (u, ':');
      if (colon)
        *colon = '\0';
      if (sbx_parse_int64 (u, &uid) < 0 || uid < 0 || uid > UINT32_MAX
          || (colon && (sbx_parse_int64 (colon + 1, &gid) < 0 || gid < 0 || gid > UINT32_MAX)))
        return sbx_error_set (err, EINVAL, "exec: --user `%s`: want numeric UID[:GID]", a->user);
      if (p->user == NULL)
        p->user = xmalloc0 (sizeof *p->user);
      p->user->uid = (uint32_t) uid;
      p->user->has_uid = true;
      if (colon)
        p->user->gid = (uint32_t) gid;
      p->user->has_gid = true;
    }
  if (a->ngids)
    {
      if (p->user == NULL)
        p->user = xmalloc0 (sizeof *p->user);
      free (p->user->additional_gids);
      p->user->additional_gids = xmalloc0 (a->ngids * sizeof (uint32_t));
      memcpy (p->user->additional_gids, a->gids, a->ngids * sizeof (uint32_t));
      p->user->additional_gids_len = a->ngids;
    }
  /* --cap: bounding, effective and permitted only, as runc does (not
     inheritable or ambient: a non-root process keeps it no further than
     its own execve).  */
  if (a->ncaps)
    {
      if (p->capabilities == NULL)
        p->capabilities = xmalloc0 (sizeof *p->capabilities);
      oci_capabilities *c = p->capabilities;
      for (size_t k = 0; k < a->ncaps; k++)
        {
          strv_add (&c->bounding, &c->bounding_len, a->caps[k]);
          strv_add (&c->effective, &c->effective_len, a->caps[k]);
          strv_add (&c->permitted, &c->permitted_len, a->caps[k]);
        }
    }
  if (a->nnp)
    p->no_new_privileges = p->has_no_new_privileges = true;
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  struct args a = { 0 };
  oci_process *p = NULL;
  int i, r = -1;

  i = sbx_cli_parse (&sbx_cmd_exec, argc, argv, on_opt, &a, err);
  if (i < 0)
    {
      r = i;
      goto out;
    }
  if (sbx_cli_nargs (&sbx_cmd_exec, argc - i, a.process_file ? 1 : 2, a.process_file ? 1 : -1, err) < 0)
    goto out;
  a.o.root = g->root;
  a.o.id = argv[i];
  if (a.process_file)
    {
      cleanup_free char *text = NULL, *msg = NULL;
      if (sbx_read_file (a.process_file, 16 << 20, &text, NULL, err) < 0)
        goto out;
      p = ocispec_parse (&oci_process_type, text, strlen (text), &msg);
      if (p == NULL)
        {
          sbx_error_set (err, EINVAL, "process.json `%s`: %s", a.process_file, msg);
          goto out;
        }
    }
  else
    {
      if (sbx_container_exec_base (g->root, a.o.id, &p, err) < 0)
        goto out;
      if (apply_flags (&a, p, argc - i - 1, argv + i + 1, err) < 0)
        goto out;
    }
  a.o.process = p;
  r = sbx_container_exec (&a.o, err);
out:
  ocispec_free (&oci_process_type, p);
  free (a.env);
  free (a.caps);
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
