/* log.c - see log.h.  */
#include <config.h>
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static int log_fd = -1;
static bool log_json;
static bool log_debug;

/* The fd that /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N
   names, or -1.  */
static int
caller_stream (const char *path)
{
  const char *n = NULL;
  long long fd;
  if (strcmp (path, "/dev/stdout") == 0)
    return 1;
  if (strcmp (path, "/dev/stderr") == 0)
    return 2;
  if (strncmp (path, "/dev/fd/", 8) == 0)
    n = path + 8;
  else if (strncmp (path, "/proc/self/fd/", 14) == 0)
    n = path + 14;
  if (n == NULL || *n < '0' || *n > '9')
    return -1;
  if (sbx_parse_int64 (n, &fd) < 0 || fd > 1 << 20 || fcntl ((int)fd, F_GETFD) < 0)
    return -1;
  return (int)fd;
}

int
sbx_log_init (const char *path, const char *format, bool debug, sbx_error **err)
{
  log_debug = debug;
  if (format && strcmp (format, "json") == 0)
    log_json = true;
  else if (format && strcmp (format, "text") != 0)
    return sbx_error_set (err, EINVAL, "--log-format: unknown format `%s` (want text or json)",
                          format);
  if (path && *path)
    {
      /* Engines reuse the file (append); a symlink planted at the name
         would make root append to whatever it points at.  */
      int std = caller_stream (path);
      if (std >= 0)
        {
          /* The caller's own stream by its /dev name (a symlink into
             /proc/self/fd): use the fd we were given, follow nothing.  */
          log_fd = fcntl (std, F_DUPFD_CLOEXEC, 3);
          if (log_fd < 0)
            return sbx_error_sys (err, "log file `%s`", path);
          return 0;
        }
      log_fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (log_fd < 0 && errno == ELOOP)
        return sbx_error_set (err, ELOOP, "log file `%s`: is a symbolic link (refused: name the file itself)",
                              path);
      if (log_fd < 0)
        return sbx_error_sys (err, "open log file `%s`", path);
    }
  return 0;
}

void
sbx_log_close (void)
{
  if (log_fd >= 0)
    close (log_fd);
  log_fd = -1;
}

static const char *level_names[] = { "error", "warning", "info", "debug" };

static void
emit (int fd, bool json, sbx_log_level level, const char *msg)
{
  struct timeval tv;
  struct tm tm;
  char ts[64], frac[16];
  cleanup_free char *line = NULL;

  gettimeofday (&tv, NULL);
  gmtime_r (&tv.tv_sec, &tm);
  strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (frac, sizeof frac, ".%06ldZ", (long) tv.tv_usec);
  if (json)
    {
      oj_writer *w = oj_writer_new (false);
      cleanup_free char *t = xasprintf ("%s%s", ts, frac);
      oj_w_begin_object (w);
      oj_w_key (w, "level");
      oj_w_string (w, level_names[level]);
      oj_w_key (w, "msg");
      oj_w_string (w, msg);
      oj_w_key (w, "time");
      oj_w_string (w, t);
      oj_w_end_object (w);
      cleanup_free char *s = oj_writer_finish (w, NULL);
      line = xasprintf ("%s\n", s);
    }
  else
    line = xasprintf ("%s%s %s: %s\n", ts, frac, level_names[level], msg);
  sbx_write_all (fd, line, strlen (line));
}

bool
sbx_log_debugging (void)
{
  return log_debug;
}

void
sbx_log (sbx_log_level level, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;

  if (level == SBX_LOG_DEBUG && !log_debug)
    return;
  va_start (ap, fmt);
  msg = xvasprintf (fmt, ap);
  va_end (ap);
  if (log_fd >= 0)
    emit (log_fd, log_json, level, msg);
  else if (level <= SBX_LOG_WARNING || log_debug)
    {
      cleanup_free char *line = xasprintf ("sbxrun: %s: %s\n", level_names[level], msg);
      sbx_write_all (2, line, strlen (line));
    }
}

void
sbx_log_error (const sbx_error *err)
{
  cleanup_free char *text = sbx_error_text (err);
  cleanup_free char *line = xasprintf ("sbxrun: %s\n", text);
  sbx_write_all (2, line, strlen (line));
  if (log_fd >= 0)
    emit (log_fd, log_json, SBX_LOG_ERROR, text);
}
