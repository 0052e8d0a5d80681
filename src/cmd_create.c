/* cmd_create.c - `sbxrun create`; its options are shared with `run`.  */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"

#define CREATE_OPTIONS                                                                             \
  [SBX_CO_BUNDLE] = { "bundle", 'b', true, "DIR", "bundle directory (default: .)" },               \
  [SBX_CO_CONFIG] = { "config", 0, true, "FILE", "config file (default: BUNDLE/config.json)" },    \
  [SBX_CO_PID_FILE] = { "pid-file", 0, true, "FILE", "write the container's pid to FILE" },        \
  [SBX_CO_CONSOLE_SOCKET]                                                                          \
      = { "console-socket", 0, true, "PATH", "unix socket that receives the pty master" },        \
  [SBX_CO_PRESERVE_FDS] = { "preserve-fds", 0, true, "N", "pass fds 3..3+N-1 to the container" }, \
  [SBX_CO_NO_PIVOT] = { "no-pivot", 0, false, NULL, "move the root instead of pivot_root" },      \
  [SBX_CO_NO_NEW_KEYRING]                                                                          \
      = { "no-new-keyring", 0, false, NULL, "keep the caller's session keyring" },                \
  [SBX_CO_OVERLAY]                                                                                 \
      = { "overlay", 0, false, NULL, "writable overlay over the rootfs, changes in the state dir" }, \
  [SBX_CO_FROM_SNAPSHOT] = { "from-snapshot", 0, true, "SRCID:NAME",                               \
                             "fork from snapshot NAME of container SRCID" }

static const sbx_opt create_options[] = { CREATE_OPTIONS, { 0 } };


const sbx_opt sbx_run_options[] = {
  CREATE_OPTIONS,
  [SBX_CO_DETACH] = { "detach", 'd', false, NULL, "do not wait for the container" },
  [SBX_CO_KEEP] = { "keep", 0, false, NULL, "keep the container's state after it exits" },
  { 0 },
};

int
sbx_create_on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  sbx_create_opts *o = data;
  long long n;
  switch (key)
    {
    case SBX_CO_BUNDLE: o->bundle = arg; break;
    case SBX_CO_CONFIG: o->config = arg; break;
    case SBX_CO_PID_FILE: o->pid_file = arg; break;
    case SBX_CO_CONSOLE_SOCKET: o->console_socket = arg; break;
    case SBX_CO_PRESERVE_FDS:
      if (sbx_parse_int64 (arg, &n) < 0 || n < 0 || n > 65536)
        return sbx_error_set (err, EINVAL, "invalid number `%s`", arg);
      o->preserve_fds = (int) n;
      break;
    case SBX_CO_NO_PIVOT: o->no_pivot = true; break;
    case SBX_CO_NO_NEW_KEYRING: o->no_new_keyring = true; break;
    case SBX_CO_OVERLAY: o->overlay = true; break;
    case SBX_CO_FROM_SNAPSHOT: o->from_snapshot = arg; break;
    case SBX_CO_DETACH: o->detach = true; break;
    case SBX_CO_KEEP: o->keep = true; break;
    }
  return 0;
}

/* Parse create/run flags and the ID.  */
int
sbx_create_parse (const sbx_command *cmd, sbx_globals *g, int argc, char **argv,
                  sbx_create_opts *o, sbx_error **err)
{
  int i = sbx_cli_parse (cmd, argc, argv, sbx_create_on_opt, o, err);
  if (i < 0)
    return i;
  if (sbx_cli_nargs (cmd, argc - i, 1, 1, err) < 0)
    return -1;
  o->root = g->root;
  o->id = argv[i];
  o->systemd_cgroup = g->systemd_cgroup;
  o->rootless = g->rootless_on;
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  sbx_create_opts o = { 0 };
  int r = sbx_create_parse (&sbx_cmd_create, g, argc, argv, &o, err);
  if (r < 0)
    return r;
  o.detach = true; /* create never waits */
  return sbx_container_create (&o, err);
}

const sbx_command sbx_cmd_create = {
  .name = "create",
  .args = "ID",
  .summary = "create a container from a bundle; its process waits for `start`",
  .opts = create_options,
  .run = run,
  .sealed = true,
};
