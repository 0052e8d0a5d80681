/* cmd_kill.c - `sbxrun kill [--all] ID [SIGNAL]` (default SIGTERM).  */
#include <config.h>

#include <signal.h>

#include "cli.h"
#include "container/container.h"

static const sbx_opt opts[] = {
  { "all", 'a', false, NULL, "signal every process in the container's cgroup" },
  { 0 },
};

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  bool all = false;
  int signo = SIGTERM;
  int i = sbx_cli_parse (&sbx_cmd_kill, argc, argv, sbx_cli_set_flag, &all, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_kill, argc - i, 1, 2, err) < 0)
    return i < 0 ? i : -1;
  if (argc - i == 2 && (signo = sbx_parse_signal (argv[i + 1], err)) < 0)
    return -1;
  return sbx_container_kill (g->root, argv[i], signo, all, err);
}

const sbx_command sbx_cmd_kill = {
  .name = "kill",
  .args = "ID [SIGNAL]",
  .summary = "send a signal (name or number, default TERM) to the container",
  .opts = opts,
  .run = run,
};
