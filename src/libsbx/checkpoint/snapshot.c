/* snapshot.c - filesystem snapshots with a process image (checkpoint.h):
 * `snapshot create --with-process` and `restore --from-snapshot` of such a
 * snapshot.
 *
 * Create is fs.h's snapshot with a hook: once the container is frozen for
 * the copy, CRIU dumps it (leave-running, told the frozen cgroup, which it
 * leaves frozen) into the new snapshot's process/, then the tree is copied,
 * then the container is thawed: processes and files of the same moment.
 * CRIU's log goes to <state dir>/snapshot-criu/, outside the image (kept
 * when the dump fails, for the error names it).
 *
 * Restore copies the image, checked against the manifest, into
 * <state dir>/snapshot-restore/ before the filesystem is reset, so a bad
 * image changes nothing; CRIU restores from the copy (its logs there too),
 * which is removed once the processes run.  */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_internal.h"
#include "container/container.h"
#include "fs/fs.h"
#include "state/state.h"

#define DUMP_WORK "snapshot-criu"
#define RESTORE_IMAGES "snapshot-restore"
#define WITH_PROCESS "snapshot create --with-process"

struct dump
{
  const char *root, *criu;
  oci_config *c;
};

static int
dump_check (void *data, sbx_state *s, sbx_error **err)
{
  struct dump *d = data;
  if (sbx_criu_ready (d->criu, d->root, WITH_PROCESS, err) < 0)
    return -1;
  return sbx_state_config (s, &d->c, err);
}

static int
dump_frozen (void *data, sbx_state *s, const char *dir, sbx_error **err)
{
  struct dump *d = data;
  cleanup_free char *work = xasprintf ("%s/" DUMP_WORK, s->dir);
  sbx_checkpoint_opts o = {
    .root = d->root,
    .id = s->id,
    .criu = d->criu,
    .status_fd = -1,
    .leave_running = true,
  };
  o.f.image_path = dir;
  o.f.work_path = work;
  sbx_remove_tree_at (s->dir_fd, DUMP_WORK);
  if (sbx_checkpoint_locked (&o, s, d->c, err) < 0)
    return sbx_error_wrap (err, WITH_PROCESS);
  sbx_remove_tree_at (s->dir_fd, DUMP_WORK);
  return 0;
}

int
sbx_snapshot_create_with_process (const char *root, const char *criu, bool rootless, const char *id, const char *name,
                                  char **name_out, sbx_error **err)
{
  struct dump d = { .root = root, .criu = criu };
  if (rootless) /* as checkpoint: before anything is frozen or copied */
    return sbx_criu_refuse_rootless (WITH_PROCESS, err);
  sbx_snapshot_hook hook = { .check = dump_check, .frozen = dump_frozen, .data = &d };
  int r = sbx_fs_snapshot_create (root, id, name, &hook, name_out, err);
  oci_config_free (d.c);
  return r;
}

int
sbx_container_restore_snapshot (const sbx_restore_opts *o, const char *name, sbx_error **err)
{
  sbx_restore_opts ro = *o;
  cleanup_free char *img = NULL;
  sbx_state *s = NULL;
  const char *status;
  bool has = false;
  int r;

  if (sbx_state_open (o->root, o->id, &s, err) < 0)
    return -1;
  if (sbx_fs_snapshot_has_process (s, name, &has, err) < 0)
    {
      sbx_state_free (s);
      return -1;
    }
  if (!has)
    {
      sbx_state_free (s);
      return sbx_container_reset (o->root, o->id, name, o->console_socket, o->pid_file, err);
    }
  status = sbx_state_status (s);
  if (strcmp (status, "stopped") != 0)
    r = sbx_error_set (err, EBUSY,
                       "restore --from-snapshot: container \"%s\" is %s; it is reset to a snapshot only when "
                       "it is stopped",
                       o->id, status);
  else if (o->rootless)
    r = sbx_criu_refuse_rootless ("restore --from-snapshot (a snapshot with a process image)", err);
  else if ((r = sbx_criu_ready (o->criu, o->root, "restore --from-snapshot (a snapshot with a process image)",
                                err))
           == 0)
    r = sbx_fs_snapshot_reset (s, name, RESTORE_IMAGES, err);
  if (r < 0)
    {
      sbx_state_free (s);
      return -1;
    }
  img = xasprintf ("%s/" RESTORE_IMAGES, s->dir);
  ro.state = s;
  ro.bundle = NULL;
  ro.f.image_path = img;
  ro.f.work_path = NULL;
  r = sbx_container_restore (&ro, err);
  if (r < 0)
    return sbx_error_wrap (err,
                           "restore --from-snapshot \"%s\": the filesystem is reset to the snapshot, the "
                           "processes are not restored (CRIU's logs: `%s`)",
                           name, img);
  /* Running (detached), or run and deleted (foreground): the copy goes. */
  if (sbx_state_open (o->root, o->id, &s, NULL) == 0)
    {
      sbx_remove_tree_at (s->dir_fd, RESTORE_IMAGES);
      sbx_state_free (s);
    }
  return r;
}
