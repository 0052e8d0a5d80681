/* checkpoint.c - `checkpoint` and `restore` over CRIU (checkpoint.h).  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "cgroup/cgroup.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_internal.h"
#include "container/container.h"
#include "egress/egress.h"
#include "fs/fs.h"
#include "process/process.h"
#include "security/security.h"
#include "state/state.h"

/* What restore must give back to CRIU, next to its images.  */
#define SBX_CRIU_INFO "sbx-criu.txt"
#define NETNS_KEY "sbx-netns"
#define DEFAULT_IMAGES "checkpoint"
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#endif

/* Filesystems CRIU dumps and mounts again itself (a tmpfs with its
   contents); any other mount but the root is external to the image.  */
static bool
criu_native_fs (const char *t)
{
  static const char *const fs[]
      = { "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "bpf", NULL };
  for (const char *const *p = fs; *p; p++)
    if (strcmp (t, *p) == 0)
      return true;
  return false;
}

static bool
path_within (const char *path, const char *dir)
{
  size_t l = strlen (dir);
  if (strcmp (dir, "/") == 0)
    return true;
  return strncmp (path, dir, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

/* Where the runtime sees the object mounted at m: the host mount of the same
   filesystem whose root is the longest prefix of m's root.  */
static char *
host_source (const sbx_mnt *host, size_t nh, const sbx_mnt *m)
{
  const sbx_mnt *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < nh; i++)
    {
      size_t l = strcmp (host[i].root, "/") == 0 ? 0 : strlen (host[i].root);
      if (host[i].maj != m->maj || host[i].min != m->min || !path_within (m->root, host[i].root))
        continue;
      if (best == NULL || l > best_len)
        best = &host[i], best_len = l;
    }
  if (best == NULL)
    return NULL;
  if (m->root[best_len] == '\0')
    return xstrdup (best->point);
  return xasprintf ("%s%s", strcmp (best->point, "/") == 0 ? "" : best->point, m->root + best_len);
}

/* Mark every mount of the container that CRIU cannot rebuild by itself as
   external (key: its mount point) and record its host source in info, for
   restore.  */
static int
external_mounts (pid_t pid, bool terminal, sbx_argv *a, FILE *info, sbx_error **err)
{
  sbx_mnt *cm = NULL, *hm = NULL;
  size_t nc = 0, nh = 0;
  char path[64];
  int r = 0;

  snprintf (path, sizeof path, "/proc/%d/mountinfo", pid);
  if (sbx_mountinfo_read (path, &cm, &nc, err) < 0)
    return sbx_error_wrap (err, "the container's mounts");
  if (sbx_mountinfo_read ("/proc/self/mountinfo", &hm, &nh, err) < 0)
    {
      sbx_mountinfo_free (cm, nc);
      return sbx_error_wrap (err, "the runtime's mounts");
    }
  for (size_t i = 0; i < nc && r == 0; i++)
    {
      const sbx_mnt *m = &cm[i];
      bool internal = false;
      cleanup_free char *src = NULL;
      if (strcmp (m->point, "/") == 0)
        continue; /* the rootfs: --root on restore */
      if (terminal && strcmp (m->point, "/dev/console") == 0 && strcmp (m->fstype, "devpts") == 0)
        {
          /* The pty slave bound there has its master outside (the console
             socket's receiver), which CRIU refuses for a mount it would
             rebuild: external, and on restore the new pty's slave.  */
          sbx_argv_add (a, "--external");
          sbx_argv_add (a, "mnt[%s]:%s", m->point, m->point);
          fprintf (info, "console\t%s\n", m->point);
          continue;
        }
      if (criu_native_fs (m->fstype))
        {
          /* Its own instance, or a bind of one the container has.  */
          internal = strcmp (m->root, "/") == 0;
          for (size_t j = 0; j < nc && !internal; j++)
            internal = j != i && cm[j].maj == m->maj && cm[j].min == m->min && strcmp (cm[j].root, "/") == 0;
        }
      if (internal)
        continue;
      if (strpbrk (m->point, "\t\n") || strpbrk (m->root, "\t\n"))
        r = sbx_error_set (err, EINVAL, "mount `%s`: a tab or newline in its path", m->point);
      else if ((src = host_source (hm, nh, m)) == NULL)
        r = sbx_error_set (err, ENOENT,
                           "mount `%s` (%s, %u:%u %s): its source is not visible to the runtime, so "
                           "restore could not mount it again",
                           m->point, m->fstype, m->maj, m->min, m->root);
      else
        {
          sbx_argv_add (a, "--external");
          sbx_argv_add (a, "mnt[%s]:%s", m->point, m->point);
          fprintf (info, "mnt\t%s\t%s\n", m->point, src);
        }
    }
  sbx_mountinfo_free (cm, nc);
  sbx_mountinfo_free (hm, nh);
  return r;
}

static const char *
joined_ns (const oci_config *c, const char *type)
{
  for (size_t i = 0; c->linux && i < c->linux->namespaces_len; i++)
    if (strcmp (c->linux->namespaces[i]->type, type) == 0 && c->linux->namespaces[i]->path
        && c->linux->namespaces[i]->path[0])
      return c->linux->namespaces[i]->path;
  return NULL;
}

int
sbx_criu_ready (const char *criu, const char *root, const char *what, sbx_error **err)
{
  cleanup_free char *why = NULL;
  if (sbx_criu_usable (criu, root, &why))
    return 0;
  return sbx_error_set (err, ENOTSUP,
                        "%s: CRIU cannot work on this host: %s (hint: `criu check` must pass; a kernel "
                        "newer than the criu release often breaks it: update criu, or select another "
                        "binary with --criu PATH)",
                        what, why);
}

/* CRIU dumps and restores namespaces, mounts and other users' ids only
   with CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE in its --unprivileged
   mode, which sbxrun does not drive): an unprivileged caller is refused
   by name, before CRIU runs or anything is made.  */
int
sbx_criu_refuse_rootless (const char *what, sbx_error **err)
{
  return sbx_error_set (err, EPERM,
                        "%s: not supported for an unprivileged caller (rootless): CRIU needs "
                        "CAP_SYS_ADMIN to %s a container's namespaces, mounts and processes, and sbxrun "
                        "does not drive its --unprivileged mode (CAP_CHECKPOINT_RESTORE): run it as "
                        "root (see docs/rootless.md)",
                        what, sbx_has_prefix (what, "restore") ? "recreate" : "dump");
}

/* The image (or work) directory: the given path, created if missing, or
   <state dir>/<name>.  malloc'd absolute path.  */
static char *
image_dir (sbx_state *s, const char *given, const char *name, bool create, sbx_error **err)
{
  char *p;
  if (given == NULL)
    {
      if (create && mkdirat (s->dir_fd, name, 0700) < 0 && errno != EEXIST)
        {
          sbx_error_sys (err, "create `%s/%s`", s->dir, name);
          return NULL;
        }
      return xasprintf ("%s/%s", s->dir, name);
    }
  if (create && sbx_mkdir_p (given, 0700, err) < 0)
    return NULL;
  p = realpath (given, NULL);
  if (p == NULL)
    sbx_error_sys (err, "`%s`", given);
  return p;
}

static int
check_mode (const char *m, sbx_error **err)
{
  if (m == NULL || !strcmp (m, "soft") || !strcmp (m, "full") || !strcmp (m, "strict")
      || !strcmp (m, "ignore"))
    return 0;
  return sbx_error_set (err, EINVAL, "--manage-cgroups-mode `%s`: want soft, full, strict or ignore", m);
}

/* Wait (bounded) until pid is gone after CRIU killed it.  */
static void
wait_gone (pid_t pid)
{
  cleanup_close int pidfd = sbx_pidfd_open (pid);
  struct pollfd p = { pidfd, POLLIN, 0 };
  if (pidfd >= 0)
    poll (&p, 1, 10000);
  waitpid (pid, NULL, WNOHANG);
}

/* Does pid lead its own session and process group (fields 5 and 6 of
   /proc/PID/stat)?  */
/* CRIU's options for the flags checkpoint and restore share (the same
   on dump and restore).  */
static void
criu_flags_args (sbx_argv *a, const sbx_criu_flags *f)
{
  sbx_argv_add (a, "--manage-cgroups=%s", f->manage_cgroups_mode ? f->manage_cgroups_mode : "soft");
  if (f->tcp_established)
    sbx_argv_add (a, "--tcp-established");
  if (f->ext_unix_sk)
    sbx_argv_add (a, "--ext-unix-sk");
  if (f->shell_job)
    sbx_argv_add (a, "--shell-job");
  if (f->file_locks)
    sbx_argv_add (a, "--file-locks");
}

static bool
own_session (pid_t pid)
{
  unsigned long long v[7]; /* pgrp is field 5, the session 6 */
  if (sbx_proc_stat (pid, v, 6) < 0)
    return true;
  return v[5] == (unsigned long long)pid && v[6] == (unsigned long long)pid;
}

/* --page-server ADDRESS:PORT ([IPV6]:PORT): a numeric address and a port
   in 1..65535.  *addr malloc'd.  */
static int
parse_page_server (const char *s, char **addr, int *port, sbx_error **err)
{
  const char *colon = strrchr (s, ':');
  cleanup_free char *a = NULL;
  unsigned char buf[sizeof (struct in6_addr)];
  long long p;
  if (colon == NULL || colon == s)
    return sbx_error_set (err, EINVAL, "--page-server `%s`: want ADDRESS:PORT", s);
  if (s[0] == '[' && colon[-1] == ']')
    a = strndup (s + 1, (size_t)(colon - s - 2));
  else
    a = strndup (s, (size_t)(colon - s));
  if (a == NULL)
    abort ();
  if (inet_pton (AF_INET, a, buf) != 1 && inet_pton (AF_INET6, a, buf) != 1)
    return sbx_error_set (err, EINVAL, "--page-server `%s`: `%s` is not a numeric IPv4 or IPv6 address", s,
                          a);
  if (sbx_parse_int64 (colon + 1, &p) < 0 || p < 1 || p > 65535)
    return sbx_error_set (err, EINVAL, "--page-server `%s`: port `%s` is not in 1..65535", s, colon + 1);
  *addr = steal_ptr (a);
  *port = (int)p;
  return 0;
}

/* The flags of memory transfer: --page-server, --lazy-pages, --status-fd,
   checked before CRIU runs (*addr malloc'd, or NULL without a page server). */
static int
memory_flags (const sbx_checkpoint_opts *o, char **addr, int *port, sbx_error **err)
{
  int fl = 0;
  *addr = NULL;
  if (o->status_fd >= 0 && !o->f.lazy_pages)
    return sbx_error_set (
        err, EINVAL, "--status-fd %d: only with --lazy-pages (CRIU reports there when it serves the memory)",
        o->status_fd);
  if (o->f.lazy_pages && o->page_server == NULL)
    return sbx_error_set (err, EINVAL,
                          "--lazy-pages needs --page-server ADDRESS:PORT: where `criu lazy-pages` fetches "
                          "the memory from");
  if (o->f.lazy_pages && o->pre_dump)
    return sbx_error_set (err, EINVAL,
                          "--lazy-pages and --pre-dump: a pre-dump copies the memory, a lazy dump keeps it");
  if (o->status_fd >= 0 && ((fl = fcntl (o->status_fd, F_GETFL)) < 0 || (fl & O_ACCMODE) == O_RDONLY))
    return sbx_error_set (err, EBADF, "--status-fd %d: %s", o->status_fd,
                          fl < 0 ? "not an open file descriptor" : "not open for writing");
  if (o->page_server && parse_page_server (o->page_server, addr, port, err) < 0)
    return -1;
  return 0;
}

/* CRIU's options for them.  */
static int
memory_args (const sbx_checkpoint_opts *o, sbx_argv *a, sbx_error **err)
{
  cleanup_free char *addr = NULL;
  int port = 0;
  if (memory_flags (o, &addr, &port, err) < 0)
    return -1;
  if (o->f.lazy_pages && sbx_criu_feature (o->criu, "uffd-noncoop", "--lazy-pages", err) < 0)
    return -1;
  if (o->f.lazy_pages)
    sbx_argv_add (a, "--lazy-pages");
  else if (addr)
    sbx_argv_add (a, "--page-server");
  if (addr)
    {
      sbx_argv_add (a, "--address=%s", addr);
      sbx_argv_add (a, "--port=%d", port);
    }
  if (o->status_fd >= 0)
    sbx_argv_add (a, "--status-fd=3"); /* the first of sbx_criu_run's fds */
  return 0;
}

/* A paused container (containerd pauses before it checkpoints): CRIU is
   told its frozen cgroup, which it dumps as it is and leaves frozen.  */
static int
freeze_cgroup_arg (sbx_state *s, sbx_argv *a, sbx_error **err)
{
  sbx_cgroup *cg = NULL;
  const char *v1;
  if (s->st->cgroup == NULL)
    return sbx_error_set (err, EINVAL, "a paused container without a cgroup");
  if (sbx_cgroup_load (s->st->cgroup, &cg, err) < 0)
    return sbx_error_wrap (err, "the paused container's cgroup");
  if (sbx_cgroup_host_mode () == SBX_CGROUP_V1 && (v1 = sbx_cgroup_controller_path (cg, "freezer")) != NULL)
    sbx_argv_add (a, "--freeze-cgroup=/sys/fs/cgroup/freezer%s", v1);
  else
    sbx_argv_add (a, "--freeze-cgroup=/sys/fs/cgroup%s", sbx_cgroup_path (cg));
  sbx_cgroup_free (cg);
  return 0;
}

int
sbx_checkpoint_locked (const sbx_checkpoint_opts *o, sbx_state *s, const oci_config *c, sbx_error **err)
{
  static const char *const unsupported_joins[]
      = { "pid", "ipc", "uts", "mount", "user", "cgroup", "time", NULL };
  sbx_argv a = { 0 };
  cleanup_free char *img = NULL, *work = NULL, *log = NULL, *info_text = NULL;
  cleanup_file FILE *info = NULL;
  size_t info_len = 0;
  const char *joined_net = joined_ns (c, "network");
  pid_t pid = s->st->pid;
  int r = -1;

  for (const char *const *t = unsupported_joins; *t; t++)
    if (joined_ns (c, *t))
      return sbx_error_set (err, ENOTSUP,
                            "linux.namespaces: the %s namespace is joined by path (`%s`): only a joined "
                            "network namespace can be checkpointed",
                            *t, joined_ns (c, *t));
  if (s->st->host_root)
    return sbx_error_set (err, ENOTSUP,
                          "linux.namespaces: no mount namespace of its own, but mounts (made below a private "
                          "bind of the rootfs `%s` in a namespace shared with others): CRIU does not dump "
                          "those, so the container is not checkpointed",
                          s->st->host_root->path);
  {
    /* CRIU neither dumps nor restores a Landlock domain: the restored
       processes would run without it.  */
    sbx_landlock *ll = NULL;
    if (sbx_landlock_parse (c, true, &ll, err) < 0)
      return -1;
    sbx_landlock_free (ll);
    if (ll)
      return sbx_error_set (err, ENOTSUP,
                            "annotations " SBX_LANDLOCK_PREFIX "*: CRIU cannot restore a Landlock "
                            "ruleset, so a container with one is not checkpointed");
  }
  if (o->empty_ns && strcmp (o->empty_ns, "network") != 0)
    return sbx_error_set (err, EINVAL, "--empty-ns `%s`: only `network` is supported", o->empty_ns);
  if (check_mode (o->f.manage_cgroups_mode, err) < 0)
    return -1;
  sbx_argv_add (&a, "criu");
  sbx_argv_add (&a, o->pre_dump ? "pre-dump" : "dump");
  if (memory_args (o, &a, err) < 0)
    goto out;
  if ((img = image_dir (s, o->f.image_path, DEFAULT_IMAGES, true, err)) == NULL)
    {
      sbx_error_wrap (err, "--image-path");
      goto out;
    }
  if ((work = o->f.work_path ? image_dir (s, o->f.work_path, NULL, true, err) : xstrdup (img)) == NULL)
    {
      sbx_error_wrap (err, "--work-path");
      goto out;
    }
  log = xasprintf ("%s/%s.log", work, o->pre_dump ? "pre-dump" : "dump");
  info = open_memstream (&info_text, &info_len);
  sbx_argv_add (&a, "--tree=%d", pid);
  sbx_argv_add (&a, "--images-dir=%s", img);
  sbx_argv_add (&a, "--work-dir=%s", work);
  sbx_argv_add (&a, "--log-file=%s", log);
  sbx_argv_add (&a, "-v4");
  criu_flags_args (&a, &o->f);
  if (strcmp (sbx_state_status (s), "paused") == 0 && freeze_cgroup_arg (s, &a, err) < 0)
    goto out;
  if (o->leave_running && !o->pre_dump)
    sbx_argv_add (&a, "--leave-running");
  if (o->f.shell_job || !own_session (pid))
    {
      /* A session (or group) begun outside the container's pid namespace
         (the caller's: sbxrun does not setsid without a terminal) cannot
         be dumped; it is taken from whoever restores, as a shell job.  */
      if (!o->f.shell_job)
        sbx_argv_add (&a, "--shell-job");
      fprintf (info, "shelljob\t1\n");
    }
  if (o->auto_dedup)
    sbx_argv_add (&a, "--auto-dedup");
  if (o->pre_dump || o->parent_path)
    sbx_argv_add (&a, "--track-mem");
  if (o->parent_path)
    sbx_argv_add (&a, "--prev-images-dir=%s", o->parent_path);
  if (o->empty_ns)
    {
      sbx_argv_add (&a, "--empty-ns=net");
      fprintf (info, "emptyns\tnet\n");
    }
  if (joined_net && !o->empty_ns)
    {
      /* Not ours to dump: restore joins the same path again.  */
      char p[64];
      struct stat st;
      snprintf (p, sizeof p, "/proc/%d/ns/net", pid);
      if (stat (p, &st) < 0)
        {
          sbx_error_sys (err, "network namespace of the container");
          goto out;
        }
      sbx_argv_add (&a, "--external");
      sbx_argv_add (&a, "net[%llu]:" NETNS_KEY, (unsigned long long)st.st_ino);
      fprintf (info, "net\t%s\n", NETNS_KEY);
    }
  if (c->process && c->process->terminal)
    {
      /* The pty's master is held outside (console socket): its slave is an
         external tty, handed a new pty on restore.  */
      char p[64];
      struct stat st;
      snprintf (p, sizeof p, "/proc/%d/fd/0", pid);
      if (stat (p, &st) < 0 || !S_ISCHR (st.st_mode))
        {
          sbx_error_set (err, ENOTTY, "process.terminal: the init's stdin is not its terminal");
          goto out;
        }
      sbx_argv_add (&a, "--external");
      sbx_argv_add (&a, "tty[%llx:%llx]", (unsigned long long)st.st_rdev, (unsigned long long)st.st_dev);
      fprintf (info, "tty\ttty[%llx:%llx]\n", (unsigned long long)st.st_rdev, (unsigned long long)st.st_dev);
    }
  for (int fd = 0; fd < 3; fd++)
    {
      /* Pipes to the engine (conmon, the shim): restore hands CRIU the
         restoring caller's own stdio in their place.  */
      char p[64], target[128];
      ssize_t l;
      snprintf (p, sizeof p, "/proc/%d/fd/%d", pid, fd);
      l = readlink (p, target, sizeof target - 1);
      if (l > 0 && (target[l] = '\0', sbx_has_prefix (target, "pipe:[")))
        fprintf (info, "stdio\t%d\t%s\n", fd, target);
    }
  if (external_mounts (pid, c->process && c->process->terminal, &a, info, err) < 0)
    goto out;
  fclose (info);
  info = NULL;
  {
    cleanup_close int dfd = open (img, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || sbx_write_file_atomic (dfd, SBX_CRIU_INFO, info_text, info_len, 0600, err) < 0)
      {
        if (dfd < 0)
          sbx_error_sys (err, "open `%s`", img);
        goto out;
      }
  }
  r = sbx_criu_run (o->criu ? o->criu : "criu", &a, &o->status_fd, o->status_fd >= 0, log, err);
  if (r == 0 && !o->leave_running && !o->pre_dump)
    wait_gone (pid);
out:
  sbx_argv_clear (&a);
  return r;
}

int
sbx_container_checkpoint (const sbx_checkpoint_opts *o, sbx_error **err)
{
  sbx_state *s = NULL;
  oci_config *c = NULL;
  const char *status;
  cleanup_free char *addr = NULL;
  int r = -1, port;

  if (o->rootless)
    {
      sbx_criu_refuse_rootless ("checkpoint", err);
      return sbx_error_wrap (err, "checkpoint container \"%s\"", o->id);
    }
  if (sbx_state_open (o->root, o->id, &s, err) < 0)
    return -1;
  status = sbx_state_status (s);
  if (strcmp (status, "running") != 0 && strcmp (status, "paused") != 0)
    sbx_error_set (err, EINVAL, "container \"%s\" cannot be checkpointed: it is %s", o->id, status);
  else if (memory_flags (o, &addr, &port, err) == 0
           && sbx_criu_ready (o->criu, o->root, "checkpoint", err) == 0 && sbx_state_config (s, &c, err) == 0)
    r = sbx_checkpoint_locked (o, s, c, err);
  if (r < 0)
    sbx_error_wrap (err, "checkpoint container \"%s\"", o->id);
  oci_config_free (c);
  sbx_state_free (s);
  return r;
}

/* ---------------------------------------------------------------- restore */

typedef struct
{
  sbx_state *s;
  oci_config *c;
  sbx_cgroup *cg;
  char *img, *work, *criu_root;
  bool mounted;
  int fds[8];
  size_t nfds;
  int pty_master;
  char *pty_slave; /* its path, for the console's mount */
  pid_t pid;
} restorer;

static void
restorer_release (restorer *r)
{
  if (r->mounted)
    umount2 (r->criu_root, MNT_DETACH);
  if (r->criu_root)
    rmdir (r->criu_root);
  for (size_t i = 0; i < r->nfds; i++)
    close (r->fds[i]);
  if (r->pty_master >= 0)
    close (r->pty_master);
  free (r->img);
  free (r->pty_slave);
  free (r->work);
  free (r->criu_root);
  sbx_cgroup_free (r->cg);
  oci_config_free (r->c);
}

static int
add_fd (restorer *r, sbx_argv *a, int fd, const char *key)
{
  if (fd < 0 || r->nfds == sizeof r->fds / sizeof *r->fds)
    return -1;
  r->fds[r->nfds] = fd;
  sbx_argv_add (a, "--inherit-fd");
  sbx_argv_add (a, "fd[%zu]:%s", 3 + r->nfds, key);
  r->nfds++;
  return 0;
}

/* Turn sbx-criu.txt into CRIU's restore options.  */
static int
restore_info (restorer *r, const sbx_restore_opts *o, sbx_argv *a, sbx_error **err)
{
  cleanup_free char *path = xasprintf ("%s/" SBX_CRIU_INFO, r->img), *text = NULL;
  char *save = NULL;

  if (sbx_read_file (path, 1 << 20, &text, NULL, err) < 0)
    return sbx_error_wrap (err, "not an image of sbxrun's checkpoint");
  for (char *l = strtok_r (text, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      char *f1 = strchr (l, '\t'), *f2;
      if (f1 == NULL)
        return sbx_error_set (err, EINVAL, "%s: bad line `%s`", path, l);
      *f1++ = '\0';
      f2 = strchr (f1, '\t');
      if (f2)
        *f2++ = '\0';
      if (strcmp (l, "mnt") == 0 && f2)
        {
          sbx_argv_add (a, "--external");
          sbx_argv_add (a, "mnt[%s]:%s", f1, f2);
        }
      else if (strcmp (l, "shelljob") == 0)
        {
          if (!o->f.shell_job)
            sbx_argv_add (a, "--shell-job");
        }
      else if (strcmp (l, "stdio") == 0 && f2)
        {
          long long fd;
          struct stat st;
          if (sbx_parse_int64 (f1, &fd) < 0 || fd < 0 || fd > 2)
            return sbx_error_set (err, EINVAL, "%s: bad stdio `%s`", path, f1);
          /* Only where ours is a pipe too: else CRIU makes a new one.  */
          if (fstat ((int)fd, &st) == 0 && S_ISFIFO (st.st_mode)
              && add_fd (r, a, fcntl ((int)fd, F_DUPFD_CLOEXEC, 3), f2) < 0)
            return sbx_error_sys (err, "stdio %lld for CRIU", fd);
        }
      else if (strcmp (l, "emptyns") == 0 && o->empty_ns == NULL)
        sbx_argv_add (a, "--empty-ns=net");
      else if (strcmp (l, "net") == 0)
        {
          const char *p = joined_ns (r->c, "network");
          if (p == NULL)
            return sbx_error_set (err, EINVAL,
                                  "the checkpoint joined a network namespace by path; the "
                                  "config joins none");
          if (add_fd (r, a, open (p, O_RDONLY | O_CLOEXEC), f1) < 0)
            return sbx_error_sys (err, "network namespace `%s`", p);
        }
      else if (strcmp (l, "tty") == 0)
        {
          cleanup_free char *slave = NULL;
          if (o->detach && o->console_socket == NULL)
            return sbx_error_set (err, EINVAL,
                                  "process.terminal is true but no --console-socket was given "
                                  "to receive the terminal of a detached container");
          r->pty_master = sbx_process_pty_open (&slave, err);
          if (r->pty_master < 0)
            return -1;
          if (add_fd (r, a, open (slave, O_RDWR | O_NOCTTY | O_CLOEXEC), f1) < 0)
            return sbx_error_sys (err, "open pty `%s`", slave);
          free (r->pty_slave);
          r->pty_slave = steal_ptr (slave);
        }
      else if (strcmp (l, "console") == 0)
        {
          if (r->pty_slave == NULL)
            return sbx_error_set (err, EINVAL, "%s: a console without a terminal", path);
          sbx_argv_add (a, "--external");
          sbx_argv_add (a, "mnt[%s]:%s", f1, r->pty_slave);
        }
      else
        return sbx_error_set (err, EINVAL, "%s: unknown entry `%s`", path, l);
    }
  return 0;
}

/* A field of /proc/PID/status ("Seccomp"), or -1.  */
static long
status_field (pid_t pid, const char *name)
{
  char p[64];
  cleanup_free char *text = NULL;
  char *f;
  size_t l = strlen (name);
  snprintf (p, sizeof p, "/proc/%d/status", pid);
  if (sbx_read_file (p, 1 << 16, &text, NULL, NULL) < 0)
    return -1;
  for (f = text; f; f = strchr (f, '\n') ? strchr (f, '\n') + 1 : NULL)
    if (strncmp (f, name, l) == 0 && f[l] == ':')
      return strtol (f + l + 1, NULL, 10);
  return -1;
}

/* The restored processes are held (stopped) until they carry the config's
   limits and egress rules, and the seccomp and no_new_privs it asks for:
   the image is not trusted with any of these.  */
static int
apply_policy (restorer *r, const sbx_restore_opts *o, sbx_error **err)
{
  const oci_config *c = r->c;
  cleanup_net_policy sbx_net_policy *np = NULL;
  cleanup_net_policy sbx_net_policy *pod = NULL;
  pid_t *pids = NULL;
  size_t n = 0;
  int ret = 0, warned = 0;

  if (r->cg && c->linux && c->linux->resources)
    {
      sbx_cgroup_add_default_devices (c->linux->resources);
      if (sbx_cgroup_apply (r->cg, c->linux->resources, err) < 0)
        return sbx_error_wrap (err, "cgroup limits");
    }
  if (sbx_container_find_pod_policy (o->root, o->id, c, &pod, err) < 0)
    return sbx_error_wrap (err, "egress policy");
  if (sbx_net_policy_parse (c, r->s->st->bundle, r->s->st->rootfs, steal_ptr (pod), &np, err) < 0)
    return sbx_error_wrap (err, "saved config");
  if (np)
    {
      char p[64];
      cleanup_close int netns = -1;
      snprintf (p, sizeof p, "/proc/%d/ns/net", r->pid);
      netns = open (p, O_RDONLY | O_CLOEXEC);
      if (netns < 0)
        return sbx_error_sys (err, "egress policy: open the container's network namespace `%s`", p);
      /* As create does: a pod member's record only while its sandbox
         holds the pod's table.  */
      if (sbx_container_net_install (o->root, r->s, c, np, netns, r->cg, false, err) < 0)
        return sbx_error_wrap (err, "egress policy");
    }
  if (r->cg && sbx_cgroup_pids (r->cg, &pids, &n, err) < 0)
    return -1;
  if (r->cg == NULL)
    {
      pids = xmalloc0 (sizeof *pids);
      pids[n++] = r->pid;
    }
  for (size_t i = 0; i < n && ret == 0; i++)
    {
      if (c->linux && c->linux->seccomp && status_field (pids[i], "Seccomp") != 2)
        ret = sbx_error_set (err, EPERM, "restored process %d runs without the config's seccomp filter",
                             pids[i]);
      else if (c->process && c->process->no_new_privileges && status_field (pids[i], "NoNewPrivs") != 1)
        {
          /* CRIU (3.17) does not restore no_new_privs, and only the process
             itself can set it.  For root it guards nothing the restored
             bounding set does not already hold; for another user a setuid
             binary would gain what the config denied.  */
          if (c->process->user == NULL || c->process->user->uid != 0)
            ret = sbx_error_set (err, EPERM,
                                 "restored process %d lacks the config's noNewPrivileges (CRIU does "
                                 "not restore it) and runs as a non-root user who could then gain "
                                 "privileges through a setuid binary: refused",
                                 pids[i]);
          else if (!warned++)
            sbx_warn ("container \"%s\": CRIU did not restore noNewPrivileges (root process: the "
                      "capability bounding set still limits it)",
                      o->id);
        }
    }
  free (pids);
  return ret;
}

static void
resume_all (restorer *r)
{
  if (r->cg)
    sbx_cgroup_kill (r->cg, SIGCONT, NULL);
  kill (r->pid, SIGCONT);
}

static int
mount_root (restorer *r, sbx_error **err)
{
  cleanup_free char *upper = xasprintf ("%s/" SBX_OVERLAY_UPPER, r->s->dir);
  cleanup_free char *work = xasprintf ("%s/" SBX_OVERLAY_WORK, r->s->dir);
  cleanup_close int mfd = -1;
  struct stat st;

  if (fstatat (r->s->dir_fd, SBX_OVERLAY_UPPER, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
    {
      if (mount (r->s->st->rootfs, r->criu_root, NULL, MS_BIND | MS_REC, NULL) < 0)
        return sbx_error_sys (err, "bind the rootfs `%s` for CRIU", r->s->st->rootfs);
      return 0;
    }
  if (mkdirat (r->s->dir_fd, SBX_OVERLAY_WORK, 0700) < 0 && errno != EEXIST)
    return sbx_error_sys (err, "create `%s`", work);
  mfd = sbx_fs_overlay_mount_fd (r->s->st->rootfs, upper, work, err);
  if (mfd < 0)
    return sbx_error_wrap (err, "the overlay root for CRIU");
  if (syscall (SYS_move_mount, mfd, "", AT_FDCWD, r->criu_root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return sbx_error_sys (err, "mount the overlay root on `%s` for CRIU", r->criu_root);
  return 0;
}

static int
run_restore (restorer *r, const sbx_restore_opts *o, sbx_error **err)
{
  sbx_argv a = { 0 };
  cleanup_free char *log = NULL, *pidf = NULL, *text = NULL;
  long long n;
  int ret = -1;

  r->criu_root = xasprintf ("%s/criu-root", r->s->dir);
  if (mkdirat (r->s->dir_fd, "criu-root", 0700) < 0 && errno != EEXIST)
    return sbx_error_sys (err, "create `%s`", r->criu_root);
  /* CRIU wants the root as a mount of its own: the rootfs, or the overlay
     over it that create would mount (fs.h).  */
  if (mount_root (r, err) < 0)
    return -1;
  r->mounted = true;
  log = xasprintf ("%s/restore.log", r->work);
  pidf = xasprintf ("%s/restore.pid", r->work);
  unlink (pidf);
  sbx_argv_add (&a, "criu");
  sbx_argv_add (&a, "restore");
  sbx_argv_add (&a, "--images-dir=%s", r->img);
  sbx_argv_add (&a, "--work-dir=%s", r->work);
  sbx_argv_add (&a, "--log-file=%s", log);
  sbx_argv_add (&a, "-v4");
  sbx_argv_add (&a, "--root=%s", r->criu_root);
  sbx_argv_add (&a, "--restore-detached");
  sbx_argv_add (&a, "--leave-stopped");
  sbx_argv_add (&a, "--pidfile=%s", pidf);
  criu_flags_args (&a, &o->f);
  if (r->cg)
    sbx_argv_add (&a, "--cgroup-root=%s", sbx_cgroup_path (r->cg));
  if (o->lsm_profile)
    sbx_argv_add (&a, "--lsm-profile=%s", o->lsm_profile);
  if (o->auto_dedup)
    sbx_argv_add (&a, "--auto-dedup");
  if (o->empty_ns)
    sbx_argv_add (&a, "--empty-ns=net");
  if (o->f.lazy_pages)
    sbx_argv_add (&a, "--lazy-pages"); /* its daemon: `criu lazy-pages` on the work path */
  if (restore_info (r, o, &a, err) < 0)
    goto out;
  if (!o->no_subreaper)
    prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  if (sbx_criu_run (o->criu ? o->criu : "criu", &a, r->fds, r->nfds, log, err) < 0)
    goto out;
  if (sbx_read_file (pidf, 64, &text, NULL, err) < 0)
    goto out;
  text[strcspn (text, "\n")] = '\0';
  if (sbx_parse_int64 (text, &n) < 0 || n <= 0)
    {
      sbx_error_set (err, EPROTO, "criu restore: bad pid `%s` in `%s`", text, pidf);
      goto out;
    }
  r->pid = (pid_t)n;
  ret = 0;
out:
  sbx_argv_clear (&a);
  return ret;
}

/* The container's cgroup, again with the saved config's path.  */
static int
restore_cgroup (restorer *r, const sbx_restore_opts *o, sbx_error **err)
{
  if (sbx_cgroup_host_mode () == SBX_CGROUP_NONE)
    return 0;
  if (r->s->st->cgroup && sbx_cgroup_load (r->s->st->cgroup, &r->cg, NULL) == 0)
    return 0;
  /* As create does: recorded before it exists, so that a restore killed
     half-way leaves nothing `delete --force` cannot find.  */
  if (sbx_cgroup_plan (o->id, r->c->linux ? r->c->linux->cgroups_path : NULL, r->s->st->systemd_cgroup, false,
                       &r->cg, err)
      < 0)
    return -1;
  if (sbx_cgroup_check_existing (r->cg, err) < 0)
    {
      sbx_cgroup_free (r->cg); /* not ours to remove */
      r->cg = NULL;
      return -1;
    }
  free (r->s->st->cgroup);
  r->s->st->cgroup = sbx_cgroup_describe (r->cg);
  if (sbx_state_save (r->s, err) < 0)
    return -1;
  return sbx_cgroup_make (r->cg, err);
}

static int
restore_locked (restorer *r, const sbx_restore_opts *o, sbx_error **err)
{
  if (sbx_state_config (r->s, &r->c, err) < 0)
    return -1;
  if ((r->img = image_dir (r->s, o->f.image_path, DEFAULT_IMAGES, false, err)) == NULL)
    return sbx_error_wrap (err, "--image-path");
  {
    cleanup_free char *inv = xasprintf ("%s/inventory.img", r->img);
    if (access (inv, R_OK) < 0)
      return sbx_error_sys (err, "no checkpoint image in `%s`", r->img);
  }
  if ((r->work = o->f.work_path ? image_dir (r->s, o->f.work_path, NULL, true, err) : xstrdup (r->img)) == NULL)
    return sbx_error_wrap (err, "--work-path");
  if (o->f.lazy_pages && sbx_criu_feature (o->criu, "uffd-noncoop", "--lazy-pages", err) < 0)
    return -1;
  if (check_mode (o->f.manage_cgroups_mode, err) < 0)
    return -1;
  /* A stopped container being restored is creating again: killed from here
     on, list shows it so and only delete --force removes it, with what
     CRIU brought back.  */
  if (sbx_state_set_phase (r->s, "creating", err) < 0 || restore_cgroup (r, o, err) < 0)
    return -1;
  /* A container dumped paused left its cgroup frozen: a restored one runs. */
  if (r->cg && sbx_cgroup_is_frozen (r->cg) && sbx_cgroup_freeze (r->cg, false, err) < 0)
    return sbx_error_wrap (err, "thaw the cgroup of the checkpoint");
  if (run_restore (r, o, err) < 0)
    return -1;
  sbx_test_kill_point ("restore:restored"); /* tasks held stopped in the recorded cgroup */
  r->s->st->pid = r->pid;
  r->s->st->has_pid = true;
  r->s->st->pid_start = sbx_pid_start_time (r->pid);
  r->s->st->has_pid_start = true;
  r->s->st->started = true;
  r->s->st->has_started = true;
  /* A container created for the restore is done creating (state.h).  */
  free (r->s->st->phase);
  r->s->st->phase = NULL;
  if (apply_policy (r, o, err) < 0 || sbx_state_save (r->s, err) < 0)
    return -1;
  if (r->pty_master >= 0 && o->console_socket)
    {
      cleanup_close int cs = sbx_unix_connect (o->console_socket, err);
      if (cs < 0 || sbx_process_send_fd (cs, r->pty_master, "/dev/ptmx", err) < 0)
        return sbx_error_wrap (err, "--console-socket `%s`", o->console_socket);
      close (r->pty_master);
      r->pty_master = -1;
    }
  if (o->pid_file && sbx_write_pid_file (o->pid_file, r->pid, err) < 0)
    return -1;
  resume_all (r);
  return 0;
}

int
sbx_container_restore (const sbx_restore_opts *o, sbx_error **err)
{
  restorer r = { .pty_master = -1 };
  cleanup_error sbx_error *e = NULL;
  bool fresh = false;
  int ret, pty = -1;

  if (o->rootless)
    {
      sbx_state_free (o->state); /* consumed either way */
      sbx_criu_refuse_rootless ("restore", err);
      return sbx_error_wrap (err, "restore container \"%s\"", o->id);
    }
  if (o->state)
    r.s = o->state;
  if (o->state == NULL && sbx_state_open (o->root, o->id, &r.s, &e) < 0)
    {
      sbx_create_opts co = {
        .root = o->root, .id = o->id, .bundle = o->bundle, .systemd_cgroup = o->systemd_cgroup, .detach = true
      };
      if (e->errno_ != ENOENT)
        {
          *err = steal_ptr (e);
          return -1;
        }
      if (o->f.image_path == NULL)
        return sbx_error_set (err, ENOENT, "container \"%s\" does not exist: restore it from --image-path",
                              o->id);
      if (sbx_criu_ready (o->criu, o->root, "restore", err) < 0 || sbx_container_prepare (&co, &r.s, err) < 0)
        return sbx_error_wrap (err, "restore container \"%s\"", o->id);
      fresh = true;
    }
  else if (strcmp (sbx_state_status (r.s), "stopped") != 0)
    {
      sbx_error_set (err, EBUSY, "container \"%s\" cannot be restored: it is %s", o->id,
                     sbx_state_status (r.s));
      sbx_state_free (r.s);
      return -1;
    }
  else if (o->bundle)
    {
      cleanup_free char *b = realpath (o->bundle, NULL);
      if (b == NULL || strcmp (b, r.s->st->bundle) != 0)
        {
          sbx_error_set (err, EINVAL, "--bundle `%s`: container \"%s\" exists with bundle `%s`", o->bundle,
                         o->id, r.s->st->bundle);
          sbx_state_free (r.s);
          return -1;
        }
    }
  ret = fresh ? 0 : sbx_criu_ready (o->criu, o->root, "restore", err);
  if (ret == 0)
    ret = restore_locked (&r, o, err);
  pty = steal_fd (&r.pty_master); /* foreground without a console socket */
  if (ret < 0 && r.pid > 0 && r.cg)
    sbx_cgroup_kill (r.cg, SIGKILL, NULL);
  if (ret < 0 && r.pid > 0)
    {
      kill (r.pid, SIGKILL);
      wait_gone (r.pid);
    }
  restorer_release (&r);
  if (ret < 0)
    {
      sbx_error_wrap (err, "restore container \"%s\"", o->id);
      if (pty >= 0)
        close (pty);
      if (fresh)
        {
          sbx_state_free (r.s);
          sbx_container_delete (o->root, o->id, true, NULL);
          return -1;
        }
      if (r.s->st->phase)
        sbx_state_set_phase (r.s, NULL, NULL); /* stopped, as it was */
    }
  if (ret == 0 && !o->detach)
    {
      /* Foreground, as run: the restored init is our child (subreaper). */
      cleanup_close int pidfd = sbx_pidfd_open (r.pid);
      sbx_state_free (r.s);
      r.s = NULL;
      ret = pidfd < 0 ? sbx_error_sys (err, "pidfd of the restored init")
                      : sbx_supervise (r.pid, pidfd, steal_fd (&pty), err);
      sbx_container_delete (o->root, o->id, true, NULL);
      return ret;
    }
  if (pty >= 0)
    close (pty);
  sbx_state_free (r.s);
  return ret;
}
