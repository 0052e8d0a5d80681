/* cmd_state.c - `sbxrun state ID`: the OCI state JSON.  */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "container/container.h"

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  char *json = NULL;
  int i = sbx_cli_parse (&sbx_cmd_state, argc, argv, sbx_no_opts, NULL, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_state, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  if (sbx_container_state (g->root, argv[i], &json, err) < 0)
    return -1;
  printf ("%s\n", json);
  free (json);
  return 0;
}

const sbx_command sbx_cmd_state = {
  .name = "state",
  .args = "ID",
  .summary = "print the state of a container (JSON)",
  .run = run,
};
