/* cmd_restore.c - `sbxrun restore --from-snapshot NAME ID`: reset a stopped
 * container's filesystem to one of its snapshots (fs.h).  A process restore
 * (CRIU) is not part of this build and is refused.  */
#include <config.h>

#include <errno.h>

#include "cli.h"
#include "core/core.h"
#include "fs/fs.h"

enum
{
  O_FROM_SNAPSHOT,
};

static const sbx_opt restore_opts[] = {
  [O_FROM_SNAPSHOT] = { "from-snapshot", 0, true, "NAME", "reset the filesystem to snapshot NAME" },
  { 0 },
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  (void)err;
  if (key == O_FROM_SNAPSHOT)
    *(const char **)data = arg;
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  const char *snap = NULL;
  int i = sbx_cli_parse (&sbx_cmd_restore, argc, argv, on_opt, &snap, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_restore, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  if (snap == NULL)
    return sbx_error_set (err, ENOTSUP,
                          "restore: only --from-snapshot NAME is supported by this build (a process "
                          "restore from a CRIU checkpoint is not)");
  return sbx_snapshot_restore (g->root, argv[i], snap, err);
}

const sbx_command sbx_cmd_restore = {
  .name = "restore",
  .args = "ID",
  .summary = "reset a stopped container's filesystem to a snapshot (--from-snapshot NAME)",
  .opts = restore_opts,
  .run = run,
};
