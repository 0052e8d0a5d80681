/* criu.c - running the criu binary, its per-boot usability check, and
 * mountinfo parsing for the external mounts CRIU must be told about.  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_internal.h"

/* `criu check` and `criu --version` must answer within this; a CRIU that
   hangs is not usable.  */
#define CHECK_TIMEOUT_MS 20000

void
sbx_argv_add (sbx_argv *a, const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start (ap, fmt);
  s = xvasprintf (fmt, ap);
  va_end (ap);
  a->v = xrealloc (a->v, (a->n + 2) * sizeof (char *));
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
}

void
sbx_argv_clear (sbx_argv *a)
{
  for (size_t i = 0; i < a->n; i++)
    free (a->v[i]);
  free (a->v);
  a->v = NULL;
  a->n = 0;
}

/* In the child: fds[i] onto 3+i, everything else above closed.  */
static void
child_fds (const int *fds, size_t nfds, int out_fd)
{
  int high[16];
  int devnull = open ("/dev/null", O_RDWR);
  if (devnull < 0 || nfds > 16)
    _exit (127);
  for (size_t i = 0; i < nfds; i++)
    if ((high[i] = fcntl (fds[i], F_DUPFD, 64)) < 0)
      _exit (127);
  dup2 (devnull, 0);
  dup2 (out_fd >= 0 ? out_fd : devnull, 1);
  dup2 (out_fd >= 0 ? out_fd : devnull, 2);
  for (size_t i = 0; i < nfds; i++)
    if (dup2 (high[i], 3 + (int)i) < 0)
      _exit (127);
  syscall (SYS_close_range, 3 + nfds, ~0U, 0);
}

/* Fork and exec criu; returns its exit status (128+N for a signal), or -1.
   out_fd >= 0 takes its stdout and stderr.  timeout_ms > 0 kills it then. */
