/* cgroup/stage.c - the init's and exec's ways into the container's
 * cgroup: the staging of the init (born outside, moving itself in; see
 * cgroup.h) and the cgroup.procs files of exec's sub-cgroups.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

void
sbx_cg_stage_close (sbx_cgroup *cg)
{
  for (size_t i = 0; i < cg->n; i++)
    {
      if (cg->stage_in && cg->stage_in[i] >= 0)
        close (cg->stage_in[i]);
      if (cg->stage_out && cg->stage_out[i] >= 0)
        close (cg->stage_out[i]);
    }
  free (cg->stage_in);
  free (cg->stage_out);
  cg->stage_in = cg->stage_out = NULL;
}

/* The file through which a process moves itself into h's cgroup: on v1
   `tasks` (its calling thread: the init and exec's joiner are single
   threads), which the kernel does under cgroup_mutex alone, where a
   cgroup.procs write (the whole thread group) also takes the global
   threadgroup lock and so waits for an RCU grace period (5-50 ms on a
   loaded host, measured); v2 has only cgroup.procs for that (moving a
   thread, cgroup.threads, is for threaded subtrees).  */
static const char *
self_procs_file (const sbx_cg_hier *h)
{
  return h->unified ? "cgroup.procs" : "tasks";
}

/* Does the runtime's setup in h risk a limit of the container's cgroup
   (memory charges, forks of hooks: `limited`) or its v1 device rules (the
   mknod of linux.devices nodes: `nodes`)?  A v1 block list keeps its deny
   of `m` over the default `c *:* m` allow after it (an allow only removes
   a deny of exactly that device); v2's program lets the last match win.  */
static bool
stage_hier (sbx_cg_hier *h, bool limited, bool nodes)
{
  if (!h->unified)
    return (limited
            && (sbx_cg_has_word (h->controllers, "memory") || sbx_cg_has_word (h->controllers, "pids")))
           || (nodes && sbx_cg_has_word (h->controllers, "devices"));
  return limited && (sbx_cg_v2_available (h, "memory") || sbx_cg_v2_available (h, "pids"));
}

int
sbx_cgroup_stage_prepare (sbx_cgroup *cg, bool limited, bool nodes, sbx_error **err)
{
  bool leave = limited || nodes;
  bool differs = false;

  sbx_cg_stage_close (cg);
  cg->stage_in = xmalloc0 (cg->n * sizeof (int));
  cg->stage_out = xmalloc0 (cg->n * sizeof (int));
  for (size_t i = 0; i < cg->n; i++)
    cg->stage_in[i] = cg->stage_out[i] = -1;
  for (size_t i = 0; i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      if (sbx_cg_open (h, err) < 0)
        goto fail;
      cg->stage_in[i] = openat (h->fd, self_procs_file (h), O_WRONLY | O_CLOEXEC);
      if (cg->stage_in[i] < 0)
        {
          sbx_error_sys (err, "open `%s/%s`", h->dir, self_procs_file (h));
          goto fail;
        }
    }
  for (size_t i = 0; leave && i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      cleanup_free char *own_dir = NULL, *file = NULL;

      if (!stage_hier (h, limited, nodes))
        continue;
      if (sbx_cg_dir_for (h->mountpoint, h->mount_root, h->own, &own_dir, err) < 0)
        goto fail;
      if (strcmp (own_dir, h->dir) == 0)
        {
          /* the container's cgroup is the runtime's own: nowhere to go */
          sbx_debug ("cgroup: %s is the runtime's own: the init sets up inside it", h->dir);
          continue;
        }
      differs = true;
      file = xasprintf ("%s/%s", own_dir, self_procs_file (h));
      cg->stage_out[i] = open (file, O_WRONLY | O_CLOEXEC);
      if (cg->stage_out[i] < 0)
        {
          sbx_error_sys (err, "open `%s`", file);
          goto fail;
        }
    }
  if (leave && !differs)
    sbx_debug ("cgroup: no hierarchy to leave during setup");
  return 0;
fail:
  sbx_cg_stage_close (cg);
  return -1;
}

bool
sbx_cgroup_stage_ready (const sbx_cgroup *cg)
{
  return cg->stage_in != NULL || cg->late;
}

bool
sbx_cgroup_is_late (const sbx_cgroup *cg)
{
  return cg->late;
}

/* Slot 2i is stage_in[i], 2i+1 stage_out[i]: '1' where a descriptor is
   sent, '0' where none (not prepared, or nowhere to leave to).  */
size_t
sbx_cgroup_stage_fds (const sbx_cgroup *cg, int *fds, size_t max, char **slots)
{
  size_t n = 0;
  char *t = xmalloc0 (2 * cg->n + 1);

  for (size_t i = 0; i < 2 * cg->n; i++)
    {
      const int *arr = i % 2 ? cg->stage_out : cg->stage_in;
      int fd = arr ? arr[i / 2] : -1;
      t[i] = '0';
      if (fd >= 0 && n < max)
        {
          fds[n++] = fd;
          t[i] = '1';
        }
    }
  *slots = t;
  return n;
}

