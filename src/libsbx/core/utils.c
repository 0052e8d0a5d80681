/* utils.c - see utils.h.  */
#include <config.h>
#include "core/core.h"
#include "ocispec.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
sbx_freep (void *p)
{
  free (*(void **) p);
}

void
sbx_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
  *fd = -1;
}

void
sbx_fclosep (void *f)
{
  FILE **fp = f;
  if (*fp)
    fclose (*fp);
  *fp = NULL;
}

void
sbx_strv_free (char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free (*p);
  free (v);
}

void
sbx_strv_freep (char ***v)
{
  sbx_strv_free (*v);
  *v = NULL;
}

size_t
sbx_strv_len (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void *
xmalloc0 (size_t n)
{
  void *p = calloc (1, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

char *
xstrdup (const char *s)
{
  char *r;
  if (s == NULL)
    return NULL;
  r = strdup (s);
  if (r == NULL)
    abort ();
  return r;
}

char *
xvasprintf (const char *fmt, va_list ap)
{
  char *s;
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  return s;
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start (ap, fmt);
  s = xvasprintf (fmt, ap);
  va_end (ap);
  return s;
}

ssize_t
sbx_write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = write (fd, p + done, len - done);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      done += r;
    }
  return done;
}

ssize_t
sbx_read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = read (fd, p + done, len - done);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        break;
      done += r;
    }
  return done;
}

int
sbx_proc_stat (pid_t pid, unsigned long long *v, int last)
{
  char path[64], buf[2048];
  cleanup_close int fd = -1;
  ssize_t n;
  char *p;

  if (pid > 0)
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
  else
    snprintf (path, sizeof path, "/proc/self/stat");
  fd = open (path, O_RDONLY | O_CLOEXEC);
  n = fd < 0 ? -1 : sbx_read_all (fd, buf, sizeof buf - 1);
  if (n <= 0 || last < 3 || last > 52)
    return -1;
  buf[n] = '\0';
  p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ' || p[2] == '\0')
    return -1;
  v[3] = (unsigned char)p[2];
  p += 3;
  for (int i = 4; i <= last; i++)
    {
      char *end;
      errno = 0;
      v[i] = strtoull (p, &end, 10);
      if (end == p || errno)
        return -1;
      p = end;
    }
  return 0;
}

int
sbx_read_fd (int fd, size_t max, char **out, size_t *len, sbx_error **err)
{
  size_t cap = 4096, n = 0;
  cleanup_free char *buf = xmalloc0 (cap + 1);

  for (;;)
    {
      ssize_t r;
      if (n == cap)
        {
          cap *= 2;
          buf = xrealloc (buf, cap + 1);
        }
      r = read (fd, buf + n, cap - n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return sbx_error_sys (err, "read");
      if (r == 0)
        break;
      n += r;
      if (max && n > max)
        return sbx_error_set (err, EFBIG, "file larger than %zu bytes", max);
    }
  buf[n] = '\0';
  if (len)
    *len = n;
  *out = steal_ptr (buf);
  return 0;
}

int
sbx_read_file (const char *path, size_t max, char **out, size_t *len, sbx_error **err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, "open `%s`", path);
  if (sbx_read_fd (fd, max, out, len, err) < 0)
    return sbx_error_wrap (err, "`%s`", path);
  return 0;
}

/* 64 unpredictable bits for a temporary name: getrandom, or (no entropy
   yet at early boot) the clock and pid, which O_EXCL still makes safe.  */
