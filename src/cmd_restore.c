/* cmd_restore.c - `sbxrun restore [OPTIONS] ID`: runc's flags.  Options
 * fill one sbx_restore_opts; each source of a restore is one library call. */
#include <config.h>

#include <string.h>

#include "checkpoint/checkpoint.h"
#include "cli.h"

enum
{
  O_BUNDLE = SBX_CRIU_O_N,
  O_DETACH,
  O_PID_FILE,
  O_CONSOLE,
  O_NO_SUBREAPER,
  O_NO_PIVOT,
  O_LSM,
  O_FROM_SNAPSHOT,
  O_EMPTY,
  O_DEDUP,
};

static const sbx_opt opts[] = {
  SBX_CRIU_OPTIONS[O_BUNDLE]
  = { "bundle", 'b', true, "DIR", "bundle of a container that does not exist (default .)" },
  [O_DETACH] = { "detach", 'd', false, NULL, "return once the container runs" },
  [O_PID_FILE] = { "pid-file", 0, true, "FILE", "write the restored init's pid" },
  [O_CONSOLE] = { "console-socket", 0, true, "SOCKET", "receives the new terminal's master" },
  [O_NO_SUBREAPER] = { "no-subreaper", 0, false, NULL, "do not adopt the restored processes" },
  [O_NO_PIVOT] = { "no-pivot", 0, false, NULL, "refused: CRIU sets up the restored root itself" },
  [O_LSM] = { "lsm-profile", 0, true, "TYPE:NAME", "apparmor:PROFILE or selinux:LABEL for the processes" },
  [O_FROM_SNAPSHOT]
  = { "from-snapshot", 0, true, "NAME",
      "reset a stopped container to snapshot NAME; it is created again (running, with a process image)" },
  [O_EMPTY] = { "empty-ns", 0, true, "network", "give the processes a new, unconfigured namespace" },
  [O_DEDUP] = { "auto-dedup", 0, false, NULL, "punch the restored pages out of the images" },
  { 0 },
};

typedef struct
{
  sbx_restore_opts o;
  const char *snapshot;
} restore_args;

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  sbx_restore_opts *o = &((restore_args *)data)->o;
  if (sbx_criu_flag (&o->f, key, arg))
    return 0;
  switch (key)
    {
    case O_BUNDLE:
      o->bundle = arg;
      break;
    case O_DETACH:
      o->detach = true;
      break;
    case O_PID_FILE:
      o->pid_file = arg;
      break;
    case O_CONSOLE:
      o->console_socket = arg;
      break;
    case O_NO_SUBREAPER:
      o->no_subreaper = true;
      break;
    case O_NO_PIVOT:
      return sbx_error_set (err, ENOTSUP,
                            "restore --no-pivot: not supported (CRIU pivots into the "
                            "restored root itself)");
    case O_LSM:
      o->lsm_profile = arg;
      break;
    case O_EMPTY:
      if (strcmp (arg, "network") != 0)
        return sbx_error_set (err, EINVAL, "restore --empty-ns `%s`: only `network` is supported", arg);
      o->empty_ns = arg;
      break;
    case O_DEDUP:
      o->auto_dedup = true;
      break;
    case O_FROM_SNAPSHOT:
      ((restore_args *)data)->snapshot = arg;
      break;
    }
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  restore_args a = {
    .o = { .root = g->root, .criu = g->criu, .systemd_cgroup = g->systemd_cgroup, .rootless = g->rootless_on }
  };
  int i = sbx_cli_parse (&sbx_cmd_restore, argc, argv, on_opt, &a, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_restore, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  a.o.id = argv[i];
  /* One library call per source: a filesystem snapshot, or CRIU's images.  */
  if (a.snapshot)
    return sbx_container_restore_snapshot (&a.o, a.snapshot, err);
  return sbx_container_restore (&a.o, err);
}

const sbx_command sbx_cmd_restore = {
  .name = "restore",
  .args = "ID",
  .summary = "restore a container from a CRIU checkpoint, or its filesystem from a snapshot",
  .opts = opts,
  .run = run,
};
