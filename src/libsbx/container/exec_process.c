/* container/exec_process.c - the process `exec` runs: a --process file as
 * is, or the container's own process with the command line's flags laid
 * over it (runc's semantics).  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "state/state.h"

int
sbx_container_exec_base (const char *root, const char *id, oci_process **out, sbx_error **err)
{
  sbx_state *s = NULL;
  oci_config *c = NULL;
  int r = -1;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  if (sbx_state_config (s, &c, err) == 0)
    {
      *out = ocispec_dup (&oci_process_type, c->process);
      if (*out == NULL)
        sbx_error_set (err, EINVAL, "container \"%s\" has no process", id);
      else
        r = 0;
    }
  oci_config_free (c);
  sbx_state_free (s);
  return r;
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
apply_flags (const sbx_exec_flags *a, oci_process *p, sbx_error **err)
{
  sbx_strv_free (p->args);
  p->args = xmalloc0 ((a->nargs + 1) * sizeof (char *));
  for (size_t k = 0; k < a->nargs; k++)
    p->args[k] = xstrdup (a->args[k]);
  p->args_len = a->nargs;
  p->terminal = a->tty;
  p->has_terminal = true;
  for (size_t k = 0; k < a->nenv; k++)
    {
      if (strchr (a->env[k], '=') == NULL)
        return sbx_error_set (err, EINVAL, "--env `%s`: want KEY=VALUE", a->env[k]);
      env_set (p, a->env[k]);
    }
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
      p->user->uid = (uint32_t)uid;
      p->user->has_uid = true;
      if (colon)
        p->user->gid = (uint32_t)gid;
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
  if (a->no_new_privs)
    p->no_new_privileges = p->has_no_new_privileges = true;
  return 0;
}

/* The file describes the whole process, so flags that would change it are
   refused by name rather than ignored (runc 1.1 ignores them).  --tty is
   what podman passes next to a file with "terminal": true: it is taken
   when the file agrees.  */
static int
process_file_overlay (const sbx_exec_flags *f, const oci_process *p, sbx_error **err)
{
  const char *flag = f->nenv           ? "--env"
                     : f->cwd          ? "--cwd"
                     : f->user         ? "--user"
                     : f->ncaps        ? "--cap"
                     : f->no_new_privs ? "--no-new-privs"
                     : f->ngids        ? "--additional-gids"
                     : f->nargs        ? "COMMAND"
                                       : NULL;
  if (flag)
    return sbx_error_set (
        err, EINVAL, "exec --process `%s`: %s cannot be combined with it (the file is the whole process)",
        f->process_file, flag);
  if (f->tty && !(p->has_terminal && p->terminal))
    return sbx_error_set (err, EINVAL,
                          "exec --process `%s`: --tty, but the file's process.terminal is not true",
                          f->process_file);
  return 0;
}

int
sbx_container_exec_process (const char *root, const char *id, const sbx_exec_flags *f, oci_process **out,
                            sbx_error **err)
{
  *out = NULL;
  if (f->process_file)
    {
      cleanup_free char *text = NULL, *msg = NULL;
      if (sbx_read_file (f->process_file, 16 << 20, &text, NULL, err) < 0)
        return -1;
      *out = ocispec_parse (&oci_process_type, text, strlen (text), &msg);
      if (*out == NULL)
        return sbx_error_set (err, EINVAL, "process.json `%s`: %s", f->process_file, msg);
      if (process_file_overlay (f, *out, err) < 0)
        {
          ocispec_free (&oci_process_type, *out);
          *out = NULL;
          return -1;
        }
      return 0;
    }
  if (sbx_container_exec_base (root, id, out, err) < 0)
    return -1;
  if (apply_flags (f, *out, err) < 0)
    {
      ocispec_free (&oci_process_type, *out);
      *out = NULL;
      return -1;
    }
  return 0;
}
