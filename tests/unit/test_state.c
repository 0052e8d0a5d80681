/* test_state.c - unit tests for state.c's RFC 3339 timestamps, computed
 * without the C library's time zone machinery: the same text as gmtime_r
 * and strftime give, at the calendar's edges and across ten thousand
 * years.  */
#include <config.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "state/state.h"

static void
check (time_t sec, long nsec)
{
  struct timespec ts = { sec, nsec };
  struct tm tm;
  char want[80], date[64];
  char *got = sbx_rfc3339_utc (&ts);
  assert_non_null (gmtime_r (&sec, &tm));
  strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (want, sizeof want, "%s.%09ldZ", date, nsec);
  if (strcmp (got, want) != 0)
    fail_msg ("%lld: got %s, want %s", (long long)sec, got, want);
  free (got);
}

static void
test_edges (void **state)
{
  (void)state;
  static const time_t at[] = {
    0,          86399,
    86400,      68169599, /* 1972-02-28 23:59:59 */
    68169600,   /* 1972-02-29 */ 68255999,
    68256000, /* 1972-03-01 */
    951782400,  /* 2000-02-29 */ 951868800,
    978307199,  978307200,
    1796655862, /* 2026-12-07 */ 4107456000,                 /* 2100-02-28 */
    4107542400, /* 2100-03-01 (no leap day) */ 253402300799, /* 9999-12-31 23:59:59 */
  };
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
    check (at[i], (long)(i * 111111111 % 1000000000));
}

static void
test_every_day_and_random_seconds (void **state)
{
  (void)state;
  for (time_t day = 0; day < 3000000;
       day += 1) /* days to year 10183: all of the first eight years, then one in 31 */
    if (day % 31 == 0 || day < 3000)
      check (day * 86400 + (day * 7919) % 86400, 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_edges),
    cmocka_unit_test (test_every_day_and_random_seconds),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