static unsigned long long
tmp_suffix (void)
{
  unsigned long long v;
  struct timespec ts;
  if (getrandom (&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
    return v;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ((unsigned long long) ts.tv_nsec << 20) ^ (unsigned long long) ts.tv_sec ^ (unsigned long long) getpid ();
}

int
sbx_write_file_atomic (int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                       sbx_error **err)
{
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;

  /* The directory may be writable by others (a pid file in /tmp): the
     temporary gets a name nobody can guess, is created, never opened, and
     no symlink is followed (O_EXCL|O_NOFOLLOW); rename then replaces the
     final name's link (a symlink planted there included), never its target.  */
  for (int tries = 0; fd < 0; tries++)
    {
      free (tmp);
      tmp = xasprintf (".%.200s.%016llx.tmp", name, tmp_suffix ());
      fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd < 0 && (errno != EEXIST || tries >= 8))
        return sbx_error_sys (err, "create `%s`", tmp);
    }
  /* No fsync: rename alone keeps readers consistent, and the state under
     /run does not outlive a reboot; syncing cost 2-12 ms per run on disk. */
  if (sbx_write_all (fd, data, len) < 0)
    {
      int r = sbx_error_sys (err, "write `%s`", tmp);
      unlinkat (dirfd, tmp, 0);
      return r;
    }
  if (renameat (dirfd, tmp, dirfd, name) < 0)
    {
      int r = sbx_error_sys (err, "rename `%s` to `%s`", tmp, name);
      unlinkat (dirfd, tmp, 0);
      return r;
    }
  return 0;
}

int
sbx_mkdir_p (const char *path, mode_t mode, sbx_error **err)
{
  cleanup_free char *p = xstrdup (path);
  for (char *s = p + 1; *s; s++)
    {
      if (*s != '/')
        continue;
      *s = '\0';
      if (mkdir (p, mode) < 0 && errno != EEXIST)
        return sbx_error_sys (err, "mkdir `%s`", p);
      *s = '/';
    }
  if (mkdir (p, mode) < 0 && errno != EEXIST)
    return sbx_error_sys (err, "mkdir `%s`", p);
  return 0;
}

int
sbx_check_private_dir (int fd, const char *path, const char *what, sbx_error **err)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return sbx_error_sys (err, "%s `%s`", what, path);
  if (st.st_uid != geteuid ())
    return sbx_error_set (err, EPERM,
                          "%s `%s`: owned by uid %u, not by the caller (uid %u); refused, since "
                          "whoever can write it decides what sbxrun trusts",
                          what, path, (unsigned) st.st_uid, (unsigned) geteuid ());
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return sbx_error_set (err, EPERM,
                          "%s `%s`: writable by group or others (mode %04o); refused, since "
                          "whoever can write it decides what sbxrun trusts (chmod go-w)",
                          what, path, (unsigned) (st.st_mode & 07777));
  return 0;
}

