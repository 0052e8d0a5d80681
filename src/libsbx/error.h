/* error.h - the one error idiom of sbxrun.
 *
 * Every fallible library function returns 0 (or a non-negative value) on
 * success, or a negative value on failure after filling *err.  Callers add
 * context while unwinding with sbx_error_wrap(); the CLI prints the result as
 * "sbxrun: <context>: <message>: <strerror>" or as a JSON log line.  Library
 * code never calls exit().  */
#ifndef SBX_ERROR_H
#define SBX_ERROR_H

#include <errno.h>
#include <stdarg.h>

typedef struct sbx_error
{
  int errno_;   /* 0 when the failure is not a system error */
  char *msg;    /* full text, context prepended by wraps */
} sbx_error;

/* Create an error; errno_ may be 0.  Always returns -1 (or -errno_ if set),
   so that `return sbx_error_set (...)` reads naturally.  If *err is already
   set it is replaced.  */
int sbx_error_set (sbx_error **err, int errno_, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Same with errno as the error number.  */
#define sbx_error_sys(err, ...) sbx_error_set ((err), errno, __VA_ARGS__)

/* Prepend "context: " to an existing error and return its status.  */
int sbx_error_wrap (sbx_error **err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* The text "msg: strerror" (or just msg), owned by the caller.  */
char *sbx_error_text (const sbx_error *err);

void sbx_error_free (sbx_error *err);
void sbx_error_freep (sbx_error **err);
#define cleanup_error __attribute__ ((cleanup (sbx_error_freep)))

/* Status for an error: negative errno, or -1.  */
static inline int
sbx_error_status (const sbx_error *err)
{
  return err && err->errno_ > 0 ? -err->errno_ : -1;
}

#endif