static int
spawn_criu (const char *criu, char **argv, const int *fds, size_t nfds, int out_fd, int timeout_ms,
            sbx_error **err)
{
  int status = 0;
  pid_t pid = fork ();
  if (pid < 0)
    return sbx_error_sys (err, "fork for criu");
  if (pid == 0)
    {
      child_fds (fds, nfds, out_fd);
      if (strchr (criu, '/'))
        execv (criu, argv);
      else
        execvp (criu, argv);
      dprintf (2, "Error (sbxrun): cannot run `%s`: %s\n", criu, strerror (errno));
      _exit (127);
    }
  if (timeout_ms > 0)
    {
      cleanup_close int pidfd = syscall (SYS_pidfd_open, pid, 0);
      struct pollfd p = { pidfd, POLLIN, 0 };
      if (pidfd >= 0 && poll (&p, 1, timeout_ms) == 0)
        {
          kill (pid, SIGKILL);
          waitpid (pid, NULL, 0);
          return sbx_error_set (err, ETIMEDOUT, "`%s %s` did not answer within %d s", criu, argv[1],
                                timeout_ms / 1000);
        }
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return sbx_error_sys (err, "wait for criu");
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}

/* The last `keep` lines of text that start with "Error" (CRIU's failures),
   joined by "; ".  malloc'd, or NULL if none.  */
static char *
error_lines (const char *text, int keep)
{
  const char *lines[8];
  size_t lens[8];
  int n = 0;
  char *out;
  size_t len = 0;

  if (keep > 8)
    keep = 8;
  for (const char *p = text; p && *p;)
    {
      const char *nl = strchr (p, '\n');
      size_t l = nl ? (size_t)(nl - p) : strlen (p);
      const char *e = memmem (p, l, "Error", 5);
      if (e && (e == p || e[-1] == ' ' || e[-1] == ')' || e[-1] == ':'))
        {
          if (n == keep)
            {
              memmove (lines, lines + 1, (keep - 1) * sizeof *lines);
              memmove (lens, lens + 1, (keep - 1) * sizeof *lens);
              n--;
            }
          lines[n] = e;
          lens[n++] = l - (size_t)(e - p);
        }
      p = nl ? nl + 1 : NULL;
    }
  if (n == 0)
    return NULL;
  for (int i = 0; i < n; i++)
    len += lens[i] + 2;
  out = xmalloc0 (len + 1);
  for (int i = 0; i < n; i++)
    {
      if (i)
        strcat (out, "; ");
      strncat (out, lines[i], lens[i]);
    }
  return out;
}

int
sbx_criu_run (const char *criu, sbx_argv *a, const int *fds, size_t nfds, const char *log_path,
              sbx_error **err)
{
  cleanup_free char *log = NULL, *why = NULL;
  int r;

  free (a->v[0]);
  a->v[0] = xstrdup (criu);
  sbx_debug ("running %s %s (log %s)", criu, a->v[1], log_path);
  r = spawn_criu (criu, a->v, fds, nfds, -1, 0, err);
  if (r <= 0)
    return r;
  sbx_read_file (log_path, 0, &log, NULL, NULL);
  why = log ? error_lines (log, 3) : NULL;
  return sbx_error_set (err, 0, "criu %s failed (exit %d): %s (log: %s)", a->v[1], r,
                        why ? why : "no error in its log", log_path);
}

/* ---------------------------------------------------------------- check */

static char *
boot_id (void)
{
  char *s = NULL;
  if (sbx_read_file ("/proc/sys/kernel/random/boot_id", 256, &s, NULL, NULL) < 0)
    return xstrdup ("unknown");
  s[strcspn (s, "\n")] = '\0';
  return s;
}

/* Run `criu ARG [ARG2 ARG3]` capturing its output (malloc'd in *out).  */
static int
criu_capture (const char *criu, const char *arg, const char *arg2, const char *arg3, char **out,
              sbx_error **err)
{
  char tmpl[] = "/tmp/sbxrun-criu-XXXXXX";
  char *argv[] = { (char *)criu, (char *)arg, (char *)arg2, (char *)arg3, NULL };
  cleanup_close int fd = mkostemp (tmpl, O_CLOEXEC);
  int r;
  if (fd < 0)
    return sbx_error_sys (err, "temporary file for criu output");
  unlink (tmpl);
  r = spawn_criu (criu, argv, NULL, 0, fd, CHECK_TIMEOUT_MS, err);
  if (r < 0)
    return r;
  lseek (fd, 0, SEEK_SET);
  if (sbx_read_fd (fd, 1 << 20, out, NULL, err) < 0)
    return -1;
  return r;
}

/* Run the check now: "1 criu VERSION" or "0 REASON".  */
static char *
check_now (const char *criu)
{
  cleanup_free char *ver = NULL, *out = NULL, *why = NULL;
  cleanup_error sbx_error *e = NULL;
  int r = criu_capture (criu, "--version", NULL, NULL, &ver, &e);
  char *v;

  if (r != 0)
    return xasprintf ("0 `%s --version` failed: %s", criu, e ? e->msg : (ver && *ver ? ver : "no output"));
  v = strstr (ver, "Version: ");
  v = v ? v + 9 : ver;
  v[strcspn (v, "\n")] = '\0';
  r = criu_capture (criu, "check", NULL, NULL, &out, &e);
  if (r == 0)
    return xasprintf ("1 criu %s", v);
  if (r < 0)
    return xasprintf ("0 criu %s: %s", v, e->msg);
  why = error_lines (out, 3);
  return xasprintf ("0 criu %s: `criu check` failed: %s", v, why ? why : out);
}

int
sbx_criu_feature (const char *criu, const char *feature, const char *what, sbx_error **err)
{
  cleanup_free char *out = NULL, *why = NULL;
  cleanup_error sbx_error *e = NULL;
  int r = criu_capture (criu ? criu : "criu", "check", "--feature", feature, &out, &e);
  if (r == 0)
    return 0;
  if (r < 0)
    return sbx_error_set (err, ENOTSUP, "%s: `criu check --feature %s`: %s", what, feature, e->msg);
  why = error_lines (out, 3);
  if (why == NULL && out)
    out[strcspn (out, "\n")] = '\0';
  return sbx_error_set (err, ENOTSUP,
                        "%s: CRIU cannot use the kernel feature `%s` here (`criu check --feature %s`: %s)",
                        what, feature, feature, why ? why : (out && *out ? out : "failed"));
}

bool
sbx_criu_usable (const char *criu, const char *root, char **why)
{
  cleanup_free char *boot = boot_id (), *cached = NULL, *res = NULL, *text = NULL;
  cleanup_close int rfd = -1;
  char *nl;
  bool ok;

  if (criu == NULL)
    criu = "criu";
  /* Cached per boot and binary: "<boot id> <criu>\n<result>".  The root
     may not exist yet (features before any container): then no cache.  */
  rfd = root ? sbx_open_private_dir (root, false, "state root (--root)", NULL) : -1;
  if (rfd >= 0)
    {
      cleanup_close int fd = openat (rfd, ".criu-check", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      cleanup_free char *key = xasprintf ("%s %s\n", boot, criu);
      if (fd >= 0 && sbx_read_fd (fd, 64 << 10, &cached, NULL, NULL) == 0 && sbx_has_prefix (cached, key)
          && (cached[strlen (key)] == '0' || cached[strlen (key)] == '1'))
        res = xstrdup (cached + strlen (key));
    }
  if (res == NULL)
    {
      res = check_now (criu);
      if (rfd >= 0)
        {
          text = xasprintf ("%s %s\n%s\n", boot, criu, res);
          sbx_write_file_atomic (rfd, ".criu-check", text, strlen (text), 0600, NULL);
        }
    }
  nl = strchr (res, '\n');
  if (nl)
    *nl = '\0';
  ok = res[0] == '1';
  *why = xstrdup (res + 2);
  return ok;
}

/* ---------------------------------------------------------------- mountinfo */

/* Undo mountinfo's octal escapes (\040 for a space) in place.  */
static char *
unescape (char *s)
{
  char *o = s;
  for (char *p = s; *p; p++)
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0'
        && p[3] <= '7')
      {
        *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
        p += 3;
      }
    else
      *o++ = *p;
  *o = '\0';
  return s;
}

int
sbx_mountinfo_read (const char *path, sbx_mnt **out, size_t *n, sbx_error **err)
{
  cleanup_free char *text = NULL;
  sbx_mnt *m = NULL;
  size_t k = 0;
  char *save = NULL;

  if (sbx_read_file (path, 16 << 20, &text, NULL, err) < 0)
    return -1;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *f[6], *sp = NULL, *dash = strstr (line, " - ");
      unsigned maj, min;
      int i = 0;
      if (dash == NULL)
        continue;
      *dash = '\0';
      for (char *t = strtok_r (line, " ", &sp); t && i < 6; t = strtok_r (NULL, " ", &sp))
        f[i++] = t;
      if (i < 5 || sscanf (f[2], "%u:%u", &maj, &min) != 2)
        continue;
      m = xrealloc (m, (k + 1) * sizeof *m);
      m[k].maj = maj;
      m[k].min = min;
      m[k].root = xstrdup (unescape (f[3]));
      m[k].point = xstrdup (unescape (f[4]));
      {
        char *fs = dash + 3, *end = strchr (fs, ' ');
        m[k].fstype = end ? strndup (fs, (size_t)(end - fs)) : xstrdup (fs);
      }
      k++;
    }
  *out = m;
  *n = k;
  return 0;
}

void
sbx_mountinfo_free (sbx_mnt *m, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (m[i].root);
      free (m[i].point);
      free (m[i].fstype);
    }
  free (m);
}
