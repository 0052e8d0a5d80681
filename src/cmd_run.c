/* cmd_run.c - `sbxrun run`: create + start, and wait in the foreground.  */
#include <config.h>

#include "cli.h"
#include "container/container.h"

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  sbx_create_opts o = { 0 };
  int r = sbx_create_parse (&sbx_cmd_run, g, argc, argv, &o, err);
  if (r < 0)
    return r;
  return sbx_container_run (&o, err);
}

const sbx_command sbx_cmd_run = {
  .name = "run",
  .args = "ID",
  .summary = "create and start a container; wait for it unless --detach",
  .opts = sbx_run_options,
  .run = run,
  .sealed = true,
};
