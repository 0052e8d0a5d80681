/* reset.c - restore --from-snapshot: a stopped container reset to one of
 * its filesystem snapshots and made created again (container.h).
 *
 * Under the container's lock: the snapshot is checked and its tree swapped
 * in (fs.h; a snapshot that does not check out changes nothing), then the
 * trees that outlive a run (CARRIED) and a copy of the saved config move to
 * <root>/.reset-<id>-XXXXXX, and the old container is deleted as `delete`
 * would (poststop hooks, cgroup, egress rules).  A create from the saved
 * config and bundle takes the trees back into its new state directory
 * before the init is spawned, so the container is `created` with the same
 * ID, as `create` leaves one; `start` runs it.  A create that fails hands
 * the trees back to the holding directory, which is then kept and named in
 * the error.  */
#include <config.h>
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "fs/fs.h"

/* What a run leaves that belongs to the container, not to the run: the
   overlay's upper dir, a fork's private rootfs, the snapshots, CRIU's
   default images.  */
static const char *const carried[] = { SBX_OVERLAY_UPPER, "rootfs", "snapshots", "checkpoint", NULL };

static int
carry (int from, int to, sbx_error **err)
{
  struct stat st;
  for (const char *const *t = carried; *t; t++)
    if (fstatat (from, *t, &st, AT_SYMLINK_NOFOLLOW) == 0 && renameat (from, *t, to, *t) < 0)
      return sbx_error_sys (err, "move `%s`", *t);
  return 0;
}

int
sbx_container_carry_in (const char *dir, sbx_state *s, char **rootfs, sbx_error **err)
{
  cleanup_close int from = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (from < 0)
    return sbx_error_sys (err, "open `%s`", dir);
  if (carry (from, s->dir_fd, err) < 0)
    return -1;
  if (fstatat (s->dir_fd, "rootfs", &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      free (*rootfs);
      *rootfs = xasprintf ("%s/rootfs", s->dir);
      free (s->st->rootfs);
      s->st->rootfs = xstrdup (*rootfs);
    }
  return 0;
}

void
sbx_container_carry_back (const char *dir, sbx_state *s)
{
  cleanup_close int to = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (to >= 0)
    carry (s->dir_fd, to, NULL);
}

/* The held trees and config, under the lock of s; on failure put back.  */
static int
hold (sbx_state *s, int holdfd, sbx_error **err)
{
  cleanup_free char *text = NULL;
  cleanup_close int cfd = openat (s->dir_fd, "config.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  size_t len;

  if (cfd < 0)
    return sbx_error_sys (err, "saved config");
  if (sbx_read_fd (cfd, 64 << 20, &text, &len, err) < 0
      || sbx_write_file_atomic (holdfd, "config.json", text, len, 0600, err) < 0)
    return sbx_error_wrap (err, "saved config");
  if (carry (s->dir_fd, holdfd, err) < 0)
    {
      carry (holdfd, s->dir_fd, NULL);
      return -1;
    }
  return 0;
}

int
sbx_container_reset (const char *root, const char *id, const char *name, const char *console_socket,
                     const char *pid_file, sbx_error **err)
{
  cleanup_free char *hold_name = NULL, *hold_path = NULL, *cfg = NULL, *bundle = NULL, *prefix = NULL;
  cleanup_close int holdfd = -1, rootfd = -1;
  sbx_create_opts co
      = { .root = root, .id = id, .console_socket = console_socket, .pid_file = pid_file, .detach = true };
  sbx_state *s = NULL;
  struct stat st;
  int r;

  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  {
    /* What create would refuse only after the delete is refused first.  */
    oci_config *c = NULL;
    bool have = sbx_state_config (s, &c, err) == 0, tty = have && c->process && c->process->terminal;
    oci_config_free (c);
    if (!have || (tty && console_socket == NULL))
      {
        sbx_state_free (s);
        if (!have)
          return sbx_error_wrap (err, "container \"%s\": reset", id);
        return sbx_error_set (err, EINVAL,
                              "restore --from-snapshot: container \"%s\" has process.terminal true: give "
                              "--console-socket to receive the terminal of its new init",
                              id);
      }
  }
  if (sbx_fs_snapshot_reset (s, name, NULL, err) < 0)
    {
      sbx_state_free (s);
      return -1;
    }
  bundle = xstrdup (s->st->bundle);
  co.bundle = bundle;
  co.systemd_cgroup = s->st->systemd_cgroup;
  co.overlay = fstatat (s->dir_fd, SBX_OVERLAY_UPPER, &st, AT_SYMLINK_NOFOLLOW) == 0;
  rootfd = dup (s->root_fd);
  prefix = xasprintf (".reset-%.200s-", id);
  r = rootfd < 0 ? sbx_error_sys (err, "dup") : sbx_fs_mkdtemp_at (rootfd, prefix, &hold_name, err);
  if (r == 0)
    {
      hold_path = xasprintf ("%s/%s", root, hold_name);
      holdfd = openat (rootfd, hold_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      r = holdfd < 0 ? sbx_error_sys (err, "open `%s`", hold_path) : hold (s, holdfd, err);
      if (r < 0)
        sbx_remove_tree_at (rootfd, hold_name);
    }
  if (r == 0 && sbx_container_delete_locked (s, false, err) < 0)
    {
      /* The state directory may be half gone: keep the trees held.  */
      sbx_state_free (s);
      return sbx_error_wrap (err, "container \"%s\": reset to snapshot \"%s\" (its trees are kept in `%s`)",
                             id, name, hold_path);
    }
  sbx_state_free (s);
  if (r < 0)
    return sbx_error_wrap (err, "container \"%s\": reset to snapshot \"%s\"", id, name);
  cfg = xasprintf ("%s/config.json", hold_path);
  co.config = cfg;
  co.carry = hold_path;
  if (sbx_container_create (&co, err) < 0)
    return sbx_error_wrap (err,
                           "container \"%s\": reset to snapshot \"%s\": create it again (it is deleted; "
                           "its snapshots and reset filesystem are kept in `%s`)",
                           id, name, hold_path);
  sbx_remove_tree_at (rootfd, hold_name);
  return 0;
}
