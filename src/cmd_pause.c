/* cmd_pause.c - `sbxrun pause ID`: freeze every process of the container.  */
#include <config.h>

#include "cli.h"
#include "container/container.h"

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  int i = sbx_cli_parse (&sbx_cmd_pause, argc, argv, sbx_no_opts, NULL, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_pause, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_pause (g->root, argv[i], err);
}

const sbx_command sbx_cmd_pause = {
  .name = "pause",
  .args = "ID",
  .summary = "suspend every process of a running container (cgroup freezer; state \"paused\")",
  .run = run,
};