int
sbx_open_private_dir (const char *path, bool create, const char *what, sbx_error **err)
{
  struct stat st;
  int fd;

  if (create && sbx_mkdir_p (path, 0700, err) < 0)
    return sbx_error_wrap (err, "%s", what);
  fd = open (path, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if ((errno == ELOOP || errno == ENOTDIR) && lstat (path, &st) == 0 && S_ISLNK (st.st_mode))
        return sbx_error_set (err, ELOOP, "%s `%s`: is a symbolic link (refused: name the directory itself)",
                              what, path);
      return sbx_error_sys (err, "open %s `%s`", what, path);
    }
  if (sbx_check_private_dir (fd, path, what, err) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

bool
sbx_has_prefix (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

int
sbx_parse_int64 (const char *s, long long *out)
{
  char *end;
  long long v;
  if (s == NULL || *s == '\0')
    return -1;
  errno = 0;
  v = strtoll (s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

static int *inherited;
static size_t n_inherited;

void
sbx_inherited_fds_snapshot (void)
{
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *de;
  if (d == NULL)
    return;
  while ((de = readdir (d)))
    {
      long long fd;
      if (sbx_parse_int64 (de->d_name, &fd) < 0 || fd < 3 || fd == dirfd (d))
        continue;
      inherited = xrealloc (inherited, (n_inherited + 1) * sizeof *inherited);
      inherited[n_inherited++] = (int) fd;
    }
  closedir (d);
}

bool
sbx_fd_inherited (int fd)
{
  for (size_t i = 0; i < n_inherited; i++)
    if (inherited[i] == fd)
      return true;
  return false;
}

void
sbx_forward_signal (int sigfd, int pidfd)
{
  struct signalfd_siginfo si;
  if (read (sigfd, &si, sizeof si) == (ssize_t) sizeof si)
    syscall (SYS_pidfd_send_signal, pidfd, si.ssi_signo, NULL, 0);
}

void
sbx_config_annotate (oci_config *c, const char *key, const char *value)
{
  size_t n = c->annotations_len;
  for (size_t i = 0; i < n; i++)
    if (strcmp (c->annotations_keys[i], key) == 0)
      {
        free (c->annotations_values[i]);
        c->annotations_values[i] = xstrdup (value);
        return;
      }
  c->annotations_keys = xrealloc (c->annotations_keys, (n + 2) * sizeof (char *));
  c->annotations_values = xrealloc (c->annotations_values, (n + 2) * sizeof (char *));
  c->annotations_keys[n] = xstrdup (key);
  c->annotations_values[n] = xstrdup (value);
  c->annotations_keys[n + 1] = c->annotations_values[n + 1] = NULL;
  c->annotations_len = n + 1;
}

int
sbx_remove_tree_at (int dfd, const char *name)
{
  struct stat st;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  if (S_ISDIR (st.st_mode))
    {
      int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
      struct dirent *de;
      int r = 0;
      if (d == NULL)
        {
          if (fd >= 0)
            close (fd);
          return -1;
        }
      while ((de = readdir (d)))
        if (strcmp (de->d_name, ".") && strcmp (de->d_name, "..")
            && sbx_remove_tree_at (dirfd (d), de->d_name) < 0)
          r = -1;
      closedir (d);
      if (r < 0)
        return -1;
      return unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
    }
  return unlinkat (dfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
}

void
sbx_test_kill_point (const char *step)
{
  const char *at = getenv ("SBXRUN_TEST_KILL_AT");
  if (at && strcmp (at, step) == 0)
    kill (getpid (), SIGKILL);
  /* stopped there until a SIGCONT (tests of concurrent commands) */
  at = getenv ("SBXRUN_TEST_STOP_AT");
  if (at && strcmp (at, step) == 0)
    kill (getpid (), SIGSTOP);
}

int
sbx_run_capture (char *const *argv, const char *hint, char **out, sbx_error **err)
{
  int fds[2], status = 0, r;
  pid_t pid;

  *out = NULL;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return sbx_error_sys (err, "pipe for %s", argv[0]);
  pid = fork ();
  if (pid < 0)
    {
      close (fds[0]);
      close (fds[1]);
      return sbx_error_sys (err, "fork for %s", argv[0]);
    }
  if (pid == 0)
    {
      int devnull = open ("/dev/null", O_RDONLY);
      if (devnull < 0 || dup2 (devnull, 0) < 0 || dup2 (fds[1], 1) < 0 || dup2 (fds[1], 2) < 0)
        _exit (127);
      syscall (SYS_close_range, 3, ~0U, 0);
      execvp (argv[0], argv);
      dprintf (2, "cannot run `%s`: %s%s\n", argv[0], strerror (errno), hint ? hint : "");
      _exit (127);
    }
  close (fds[1]);
  /* Reaped whatever the read does: no zombie left on an error.  */
  r = sbx_read_fd (fds[0], 0, out, NULL, err);
  close (fds[0]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      {
        if (r < 0)
          return -1;
        free (*out);
        *out = NULL;
        return sbx_error_sys (err, "wait for %s", argv[0]);
      }
  if (r < 0)
    return sbx_error_wrap (err, "output of %s", argv[0]);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
sbx_pidfd_open (pid_t pid)
{
#ifdef SYS_pidfd_open
  return (int)syscall (SYS_pidfd_open, pid, 0);
#else
  errno = ENOSYS;
  return -1;
#endif
}

long long
sbx_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
