/* cmd_checkpoint.c - `sbxrun checkpoint [OPTIONS] ID`: runc's flags.  */
#include <config.h>

#include "checkpoint/checkpoint.h"
#include "cli.h"

enum
{
  O_PARENT = SBX_CRIU_O_N,
  O_LEAVE,
  O_PRE,
  O_EMPTY,
  O_DEDUP,
  O_PAGE_SERVER,
  O_STATUS_FD,
};

static const sbx_opt opts[] = {
  SBX_CRIU_OPTIONS
  [O_PARENT] = { "parent-path", 0, true, "DIR", "a previous pre-dump, relative to the image path" },
  [O_LEAVE] = { "leave-running", 0, false, NULL, "keep the container running after the dump" },
  [O_PRE] = { "pre-dump", 0, false, NULL, "dump memory only, the container keeps running" },
  [O_EMPTY] = { "empty-ns", 0, true, "network", "do not dump this namespace (restore gets an empty one)" },
  [O_DEDUP] = { "auto-dedup", 0, false, NULL, "punch the parent images' pages dumped again" },
  [O_PAGE_SERVER] = { "page-server", 0, true, "ADDRESS:PORT",
                      "send the memory to this criu page-server (with --lazy-pages: serve it there)" },
  [O_STATUS_FD] = { "status-fd", 0, true, "FD", "with --lazy-pages: CRIU writes a 0 byte here when ready" },
  { 0 },
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  sbx_checkpoint_opts *o = data;
  long long fd;
  if (sbx_criu_flag (&o->f, key, arg))
    return 0;
  switch (key)
    {
    case O_PARENT:
      o->parent_path = arg;
      break;
    case O_LEAVE:
      o->leave_running = true;
      break;
    case O_PRE:
      o->pre_dump = true;
      break;
    case O_EMPTY:
      o->empty_ns = arg;
      break;
    case O_DEDUP:
      o->auto_dedup = true;
      break;
    case O_PAGE_SERVER:
      o->page_server = arg;
      break;
    case O_STATUS_FD:
      if (sbx_parse_int64 (arg, &fd) < 0 || fd < 0 || fd > 1 << 20)
        return sbx_error_set (err, EINVAL, "--status-fd `%s`: not a file descriptor number", arg);
      o->status_fd = (int)fd;
      break;
    }
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  sbx_checkpoint_opts o = { .root = g->root, .criu = g->criu, .status_fd = -1, .rootless = g->rootless_on };
  int i = sbx_cli_parse (&sbx_cmd_checkpoint, argc, argv, on_opt, &o, err);
  if (i < 0 || sbx_cli_nargs (&sbx_cmd_checkpoint, argc - i, 1, 1, err) < 0)
    return i < 0 ? i : -1;
  o.id = argv[i];
  return sbx_container_checkpoint (&o, err);
}

const sbx_command sbx_cmd_checkpoint = {
  .name = "checkpoint",
  .args = "ID",
  .summary = "checkpoint a running container with CRIU",
  .opts = opts,
  .run = run,
};
