/* log.h - diagnostics for the CLI and library: text or JSON lines
 * ({"level","msg","time"}, as podman and containerd parse) to the --log file,
 * falling back to stderr.  */
#ifndef SBX_LOG_H
#define SBX_LOG_H

#include <stdbool.h>

#include "error.h"

typedef enum
{
  SBX_LOG_ERROR,
  SBX_LOG_WARNING,
  SBX_LOG_INFO,
  SBX_LOG_DEBUG
} sbx_log_level;

/* path may be NULL (stderr only).  format: "text" or "json".  */
int sbx_log_init (const char *path, const char *format, bool debug, sbx_error **err);
void sbx_log (sbx_log_level level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
#define sbx_debug(...) sbx_log (SBX_LOG_DEBUG, __VA_ARGS__)
#define sbx_warn(...) sbx_log (SBX_LOG_WARNING, __VA_ARGS__)
/* Report a fatal error: always on stderr as "sbxrun: msg", and in the log
   file in its format.  */
void sbx_log_error (const sbx_error *err);
/* The log fd (or -1), so children can be told not to close it.  */
int sbx_log_fd (void);
/* Close the log file in a process that a container can see: it is a host
   file (messages then go to stderr).  */
void sbx_log_close (void);

#endif
