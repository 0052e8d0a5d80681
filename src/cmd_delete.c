/* cmd_delete.c - `sbxrun delete [--force] ID`.  */
#include <config.h>

#include "cli.h"
#include "container/container.h"

static const sbx_opt opts[] = {
  { "force", 'f', false, NULL, "kill the container if it still runs" },
  { 0 },
};

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  bool force = false;
  int i = sbx_cli_parse (&sbx_cmd_delete, argc, argv, sbx_cli_set_flag, &force, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_delete, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_delete (g->root, argv[i], force, err);
}

const sbx_command sbx_cmd_delete = {
  .name = "delete",
  .args = "ID",
  .summary = "delete a stopped container (runs poststop hooks, removes its cgroup and state)",
  .opts = opts,
  .run = run,
};
