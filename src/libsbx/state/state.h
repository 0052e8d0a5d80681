/* state/state.h - the state directory <root>/<id>/ of one container.
 *
 *   status.json   sbx_status_file, written atomically (temp + rename)
 *   config.json   the config the container was created with
 *   start.sock    listening socket the created init waits on for `start`
 *   upper/ work/  the overlay's upper and work dirs (fs.h, overlay)
 *   rootfs/       a fork's private copy of a whole-rootfs snapshot
 *   snapshots/    filesystem snapshots (fs.h, snapshot)
 *   snapshot-criu/, snapshot-restore/
 *                 CRIU's work dir of a snapshot's dump, the checked copy
 *                 of a process image being restored (checkpoint/snapshot.c)
 *
 * Every mutation happens under an exclusive flock on the directory.  IDs are
 * validated before any path is built.  The live status (created, running,
 * paused, stopped) is derived from the saved pid and its start time, so a
 * recycled pid is never mistaken for the container.
 *
 * status.json is also the journal of create and delete: the directory is
 * made under a temporary name and appears as <id> (rename, no replace)
 * with its first status.json, which has phase "creating"; each resource
 * (cgroups, the init's pid) is recorded there before it is made, and the
 * phase is cleared once the container is created.  delete sets phase
 * "deleting" before it removes anything.  A runtime killed in between
 * leaves a container that `list` shows in that phase and `delete --force`
 * removes whole.  */
#ifndef SBX_STATE_STATE_H
#define SBX_STATE_STATE_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "core/core.h"
#include "ocispec.h"

typedef struct
{
  int root_fd;        /* the --root directory */
  int dir_fd;         /* <root>/<id> */
  char *id;
  char *dir;          /* path of dir_fd */
  sbx_status_file *st;
  char *tmp_name;     /* created, not yet saved: its temporary name in root */
  char *saved;        /* status.json as this process last wrote it */
  const oci_config *config; /* borrowed: what this process saved as config.json (run), or NULL */
} sbx_state;

/* Check an ID: 1..1024 of [A-Za-z0-9_+.-], not starting with ".".  */
int sbx_id_validate (const char *id, sbx_error **err);
/* The same rule for other names (snapshots); what names them in errors.  */
int sbx_name_validate (const char *what, const char *name, sbx_error **err);
/* Create the state directory of id, locked, under a temporary name; the
   first sbx_state_save makes it <root>/<id> (fails with "already
   exists").  Its status starts in phase "creating".  */
int sbx_state_create (const char *root, const char *id, sbx_state **out, sbx_error **err);
/* Open and lock an existing container: "container \"<id>\" does not exist".  */
int sbx_state_open (const char *root, const char *id, sbx_state **out, sbx_error **err);
int sbx_state_save (sbx_state *s, sbx_error **err);
/* Record the phase ("creating", "deleting"; NULL: done) and save.  */
int sbx_state_set_phase (sbx_state *s, const char *phase, sbx_error **err);
/* Remove the directory and free; ENOENT is fine.  */
int sbx_state_remove (sbx_state *s, sbx_error **err);
/* Let other commands at the container while s stays open (read-only from
   then on): exec into a paused container waits for a resume.  */
void sbx_state_unlock (sbx_state *s);
void sbx_state_free (sbx_state *s);
/* The container's saved config.  */
int sbx_state_config (sbx_state *s, oci_config **out, sbx_error **err);
static inline void
sbx_oci_config_freep (oci_config **c)
{
  oci_config_free (*c);
}
#define cleanup_oci_config __attribute__ ((cleanup (sbx_oci_config_freep)))
/* The same without parsing it again when this process saved it: *c is
   s->config then (borrowed), else what is parsed into *owned, which the
   caller frees.  */
int sbx_state_config_ref (sbx_state *s, const oci_config **c, oci_config **owned, sbx_error **err);

/* Process start time (field 22 of /proc/pid/stat); 0 if gone or a zombie.  */
unsigned long long sbx_pid_start_time (pid_t pid);
/* "created", "running", "paused", "stopped", or the phase of a create or
   delete that did not finish ("creating", "deleting").  */
const char *sbx_state_status (sbx_state *s);
bool sbx_state_alive (sbx_state *s);
/* The owner's user name: the saved one, else the state directory owner's
   (looked up once, when asked: create does not pay for NSS).  */
const char *sbx_state_owner (sbx_state *s);
/* The OCI state document for this container (runtime.md), pretty or not;
   "annotations" are c's (none without c).  */
char *sbx_state_json (sbx_state *s, const oci_config *c, const char *status, bool pretty);
/* The same with the given pid (the init's view for hooks, before the
   state on disk has it).  */
char *sbx_state_json_pid (sbx_state *s, const oci_config *c, const char *status, pid_t pid, bool pretty);
/* List IDs under root (malloc'd NULL-terminated).  */
int sbx_state_list (const char *root, char ***ids, sbx_error **err);
/* The same for an open root directory (s->root_fd).  */
int sbx_state_list_at (int root_fd, char ***ids, sbx_error **err);
/* An exclusive flock on the state root itself, for what several
   containers of the root decide together (a pod's egress table, see
   container.c's delete); never taken while waiting for a container's own
   lock.  Released by sbx_state_unlock_root or when s is freed.  */
int sbx_state_lock_root (sbx_state *s, sbx_error **err);
void sbx_state_unlock_root (sbx_state *s);
/* RFC 3339 UTC timestamp with nanoseconds.  */
char *sbx_now_rfc3339 (void);
/* "YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ" of t (UTC, without loading a time zone).  */
char *sbx_rfc3339_utc (const struct timespec *t);

#endif
