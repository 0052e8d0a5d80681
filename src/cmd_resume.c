/* cmd_resume.c - `sbxrun resume ID`: thaw a paused container.  */
#include <config.h>

#include "cli.h"
#include "container/container.h"

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  int i = sbx_cli_parse (&sbx_cmd_resume, argc, argv, sbx_no_opts, NULL, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_resume, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_resume (g->root, argv[i], err);
}

const sbx_command sbx_cmd_resume = {
  .name = "resume",
  .args = "ID",
  .summary = "resume every process of a paused container",
  .run = run,
};
