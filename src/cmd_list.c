/* cmd_list.c - `sbxrun list [--format table|json] [-q]`.  */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"
#include "state/state.h"

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
  cleanup_strv char **ids = NULL;
  bool json = false, first = true;
  int i = sbx_cli_parse (&sbx_cmd_list, argc, argv, on_opt, &a, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_list, argc - i, 0, 0, err) < 0)
    return i < 0 ? i : -1;
  if (sbx_state_list (g->root, &ids, err) < 0)
    return -1;
  json = strcmp (a.format, "json") == 0;
  if (json && !a.quiet)
    printf ("[");
  else if (!a.quiet)
    printf ("%-24s %-8s %-8s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  for (char **id = ids; *id; id++)
    {
      cleanup_free char *state = NULL;
      sbx_state *s = NULL;
      const char *status;
      if (a.quiet)
        {
          printf ("%s\n", *id);
          continue;
        }
      if (sbx_state_open (g->root, *id, &s, NULL) < 0)
        continue; /* deleted meanwhile */
      status = sbx_state_status (s);
      if (json)
        {
          oci_config *c = NULL;
          sbx_state_config (s, &c, NULL); /* for the annotations */
          state = sbx_state_json (s, c, status, false);
          oci_config_free (c);
          printf ("%s%s", first ? "" : ",", state);
        }
      else
        printf ("%-24s %-8d %-8s %-40s %-32s %s\n", *id,
                strcmp (status, "stopped") ? s->st->pid : 0, status, s->st->bundle,
                s->st->created ? s->st->created : "", s->st->owner ? s->st->owner : "");
      first = false;
      sbx_state_free (s);
    }
  if (json && !a.quiet)
    printf ("]\n");
  return 0;
}

const sbx_command sbx_cmd_list = {
  .name = "list",
  .summary = "list the containers under --root",
  .opts = opts,
  .run = run,
};
