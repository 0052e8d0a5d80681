/* cmd_criu_opts.c - the flags `checkpoint` and `restore` share (runc's):
 * one table fragment (SBX_CRIU_OPTIONS in cli.h) and one parser.  */
#include <config.h>
#include "cli.h"

int
sbx_criu_flag (sbx_criu_flags *f, int key, const char *arg)
{
  switch (key)
    {
    case SBX_CRIU_O_IMAGE:
      f->image_path = arg;
      return 1;
    case SBX_CRIU_O_WORK:
      f->work_path = arg;
      return 1;
    case SBX_CRIU_O_TCP:
      f->tcp_established = true;
      return 1;
    case SBX_CRIU_O_UNIX:
      f->ext_unix_sk = true;
      return 1;
    case SBX_CRIU_O_SHELL:
      f->shell_job = true;
      return 1;
    case SBX_CRIU_O_LOCKS:
      f->file_locks = true;
      return 1;
    case SBX_CRIU_O_CGMODE:
      f->manage_cgroups_mode = arg;
      return 1;
    case SBX_CRIU_O_LAZY:
      f->lazy_pages = true;
      return 1;
    }
  return 0;
}