/* Takes every fd of fds: adopted, or closed on failure.  */
int
sbx_cgroup_stage_adopt (sbx_cgroup *cg, const int *fds, size_t nfds, const char *slots, sbx_error **err)
{
  size_t want = 0, k = 0;

  for (const char *p = slots; *p; p++)
    want += *p == '1';
  sbx_cg_stage_close (cg);
  if (strlen (slots) != 2 * cg->n || want != nfds)
    {
      for (size_t i = 0; i < nfds; i++)
        close (fds[i]);
      return sbx_error_set (err, EPROTO, "cgroup staging: %zu descriptors and `%s` for %zu hierarchies", nfds,
                            slots, cg->n);
    }
  if (nfds == 0)
    return 0; /* the runtime moved us by pid */
  cg->stage_in = xmalloc0 (cg->n * sizeof (int));
  cg->stage_out = xmalloc0 (cg->n * sizeof (int));
  for (size_t i = 0; i < 2 * cg->n; i++)
    (i % 2 ? cg->stage_out : cg->stage_in)[i / 2] = slots[i] == '1' ? fds[k++] : -1;
  return 0;
}

static int
write_self (int fd)
{
  ssize_t r;
  do
    r = write (fd, "0", 1);
  while (r < 0 && errno == EINTR);
  return r == 1 ? 0 : -1;
}

int
sbx_cgroup_stage_arrive (sbx_cgroup *cg, bool born_in_v2, sbx_error **err)
{
  if (cg->stage_in == NULL)
    return 0; /* the runtime moved us (sbx_process_spawn_in_cgroup) */
  for (size_t i = 0; i < cg->n; i++)
    if (!(cg->h[i].unified && born_in_v2) && write_self (cg->stage_in[i]) < 0)
      return sbx_error_sys (err, "move the container init into its cgroup `%s`", cg->h[i].dir);
  return 0;
}

int
sbx_cgroup_stage_leave (sbx_cgroup *cg, sbx_error **err)
{
  if (cg->stage_out == NULL)
    return sbx_error_set (err, 0, "cgroup staging not prepared");
  if (cg->staged_out)
    return 0;
  for (size_t i = 0; i < cg->n; i++)
    if (cg->stage_out[i] >= 0 && write_self (cg->stage_out[i]) < 0)
      {
        int e = errno;
        for (size_t j = 0; j < i; j++) /* back where we were */
          if (cg->stage_out[j] >= 0)
            write_self (cg->stage_in[j]);
        return sbx_error_set (err, e, "move the container init to the runtime's cgroup `%s`", cg->h[i].own);
      }
  cg->staged_out = true;
  return 0;
}

int
sbx_cgroup_stage_enter (sbx_cgroup *cg, sbx_error **err)
{
  if (!cg->staged_out)
    return 0;
  for (size_t i = 0; i < cg->n; i++)
    if (cg->stage_out[i] >= 0 && write_self (cg->stage_in[i]) < 0)
      return sbx_error_sys (err, "move the container init into its cgroup `%s`", cg->h[i].dir);
  cg->staged_out = false;
  return 0;
}

/* Which of the --cgroup specs `subs` applies to hierarchy h: the last
   "CONTROLLER[,CONTROLLER...]:PATH" naming one of its v1 controllers, else
   the one without controllers; -1 for none (the container's cgroup).  */
static ssize_t
sub_for (const sbx_cg_hier *h, char *const *subs, size_t nsubs)
{
  ssize_t bare = -1, mine = -1;
  for (size_t i = 0; i < nsubs; i++)
    {
      const char *colon = strchr (subs[i], ':');
      if (colon == NULL || colon == subs[i])
        {
          bare = (ssize_t)i;
          continue;
        }
      for (const char *p = subs[i]; p < colon;)
        {
          size_t n = strcspn (p, ",:");
          cleanup_free char *ctrl = xasprintf ("%.*s", (int)n, p);
          if (!h->unified && sbx_cg_has_word (h->controllers, ctrl))
            mine = (ssize_t)i;
          p += n + (p[n] == ',');
        }
    }
  return mine >= 0 ? mine : bare;
}

/* The path of a spec: what follows the controllers.  */
static const char *
sub_path (const char *spec)
{
  const char *colon = strchr (spec, ':');
  return colon ? colon + 1 : spec;
}

/* Check the specs before anything is opened: a path for all controllers
   only alone (as runc), and every controller named is one of a v1
   hierarchy.  */
