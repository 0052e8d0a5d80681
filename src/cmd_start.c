/* cmd_start.c - `sbxrun start ID`.  */
#include <config.h>

#include "cli.h"
#include "container/container.h"

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  int i = sbx_cli_parse (&sbx_cmd_start, argc, argv, sbx_no_opts, NULL, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_start, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_start (g->root, argv[i], err);
}

const sbx_command sbx_cmd_start = {
  .name = "start",
  .args = "ID",
  .summary = "run the user process of a created container",
  .run = run,
};
