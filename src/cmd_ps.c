/* cmd_ps.c - `sbxrun ps [--format table|json] ID`: the container's pids.  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
  *(const char **) data = arg;
  return 0;
}

static void
print_cmdline (pid_t pid)
{
  char path[64], buf[4096];
  ssize_t n;
  cleanup_close int fd = -1;
  snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  n = fd < 0 ? -1 : sbx_read_all (fd, buf, sizeof buf - 1);
  if (n <= 0)
    n = 0;
  for (ssize_t k = 0; k < n; k++)
    if (buf[k] == '\0')
      buf[k] = ' ';
  buf[n] = '\0';
  printf ("%-8d %s\n", pid, buf);
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  const char *format = "table";
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  int i = sbx_cli_parse (&sbx_cmd_ps, argc, argv, on_opt, &format, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_ps, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  if (sbx_container_pids (g->root, argv[i], &pids, &n, err) < 0)
    return -1;
  if (strcmp (format, "json") == 0)
    {
      printf ("[");
      for (size_t k = 0; k < n; k++)
        printf ("%s%d", k ? "," : "", pids[k]);
      printf ("]\n");
      return 0;
    }
  printf ("%-8s %s\n", "PID", "CMD");
  for (size_t k = 0; k < n; k++)
    print_cmdline (pids[k]);
  return 0;
}

const sbx_command sbx_cmd_ps = {
  .name = "ps",
  .args = "ID",
  .summary = "list the processes of a container",
  .opts = opts,
  .run = run,
};
