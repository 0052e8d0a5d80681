/* cmd_list.c - `sbxrun list [--format table|json] [-q]`.  */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"

enum { OPT_FORMAT, OPT_QUIET };
static const sbx_opt opts[] = {
  [OPT_FORMAT] = { "format", 'f', true, "FORMAT", "table (default) or json" },
  [OPT_QUIET] = { "quiet", 'q', false, NULL, "print only the IDs" },
  { 0 },
};

struct args
{
  const char *format;
  bool quiet;
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  struct args *a = data;
  if (key == OPT_QUIET)
    a->quiet = true;
  else if (strcmp (arg, "table") && strcmp (arg, "json"))
    return sbx_error_set (err, EINVAL, "unknown format `%s` (want table or json)", arg);
  else
    a->format = arg;
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  struct args a = { .format = "table" };
  int i = sbx_cli_parse (&sbx_cmd_list, argc, argv, on_opt, &a, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_list, argc - i, 0, 0, err) < 0)
    return i < 0 ? i : -1;
  return sbx_container_list (g->root, strcmp (a.format, "json") == 0, a.quiet, stdout, err);
}

const sbx_command sbx_cmd_list = {
  .name = "list",
  .summary = "list the containers under --root",
  .opts = opts,
  .run = run,
};
