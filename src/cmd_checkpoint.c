/* cmd_checkpoint.c - `sbxrun checkpoint [OPTIONS] ID`: runc's flags.  */
#include <config.h>

#include "checkpoint/checkpoint.h"
#include "cli.h"

enum
{
  O_IMAGE,
  O_WORK,
  O_PARENT,
  O_LEAVE,
  O_TCP,
  O_UNIX,
  O_SHELL,
  O_LOCKS,
  O_PRE,
  O_CGMODE,
  O_EMPTY,
  O_DEDUP,
};

static const sbx_opt opts[] = {
  [O_IMAGE] = { "image-path", 0, true, "DIR", "where the images go (default <root>/<id>/checkpoint)" },
  [O_WORK] = { "work-path", 0, true, "DIR", "CRIU's log and work files (default: the image path)" },
  [O_PARENT] = { "parent-path", 0, true, "DIR", "a previous pre-dump, relative to the image path" },
  [O_LEAVE] = { "leave-running", 0, false, NULL, "keep the container running after the dump" },
  [O_TCP] = { "tcp-established", 0, false, NULL, "dump established TCP connections" },
  [O_UNIX] = { "ext-unix-sk", 0, false, NULL, "allow unix sockets connected outside" },
  [O_SHELL] = { "shell-job", 0, false, NULL, "the container is a shell job (session outside)" },
  [O_LOCKS] = { "file-locks", 0, false, NULL, "dump file locks" },
  [O_PRE] = { "pre-dump", 0, false, NULL, "dump memory only, the container keeps running" },
  [O_CGMODE] = { "manage-cgroups-mode", 0, true, "MODE", "soft (default), full, strict or ignore" },
  [O_EMPTY] = { "empty-ns", 0, true, "network", "do not dump this namespace (restore gets an empty one)" },
  [O_DEDUP] = { "auto-dedup", 0, false, NULL, "punch the parent images' pages dumped again" },
  { 0 },
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  sbx_checkpoint_opts *o = data;
  switch (key)
    {
    case O_IMAGE:
      o->image_path = arg;
      break;
    case O_WORK:
      o->work_path = arg;
      break;
    case O_PARENT:
      o->parent_path = arg;
      break;
    case O_LEAVE:
      o->leave_running = true;
      break;
    case O_TCP:
      o->tcp_established = true;
      break;
    case O_UNIX:
      o->ext_unix_sk = true;
      break;
    case O_SHELL:
      o->shell_job = true;
      break;
    case O_LOCKS:
      o->file_locks = true;
      break;
    case O_PRE:
      o->pre_dump = true;
      break;
    case O_CGMODE:
      o->manage_cgroups_mode = arg;
      break;
    case O_EMPTY:
      o->empty_ns = arg;
      break;
    case O_DEDUP:
      o->auto_dedup = true;
      break;
    }
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  sbx_checkpoint_opts o = { .root = g->root, .criu = g->criu };
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