static int
check_subs (sbx_cgroup *cg, char *const *subs, size_t nsubs, sbx_error **err)
{
  for (size_t i = 0; i < nsubs; i++)
    {
      const char *colon = strchr (subs[i], ':');
      if (colon == NULL || colon == subs[i])
        {
          if (nsubs > 1)
            return sbx_error_set (err, EINVAL,
                                  "--cgroup `%s`: a path for every controller must be the only --cgroup "
                                  "(with several, each is CONTROLLER:PATH)",
                                  subs[i]);
          continue;
        }
      for (const char *p = subs[i]; p < colon;)
        {
          size_t n = strcspn (p, ",:");
          cleanup_free char *ctrl = xasprintf ("%.*s", (int)n, p);
          bool found = sbx_cg_find_v1 (cg, ctrl) != NULL;
          if (n == 0)
            return sbx_error_set (err, EINVAL, "--cgroup `%s`: an empty controller name", subs[i]);
          if (!found && cg->mode == SBX_CGROUP_V2)
            return sbx_error_set (
                err, EINVAL,
                "--cgroup `%s`: a controller prefix needs cgroup v1 (this host has only the "
                "unified hierarchy: give the path alone)",
                subs[i]);
          if (!found)
            return sbx_error_set (err, EINVAL, "--cgroup `%s`: no cgroup v1 hierarchy has controller `%.*s`",
                                  subs[i], (int)n, p);
          p += n + (p[n] == ',');
        }
    }
  return 0;
}

char *
sbx_cg_join_below (const char *base, const char *sub)
{
  size_t blen = strlen (base), len;
  char *out = xmalloc0 (blen + strlen (sub) + 3);
  cleanup_free char *copy = xasprintf ("%s/%s", base, sub);
  char *save = NULL;

  len = 0;
  for (char *c = strtok_r (copy, "/", &save); c; c = strtok_r (NULL, "/", &save))
    {
      if (strcmp (c, ".") == 0)
        continue;
      if (strcmp (c, "..") == 0)
        {
          while (len > 0 && out[len - 1] != '/')
            len--;
          if (len > 0)
            len--;
          out[len] = '\0';
          continue;
        }
      out[len++] = '/';
      strcpy (out + len, c);
      len += strlen (c);
    }
  while (blen > 1 && base[blen - 1] == '/')
    blen--;
  if (blen <= 1)
    blen = 0; /* base "/": everything is below */
  if (strncmp (out, base, blen) != 0 || (out[blen] != '\0' && out[blen] != '/'))
    {
      free (out);
      return NULL;
    }
  return out;
}

/* cgroup.procs of sub (a path below h's cgroup) through h's directory fd,
   never leaving it.  */
static int
open_sub_procs (sbx_cg_hier *h, const char *spec, const char *sub, sbx_error **err)
{
  cleanup_free char *full = sbx_cg_join_below (h->path, sub);
  cleanup_free char *rel = NULL;
  struct open_how how = { .flags = O_WRONLY | O_CLOEXEC,
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
  const char *below;
  int fd;

  if (full == NULL)
    return sbx_error_set (err, EINVAL, "--cgroup `%s`: not below the container's cgroup `%s`", spec, h->path);
  below = full + strlen (h->path) - (strcmp (h->path, "/") == 0);
  while (*below == '/')
    below++;
  rel = xasprintf ("%s%scgroup.procs", below, *below ? "/" : "");
  fd = (int)syscall (SYS_openat2, h->fd, rel, &how, sizeof how);
  if (fd < 0)
    return sbx_error_sys (err, "--cgroup `%s`: open `%s/%s`", spec, h->dir, rel);
  return fd;
}

int
sbx_cgroup_procs_open (sbx_cgroup *cg, char *const *subs, size_t nsubs, int **fds, size_t *n, sbx_error **err)
{
  if (check_subs (cg, subs, nsubs, err) < 0)
    return -1;
  *fds = xmalloc0 ((cg->n + 1) * sizeof (int));
  *n = 0;
  for (size_t i = 0; i < cg->n; i++)
    {
      sbx_cg_hier *h = &cg->h[i];
      ssize_t k = sub_for (h, subs, nsubs);
      int fd;
      if (sbx_cg_open (h, err) < 0)
        fd = -1;
      else if (k >= 0)
        fd = open_sub_procs (h, subs[k], sub_path (subs[k]), err);
      else if ((fd = openat (h->fd, "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0)
        sbx_error_sys (err, "open `%s/cgroup.procs`", h->dir);
      if (fd < 0)
        {
          while (*n > 0)
            close ((*fds)[--*n]);
          free (*fds);
          *fds = NULL;
          return -1;
        }
      (*fds)[(*n)++] = fd;
    }
  return 0;
}

int
sbx_cgroup_procs_enter_self (const int *fds, size_t n, sbx_error **err)
{
  for (size_t i = 0; i < n; i++)
    if (write_self (fds[i]) < 0)
      return sbx_error_sys (err, "move the process into the container's cgroup");
  return 0;
}
