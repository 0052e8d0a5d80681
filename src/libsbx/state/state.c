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
#include <sys/stat.h>
#include <time.h>

#include "cgroup/cgroup.h"
#include "core/core.h"

#define STATUS_VERSION 1

int
sbx_id_validate (const char *id, sbx_error **err)
{
  size_t n = id ? strlen (id) : 0;
  if (n == 0)
    return sbx_error_set (err, EINVAL, "container id: must not be empty");
  if (n > 1024)
    return sbx_error_set (err, EINVAL, "container id `%.32s...`: longer than 1024 characters", id);
  /* Dot names are the state root's own (the seccomp cache) and hidden.  */
  if (id[0] == '.')
    return sbx_error_set (err, EINVAL, "container id `%s`: must not start with `.`", id);
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || strchr ("_+.-", *p)))
      return sbx_error_set (err, EINVAL,
                            "container id `%s`: invalid character `%c` (allowed: letters, digits, "
                            "`_`, `+`, `.`, `-`)",
                            id, *p);
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

int
sbx_state_create (const char *root, const char *id, sbx_state **out, sbx_error **err)
{
  cleanup_close int root_fd = -1, dir_fd = -1;
  sbx_state *s;

  if (sbx_id_validate (id, err) < 0)
    return -1;
  root_fd = open_root (root, true, err);
  if (root_fd < 0)
    return -1;
  if (mkdirat (root_fd, id, 0700) < 0)
    {
      if (errno == EEXIST)
        return sbx_error_set (err, EEXIST, "container with id `%s` already exists", id);
      return sbx_error_sys (err, "create state directory `%s/%s`", root, id);
    }
  dir_fd = openat (root_fd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (dir_fd < 0 || lock_dir (dir_fd, err) < 0)
    {
      int r = dir_fd < 0 ? sbx_error_sys (err, "open state directory") : -1;
      unlinkat (root_fd, id, AT_REMOVEDIR);
      return r;
    }
  s = xmalloc0 (sizeof *s);
  s->root_fd = steal_fd (&root_fd);
  s->dir_fd = steal_fd (&dir_fd);
  s->id = xstrdup (id);
  s->dir = xasprintf ("%s/%s", root, id);
  s->st = xmalloc0 (sizeof *s->st);
  s->st->version = STATUS_VERSION;
  s->st->has_version = true;
  s->st->id = xstrdup (id);
  *out = s;
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
  sfd = openat (dir_fd, "status.json", O_RDONLY | O_CLOEXEC);
  if (sfd < 0)
    {
      /* A create that died before saving anything: treat as absent.  */
      if (errno == ENOENT)
        return sbx_error_set (err, ENOENT, "container \"%s\" does not exist", id);
      return sbx_error_sys (err, "open state of container \"%s\"", id);
    }
  if (sbx_read_fd (sfd, 1 << 20, &text, NULL, err) < 0)
    return sbx_error_wrap (err, "read state of container \"%s\"", id);
  s = xmalloc0 (sizeof *s);
  s->st = ocispec_parse (&sbx_status_file_type, text, strlen (text), &msg);
  if (s->st == NULL)
    {
      free (s);
      return sbx_error_set (err, EINVAL, "state of container \"%s\" is corrupt: %s", id, msg);
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
  return sbx_write_file_atomic (s->dir_fd, "status.json", json, len, 0600, err);
}

/* Remove directory name below dirfd and all it holds, never following a
   symlink (the default checkpoint image directory).  */
static void
remove_tree_at (int dirfd, const char *name, int depth)
{
  int fd;
  DIR *d;
  struct dirent *de;

  if (unlinkat (dirfd, name, 0) == 0 || errno == ENOENT || depth > 16)
    return;
  fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return;
    }
  while ((de = readdir (d)))
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      remove_tree_at (fd, de->d_name, depth + 1);
  closedir (d);
  unlinkat (dirfd, name, AT_REMOVEDIR);
}

int
sbx_state_remove (sbx_state *s, sbx_error **err)
{
  static const char *files[] = { "status.json", "config.json", "start.sock", "net.json", NULL };
  if (s == NULL)
    return 0;
  for (const char **f = files; *f; f++)
    unlinkat (s->dir_fd, *f, 0);
  /* checkpoint/: CRIU's images when no --image-path was given; criu-root:
     the mount point of a restore (unmounted, empty).  */
  remove_tree_at (s->dir_fd, "checkpoint", 0);
  unlinkat (s->dir_fd, "criu-root", AT_REMOVEDIR);
  if (unlinkat (s->root_fd, s->id, AT_REMOVEDIR) < 0 && errno != ENOENT)
    {
      /* Unknown leftovers (temp files of a crashed writer): remove them.  */
      DIR *d = fdopendir (dup (s->dir_fd));
      struct dirent *de;
      if (d)
        {
          while ((de = readdir (d)))
            if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
              unlinkat (s->dir_fd, de->d_name, 0);
          closedir (d);
        }
      if (unlinkat (s->root_fd, s->id, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return sbx_error_sys (err, "remove state directory `%s`", s->dir);
    }
  return 0;
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

unsigned long long
sbx_pid_start_time (pid_t pid)
{
  char path[64], buf[1024];
  cleanup_close int fd = -1;
  ssize_t n;
  char *p;
  unsigned long long start = 0;

  if (pid <= 0)
    return 0;
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = sbx_read_all (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* comm may contain spaces and parens: fields restart after the last ')'.  */
  p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ')
    return 0;
  p += 2;
  if (*p == 'Z' || *p == 'X')
    return 0;
  /* p is field 3 (state); starttime is field 22.  */
  for (int field = 3; field < 22 && p; field++)
    {
      p = strchr (p, ' ');
      if (p)
        p++;
    }
  if (p == NULL || sscanf (p, "%llu", &start) != 1)
    return 0;
  return start;
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
  if (!sbx_state_alive (s))
    return "stopped";
  if (!s->st->started)
    return "created";
  if (s->st->cgroup)
    {
      sbx_cgroup *cg = NULL;
      bool frozen = false;
      if (sbx_cgroup_load (s->st->cgroup, &cg, NULL) == 0)
        {
          frozen = sbx_cgroup_is_frozen (cg);
          sbx_cgroup_free (cg);
        }
      if (frozen)
        return "paused";
    }
  return "running";
}

char *
sbx_state_json (sbx_state *s, const oci_config *c, const char *status, bool pretty)
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
  oj_w_int (w, strcmp (status, "stopped") == 0 ? 0 : s->st->pid);
  oj_w_key (w, "bundle");
  oj_w_string (w, s->st->bundle);
  oj_w_key (w, "rootfs");
  oj_w_string (w, s->st->rootfs ? s->st->rootfs : "");
  oj_w_key (w, "created");
  oj_w_string (w, s->st->created ? s->st->created : "");
  oj_w_key (w, "owner");
  oj_w_string (w, s->st->owner ? s->st->owner : "");
  oj_w_key (w, "annotations");
  oj_w_begin_object (w);
  for (size_t i = 0; c && i < c->annotations_len; i++)
    {
      oj_w_key (w, c->annotations_keys[i]);
      oj_w_string (w, c->annotations_values[i]);
    }
  oj_w_end_object (w);
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
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  size_t n = 0;
  char **v = xmalloc0 (sizeof *v);

  if (d == NULL)
    {
      free (v);
      if (fd == -ENOENT)
        {
          if (err)
            sbx_error_freep (err);
          *ids = xmalloc0 (sizeof **ids);
          return 0;
        }
      if (fd >= 0)
        {
          sbx_error_sys (err, "open state root `%s`", root);
          close (fd);
        }
      return -1;
    }
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
  struct tm tm;
  char buf[64];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return xasprintf ("%s.%09ldZ", buf, ts.tv_nsec);
}
