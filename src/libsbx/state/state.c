/* state.c - see state.h.  */
#include <config.h>
#include "state/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/core.h"

#define STATUS_VERSION 1

int
sbx_id_validate (const char *id, sbx_error **err)
{
  return sbx_name_validate ("container id", id, err);
}

int
sbx_name_validate (const char *what, const char *id, sbx_error **err)
{
  size_t n = id ? strlen (id) : 0;
  if (n == 0)
    return sbx_error_set (err, EINVAL, "%s: must not be empty", what);
  if (n > 1024)
    return sbx_error_set (err, EINVAL, "%s `%.32s...`: longer than 1024 characters", what, id);
  /* Dot names are the state root's own (the seccomp cache) and hidden.  */
  if (id[0] == '.')
    return sbx_error_set (err, EINVAL, "%s `%s`: must not start with `.`", what, id);
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || strchr ("_+.-", *p)))
      return sbx_error_set (err, EINVAL,
                            "%s `%s`: invalid character `%c` (allowed: letters, digits, "
                            "`_`, `+`, `.`, `-`)",
                            what, id, *p);
  return 0;
}

static int
open_root (const char *root, bool create, sbx_error **err)
{
  return sbx_open_private_dir (root, create, "state root (--root)", err);
}

static int
lock_dir (int fd, sbx_error **err)
{
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      return sbx_error_sys (err, "lock state directory");
  return 0;
}

/* The temporary name of a state directory being created: not an ID (IDs
   do not start with a dot), hidden from list.  */
static char *
tmp_name_of (const char *id)
{
  return xasprintf (".~%s", id);
}

