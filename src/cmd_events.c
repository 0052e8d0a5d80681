/* cmd_events.c - `sbxrun events [--stats] [--interval D] ID`: JSON lines
 * with the container's resource usage and OOM events, as runc prints them,
 * until the container stops.  */
#include <config.h>

#include <errno.h>

#include "cli.h"
#include "container/container.h"

enum
{
  OPT_STATS,
  OPT_INTERVAL,
};

static const sbx_opt opts[] = {
  [OPT_STATS] = { "stats", 0, false, NULL, "print the current stats once and exit" },
  [OPT_INTERVAL] = { "interval", 0, true, "DURATION", "time between stats events (default 5s; 0 = none)" },
  { 0 },
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  sbx_events_opts *o = data;
  switch (key)
    {
    case OPT_STATS:
      o->stats_only = true;
      return 0;
    case OPT_INTERVAL:
      return sbx_parse_duration_ms (arg, &o->interval_ms, err);
    }
  return sbx_error_set (err, EINVAL, "unknown option");
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  sbx_events_opts o = { .interval_ms = 5000, .out_fd = 1 };
  int i = sbx_cli_parse (&sbx_cmd_events, argc, argv, on_opt, &o, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_events, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_events (g->root, argv[i], &o, err);
}

const sbx_command sbx_cmd_events = {
  .name = "events",
  .args = "ID",
  .summary = "print container events (stats every interval, OOM kills) as JSON lines until it stops",
  .opts = opts,
  .run = run,
};
