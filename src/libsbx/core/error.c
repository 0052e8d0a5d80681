/* error.c - construction and wrapping of sbx_error objects.  */
#include <config.h>
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
vformat (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    return NULL;
  return s;
}

int
sbx_error_set (sbx_error **err, int errno_, const char *fmt, ...)
{
  va_list ap;
  sbx_error *e;

  if (err == NULL)
    return errno_ > 0 ? -errno_ : -1;
  e = calloc (1, sizeof *e);
  if (e == NULL)
    abort ();
  va_start (ap, fmt);
  e->msg = vformat (fmt, ap);
  va_end (ap);
  if (e->msg == NULL)
    abort ();
  e->errno_ = errno_;
  sbx_error_free (*err);
  *err = e;
  return sbx_error_status (e);
}

int
sbx_error_wrap (sbx_error **err, const char *fmt, ...)
{
  va_list ap;
  char *ctx, *joined = NULL;

  if (err == NULL || *err == NULL)
    return -1;
  va_start (ap, fmt);
  ctx = vformat (fmt, ap);
  va_end (ap);
  if (ctx == NULL || asprintf (&joined, "%s: %s", ctx, (*err)->msg) < 0)
    abort ();
  free (ctx);
  free ((*err)->msg);
  (*err)->msg = joined;
  return sbx_error_status (*err);
}

char *
sbx_error_text (const sbx_error *err)
{
  char *s = NULL;
  int r;

  if (err == NULL)
    return strdup ("unknown error");
  if (err->errno_ > 0)
    r = asprintf (&s, "%s: %s", err->msg, strerror (err->errno_));
  else
    r = asprintf (&s, "%s", err->msg);
  if (r < 0)
    abort ();
  return s;
}

void
sbx_error_free (sbx_error *err)
{
  if (err == NULL)
    return;
  free (err->msg);
  free (err);
}

void
sbx_error_freep (sbx_error **err)
{
  sbx_error_free (*err);
  *err = NULL;
}