/* Is the directory dir_fd (locked) still <root>/<name>?  */
static bool
still_named (int root_fd, const char *name, int dir_fd)
{
  struct stat a, b;
  return fstat (dir_fd, &a) == 0 && fstatat (root_fd, name, &b, AT_SYMLINK_NOFOLLOW) == 0
         && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Remove a directory and the files in it (state directories hold no
   subdirectories).  */
static int
remove_dir (int root_fd, const char *name, int dir_fd)
{
  DIR *d = fdopendir (dup (dir_fd));
  struct dirent *de;
  if (d)
    {
      while ((de = readdir (d)))
        if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
          unlinkat (dir_fd, de->d_name, 0);
      closedir (d);
    }
  if (unlinkat (root_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -1;
  return 0;
}

int
sbx_state_create (const char *root, const char *id, sbx_state **out, sbx_error **err)
{
  cleanup_close int root_fd = -1, dir_fd = -1;
  cleanup_free char *tmp = NULL;
  sbx_state *s;
  struct stat st;

  if (sbx_id_validate (id, err) < 0)
    return -1;
  root_fd = open_root (root, true, err);
  if (root_fd < 0)
    return -1;
  if (fstatat (root_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return sbx_error_set (err, EEXIST, "container with id `%s` already exists", id);
  tmp = tmp_name_of (id);
  for (int tries = 0;; tries++)
    {
      if (mkdirat (root_fd, tmp, 0700) == 0)
        break;
      if (errno != EEXIST || tries > 0)
        return sbx_error_sys (err, "create state directory `%s/%s`", root, tmp);
      /* Another create of this id, or what a killed one left before it
         saved anything (nothing else exists yet): the lock tells.  */
      dir_fd = openat (root_fd, tmp, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (dir_fd < 0 || flock (dir_fd, LOCK_EX | LOCK_NB) < 0)
        return sbx_error_set (err, EEXIST, "container with id `%s` already exists (being created)", id);
      if (still_named (root_fd, tmp, dir_fd))
        remove_dir (root_fd, tmp, dir_fd);
      close (dir_fd);
      dir_fd = -1;
    }
  /* Between our mkdir and our lock a concurrent create of the same id may
     take the unlocked directory for a leftover, remove it and make its
     own: then ours is gone or no longer the one of that name, and the
     other create goes on.  */
  dir_fd = openat (root_fd, tmp, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (dir_fd < 0 && errno == ENOENT)
    return sbx_error_set (err, EEXIST, "container with id `%s` already exists (being created)", id);
  if (dir_fd < 0)
    return sbx_error_sys (err, "open state directory `%s/%s`", root, tmp);
  if (flock (dir_fd, LOCK_EX | LOCK_NB) < 0 || !still_named (root_fd, tmp, dir_fd))
    return sbx_error_set (err, EEXIST, "container with id `%s` already exists (being created)", id);
  s = xmalloc0 (sizeof *s);
  s->root_fd = steal_fd (&root_fd);
  s->dir_fd = steal_fd (&dir_fd);
  s->id = xstrdup (id);
  s->dir = xasprintf ("%s/%s", root, id);
  s->tmp_name = steal_ptr (tmp);
  s->st = xmalloc0 (sizeof *s->st);
  s->st->version = STATUS_VERSION;
  s->st->has_version = true;
  s->st->id = xstrdup (id);
  s->st->phase = xstrdup ("creating");
  *out = s;
  return 0;
}

/* The first save of a created directory gives it its name: with a status
   in it, never empty, never over another container's.  */
static int
publish (sbx_state *s, sbx_error **err)
{
  if (renameat2 (s->root_fd, s->tmp_name, s->root_fd, s->id, RENAME_NOREPLACE) < 0)
    {
      if (errno == EEXIST)
        return sbx_error_set (err, EEXIST, "container with id `%s` already exists", s->id);
      if (errno != EINVAL && errno != ENOSYS)
        return sbx_error_sys (err, "create state directory `%s`", s->dir);
      /* No RENAME_NOREPLACE here: an empty directory reserves the name,
         the rename replaces it.  */
      if (mkdirat (s->root_fd, s->id, 0700) < 0)
        {
          if (errno == EEXIST)
            return sbx_error_set (err, EEXIST, "container with id `%s` already exists", s->id);
          return sbx_error_sys (err, "create state directory `%s`", s->dir);
        }
      if (renameat (s->root_fd, s->tmp_name, s->root_fd, s->id) < 0)
        {
          int r = sbx_error_sys (err, "create state directory `%s`", s->dir);
          unlinkat (s->root_fd, s->id, AT_REMOVEDIR);
          return r;
        }
    }
  free (s->tmp_name);
  s->tmp_name = NULL;
  return 0;
}

int
sbx_state_open (const char *root, const char *id, sbx_state **out, sbx_error **err)
{
  cleanup_close int root_fd = -1, dir_fd = -1;
  cleanup_free char *text = NULL, *msg = NULL;
  cleanup_close int sfd = -1;
  sbx_state *s;

  if (sbx_id_validate (id, err) < 0)
    return -1;
  root_fd = open_root (root, false, err);
  if (root_fd < 0)
    {
      if (root_fd == -ENOENT) /* the status of an error is -errno */
        return sbx_error_set (err, ENOENT, "container \"%s\" does not exist", id);
      return -1;
    }
  dir_fd = openat (root_fd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (dir_fd < 0)
    {
      if (errno == ENOENT)
        return sbx_error_set (err, ENOENT, "container \"%s\" does not exist", id);
      return sbx_error_sys (err, "open state of container \"%s\"", id);
    }
  if (lock_dir (dir_fd, err) < 0)
    return -1;
  /* Removed while we waited for the lock (a failed create, a delete).  */
  if (!still_named (root_fd, id, dir_fd))
    return sbx_error_set (err, ENOENT, "container \"%s\" does not exist", id);
  s = xmalloc0 (sizeof *s);
  sfd = openat (dir_fd, "status.json", O_RDONLY | O_CLOEXEC);
  if (sfd < 0)
    {
      if (errno != ENOENT)
        {
          free (s);
          return sbx_error_sys (err, "open state of container \"%s\"", id);
        }
      /* Left by an older sbxrun killed during create, or by a delete
         killed at its very end: nothing is recorded, so nothing but the
         directory is known to exist.  Shown as "creating"; delete
         --force removes it.  */
      s->st = xmalloc0 (sizeof *s->st);
      s->st->version = STATUS_VERSION;
      s->st->has_version = true;
      s->st->id = xstrdup (id);
      s->st->bundle = xstrdup ("");
      s->st->phase = xstrdup ("creating");
    }
  else
    {
      if (sbx_read_fd (sfd, 1 << 20, &text, NULL, err) < 0)
        {
          free (s);
          return sbx_error_wrap (err, "read state of container \"%s\"", id);
        }
      s->st = ocispec_parse (&sbx_status_file_type, text, strlen (text), &msg);
      if (s->st == NULL)
        {
          free (s);
          return sbx_error_set (err, EINVAL, "state of container \"%s\" is corrupt: %s", id, msg);
        }
    }
  s->root_fd = steal_fd (&root_fd);
  s->dir_fd = steal_fd (&dir_fd);
  s->id = xstrdup (id);
  s->dir = xasprintf ("%s/%s", root, id);
  *out = s;
  return 0;
}

int
sbx_state_save (sbx_state *s, sbx_error **err)
{
  size_t len;
  cleanup_free char *json = ocispec_generate (&sbx_status_file_type, s->st, false, &len);
  /* Nothing changed since our last write: the file on disk says it all
     (we hold the lock, nobody else writes it).  */
  if (s->saved && s->tmp_name == NULL && strcmp (s->saved, json) == 0)
    return 0;
  if (sbx_write_file_atomic (s->dir_fd, "status.json", json, len, 0600, err) < 0)
    return -1;
  free (s->saved);
  s->saved = steal_ptr (json);
  return s->tmp_name ? publish (s, err) : 0;
}

int
sbx_state_set_phase (sbx_state *s, const char *phase, sbx_error **err)
{
  free (s->st->phase);
  s->st->phase = phase ? xstrdup (phase) : NULL;
  return sbx_state_save (s, err);
}

int
sbx_state_remove (sbx_state *s, sbx_error **err)
{
  /* status.json last: until the directory goes, what is left of it is
     still a container that list shows and delete removes.  */
  static const char *files[] = { "config.json", "start.sock", "net.json", "status.json", NULL };
  const char *name;
  if (s == NULL)
    return 0;
  /* The overlay's upper and work dirs, a fork's private rootfs, the
     snapshots, CRIU's default image directory, and what a snapshot with
     a process image leaves after a failed dump or restore (CRIU's work
     dir, the image's checked copy) are trees.  */
  static const char *trees[]
      = { "upper", "work", "rootfs", "snapshots", "checkpoint", "snapshot-criu", "snapshot-restore", NULL };
  name = s->tmp_name ? s->tmp_name : s->id;
  for (const char **t = trees; *t; t++)
    if (sbx_remove_tree_at (s->dir_fd, *t) < 0)
      return sbx_error_sys (err, "remove `%s/%s`", s->dir, *t);
  for (const char **f = files; *f; f++)
    unlinkat (s->dir_fd, *f, 0);
  /* criu-root: the mount point of a restore, still mounted when the
     restore was killed (each attempt may have added one).  */
  {
    cleanup_free char *mp = xasprintf ("%s/criu-root", s->dir);
    for (int i = 0; i < 16 && umount2 (mp, MNT_DETACH | UMOUNT_NOFOLLOW) == 0; i++)
      ;
    unlinkat (s->dir_fd, "criu-root", AT_REMOVEDIR);
  }
  if (unlinkat (s->root_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT
      && remove_dir (s->root_fd, name, s->dir_fd) < 0) /* temp files of a crashed writer */
    return sbx_error_sys (err, "remove state directory `%s`", s->dir);
  return 0;
}

int
sbx_state_lock_root (sbx_state *s, sbx_error **err)
{
  while (flock (s->root_fd, LOCK_EX) < 0)
    if (errno != EINTR)
      return sbx_error_sys (err, "lock state root");
  return 0;
}

void
sbx_state_unlock_root (sbx_state *s)
{
  flock (s->root_fd, LOCK_UN);
}

void
sbx_state_unlock (sbx_state *s)
{
  if (s->dir_fd >= 0)
    flock (s->dir_fd, LOCK_UN);
}

void
sbx_state_free (sbx_state *s)
{
  if (s == NULL)
    return;
  if (s->root_fd >= 0)
    close (s->root_fd);
  if (s->dir_fd >= 0)
    close (s->dir_fd); /* releases the lock */
  ocispec_free (&sbx_status_file_type, s->st);
  free (s->id);
  free (s->dir);
  free (s->tmp_name);
  free (s->saved);
  free (s);
}

int
sbx_state_config (sbx_state *s, oci_config **out, sbx_error **err)
{
  cleanup_free char *text = NULL, *msg = NULL;
  cleanup_close int fd = openat (s->dir_fd, "config.json", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open saved config of container \"%s\"", s->id);
  if (sbx_read_fd (fd, 64 << 20, &text, NULL, err) < 0)
    return sbx_error_wrap (err, "read saved config of container \"%s\"", s->id);
  *out = ocispec_parse (&oci_config_type, text, strlen (text), &msg);
  if (*out == NULL)
    return sbx_error_set (err, EINVAL, "saved config of container \"%s\": %s", s->id, msg);
  return 0;
}

int
sbx_state_config_ref (sbx_state *s, const oci_config **c, oci_config **owned, sbx_error **err)
{
  *owned = NULL;
  if (s->config)
    {
      *c = s->config;
      return 0;
    }
  if (sbx_state_config (s, owned, err) < 0)
    return -1;
  *c = *owned;
  return 0;
}

unsigned long long
sbx_pid_start_time (pid_t pid)
{
  unsigned long long v[23];
  /* starttime is field 22; a zombie or a dead task has none that counts */
  if (pid <= 0 || sbx_proc_stat (pid, v, 22) < 0 || v[3] == 'Z' || v[3] == 'X')
    return 0;
  return v[22];
}

bool
sbx_state_alive (sbx_state *s)
{
  /* A start time of 0 means "could not be read": never proof of life.  */
  if (!s->st->has_pid || s->st->pid <= 0 || s->st->pid_start == 0)
    return false;
  return sbx_pid_start_time (s->st->pid) == s->st->pid_start;
}

const char *
sbx_state_status (sbx_state *s)
{
  if (s->st->phase && *s->st->phase)
    return s->st->phase;
  if (!sbx_state_alive (s))
    return "stopped";
  if (!s->st->started)
    return "created";
  if (s->st->cgroup && sbx_cgroup_saved_is_frozen (s->st->cgroup))
    return "paused";
  return "running";
}

char *
sbx_state_json (sbx_state *s, const oci_config *c, const char *status, bool pretty)
{
  return sbx_state_json_pid (s, c, status, s->st->pid, pretty);
}

const char *
sbx_state_owner (sbx_state *s)
{
  struct stat st;
  if ((s->st->owner == NULL || s->st->owner[0] == '\0') && fstat (s->dir_fd, &st) == 0)
    {
      struct passwd *pw = getpwuid (st.st_uid);
      free (s->st->owner);
      s->st->owner = pw ? xstrdup (pw->pw_name) : xasprintf ("#%u", (unsigned)st.st_uid) /* as runc */;
    }
  return s->st->owner ? s->st->owner : "";
}

char *
sbx_state_json_pid (sbx_state *s, const oci_config *c, const char *status, pid_t pid, bool pretty)
{
  oj_writer *w = oj_writer_new (pretty);
  oj_w_begin_object (w);
  oj_w_key (w, "ociVersion");
  oj_w_string (w, OCI_VERSION);
  oj_w_key (w, "id");
  oj_w_string (w, s->id);
  oj_w_key (w, "status");
  oj_w_string (w, status);
  oj_w_key (w, "pid");
  oj_w_int (w, strcmp (status, "stopped") == 0 ? 0 : pid);
  oj_w_key (w, "bundle");
  oj_w_string (w, s->st->bundle);
  oj_w_key (w, "rootfs");
  oj_w_string (w, s->st->rootfs ? s->st->rootfs : "");
  oj_w_key (w, "created");
  oj_w_string (w, s->st->created ? s->st->created : "");
  oj_w_key (w, "owner");
  oj_w_string (w, sbx_state_owner (s));
  if (c) /* without a config: no "annotations" (optional, as runc's list) */
    {
      oj_w_key (w, "annotations");
      oj_w_begin_object (w);
      for (size_t i = 0; i < c->annotations_len; i++)
        {
          oj_w_key (w, c->annotations_keys[i]);
          oj_w_string (w, c->annotations_values[i]);
        }
      oj_w_end_object (w);
    }
  oj_w_end_object (w);
  return oj_writer_finish (w, NULL);
}

static int
cmp_ids (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

int
sbx_state_list (const char *root, char ***ids, sbx_error **err)
{
  int fd = open_root (root, false, err);
  int r;

  if (fd == -ENOENT)
    {
      if (err)
        sbx_error_freep (err);
      *ids = xmalloc0 (sizeof **ids);
      return 0;
    }
  if (fd < 0)
    return -1;
  r = sbx_state_list_at (fd, ids, err);
  close (fd);
  return r < 0 ? sbx_error_wrap (err, "state root `%s`", root) : 0;
}

int
sbx_state_list_at (int root_fd, char ***ids, sbx_error **err)
{
  int fd = fcntl (root_fd, F_DUPFD_CLOEXEC, 0);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  size_t n = 0;
  char **v;

  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return sbx_error_sys (err, "open state root");
    }
  v = xmalloc0 (sizeof *v);
  while ((de = readdir (d)))
    {
      if (de->d_name[0] == '.' || de->d_type != DT_DIR || sbx_id_validate (de->d_name, NULL) < 0)
        continue;
      v = xrealloc (v, (n + 2) * sizeof *v);
      v[n++] = xstrdup (de->d_name);
      v[n] = NULL;
    }
  closedir (d);
  /* By ID, as runc lists them: scripts diff and paginate the output.  */
  if (n > 1)
    qsort (v, n, sizeof *v, cmp_ids);
  *ids = v;
  return 0;
}

char *
sbx_now_rfc3339 (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return sbx_rfc3339_utc (&ts);
}

char *
sbx_rfc3339_utc (const struct timespec *t)
{
  struct timespec ts = *t;
  long long days, secs, era, doe, yoe, doy, mp, y, m, d;
  /* Not gmtime/strftime: glibc loads the time zone (/etc/localtime) on
     first use even for UTC.  Civil date from days since 1970-01-01, in
     400-year eras of 146097 days, years starting on March 1.  */
  days = ts.tv_sec / 86400;
  secs = ts.tv_sec % 86400;
  if (secs < 0)
    secs += 86400, days--;
  days += 719468; /* 0000-03-01 to 1970-01-01 */
  era = (days >= 0 ? days : days - 146096) / 146097;
  doe = days - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2);
  return xasprintf ("%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09ldZ", y, m, d, secs / 3600, secs / 60 % 60,
                    secs % 60, ts.tv_nsec);
}
