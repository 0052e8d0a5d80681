/* cmd_ps.c - `sbxrun ps [--format table|json] ID [PS-ARGS...]`: the
   container's processes, as ps(1) shows them with PS-ARGS (default -ef).  */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"

static const sbx_opt opts[] = {
  { "format", 'f', true, "FORMAT", "table (default) or json (an array of host pids)" },
  { 0 },
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  if (strcmp (arg, "table") && strcmp (arg, "json"))
    return sbx_error_set (err, EINVAL, "unknown format `%s` (want table or json)", arg);
  *(const char **)data = arg;
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  const char *format = "table";
  int i = sbx_cli_parse (&sbx_cmd_ps, argc, argv, on_opt, &format, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_ps, argc - i, 1, -1, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_ps (g->root, argv[i], strcmp (format, "json") == 0, argv + i + 1, stdout, err);
}

const sbx_command sbx_cmd_ps = {
  .name = "ps",
  .args = "ID [PS-ARGS...]",
  .summary = "list the processes of a container",
  .opts = opts,
  .run = run,
  .stop_at_args = true, /* what follows the ID belongs to ps(1) */
};
