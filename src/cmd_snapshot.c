/* cmd_snapshot.c - `sbxrun snapshot create|list|delete|export|import`:
 * filesystem snapshots of a container (fs.h), with --with-process a CRIU
 * image of its processes too (checkpoint.h).  */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "cli.h"
#include "core/core.h"
#include "fs/fs.h"

enum
{
  O_WITH_PROCESS,
};

static const sbx_opt create_opts[] = {
  [O_WITH_PROCESS]
  = { "with-process", 0, false, NULL, "also checkpoint the processes with CRIU (leave-running)" },
  { 0 },
};
static const sbx_opt no_opts[] = { { 0 } };

static int
on_create_opt (void *data, int key, const char *arg, sbx_error **err)
{
  (void)arg;
  (void)err;
  if (key == O_WITH_PROCESS)
    *(bool *)data = true;
  return 0;
}

enum
{
  S_CREATE,
  S_LIST,
  S_DELETE,
  S_EXPORT,
  S_IMPORT,
  S_N
};

static const sbx_command subs[S_N] = {
  [S_CREATE] = { .name = "snapshot create",
                 .args = "ID [NAME]",
                 .opts = create_opts,
                 .summary = "snapshot the container's filesystem (a running one is frozen meanwhile)" },
  [S_LIST] = { .name = "snapshot list", .args = "ID", .opts = no_opts, .summary = "list the snapshots" },
  [S_DELETE]
  = { .name = "snapshot delete", .args = "ID NAME", .opts = no_opts, .summary = "delete a snapshot" },
  [S_EXPORT] = { .name = "snapshot export",
                 .args = "ID NAME",
                 .opts = no_opts,
                 .summary = "write the snapshot as a pax tar stream on stdout" },
  [S_IMPORT]
  = { .name = "snapshot import",
      .args = "ID NAME",
      .opts = no_opts,
      .summary
      = "read a stream made by export from stdin as snapshot NAME (files only: a process image is refused)" },
};
static const char *const sub_names[S_N] = { "create", "list", "delete", "export", "import" };

static void
usage (int fd)
{
  dprintf (fd, "Usage: sbxrun snapshot SUBCOMMAND [OPTIONS] ID [NAME]\n\n");
  for (int i = 0; i < S_N; i++)
    dprintf (fd, "  %-8s %-10s %s\n", sub_names[i], subs[i].args, subs[i].summary);
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  bool with_process = false;
  int k = -1, i;

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? 2 : 1);
      return argc < 2 ? sbx_error_set (err, EINVAL, "snapshot: a subcommand is required") : 0;
    }
  for (int s = 0; s < S_N; s++)
    if (strcmp (argv[1], sub_names[s]) == 0)
      k = s;
  if (k < 0)
    return sbx_error_set (
        err, EINVAL, "snapshot: unknown subcommand `%s` (create, list, delete, export, import)", argv[1]);
  i = sbx_cli_parse (&subs[k], argc - 1, argv + 1, k == S_CREATE ? on_create_opt : sbx_no_opts, &with_process,
                     err);
  if (i < 0)
    return i;
  i++; /* argv + 1 */
  if (sbx_cli_nargs (&subs[k], argc - i, 1, k == S_LIST ? 1 : 2, err) < 0)
    return -1;
  if (k != S_CREATE && k != S_LIST && argc - i != 2)
    return sbx_cli_nargs (&subs[k], argc - i, 2, 2, err);
  switch (k)
    {
    case S_CREATE:
      {
        cleanup_free char *name = NULL;
        const char *want = argc - i > 1 ? argv[i + 1] : NULL;
        if ((with_process ? sbx_snapshot_create_with_process (g->root, g->criu, g->rootless_on, argv[i], want, &name, err)
                          : sbx_fs_snapshot_create (g->root, argv[i], want, NULL, &name, err))
            < 0)
          return -1;
        printf ("%s\n", name);
        return 0;
      }
    case S_LIST:
      {
        cleanup_free char *text = NULL;
        if (sbx_fs_snapshot_list (g->root, argv[i], &text, err) < 0)
          return -1;
        fputs (text, stdout);
        return 0;
      }
    case S_DELETE:
      return sbx_fs_snapshot_delete (g->root, argv[i], argv[i + 1], err);
    case S_EXPORT:
      if (isatty (1))
        return sbx_error_set (err, EINVAL, "snapshot export: stdout is a terminal; redirect it to a file");
      return sbx_fs_snapshot_export (g->root, argv[i], argv[i + 1], 1, err);
    default:
      return sbx_fs_snapshot_import (g->root, argv[i], argv[i + 1], 0, err);
    }
}

const sbx_command sbx_cmd_snapshot = {
  .name = "snapshot",
  .args = "create|list|delete|export|import ID [NAME]",
  .summary = "filesystem snapshots of a container: create, list, delete, export, import",
  .run = run,
  .stop_at_args = true,
};
