/* fuzz_common.h - shared by the libFuzzer harnesses in tests/fuzz.
 *
 * The harnesses link the runtime's own sources (built with the sanitizers by
 * run.sh) except log.c: the definitions below stand in for it, so that
 * warnings about fuzzed input do not flood the output, while every message
 * is still formatted (a bad format string or argument would show up under
 * the sanitizers).  */
#ifndef SBX_FUZZ_COMMON_H
#define SBX_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int
sbx_log_init (const char *path, const char *format, bool debug, sbx_error **err)
{
  (void) path, (void) format, (void) debug, (void) err;
  return 0;
}

void
sbx_log (sbx_log_level level, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  (void) level;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
}

void
sbx_log_error (const sbx_error *err)
{
  (void) err;
}

/* The error text must be a non-empty, NUL-terminated string: render it (the
   sanitizers check every byte) and free the error.  */
static inline void
fuzz_consume_error (sbx_error **err)
{
  char *text;
  if (*err == NULL)
    abort (); /* a failure must say why */
  text = sbx_error_text (*err);
  if (text == NULL || text[0] == '\0')
    abort ();
  free (text);
  sbx_error_free (*err);
  *err = NULL;
}

#endif
