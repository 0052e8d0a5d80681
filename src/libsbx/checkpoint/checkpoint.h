/* checkpoint/checkpoint.h - process checkpoint/restore with CRIU, with
 * runc's flags and semantics (what podman and containerd's runc shim pass).
 *
 * The engine is the criu binary (--criu PATH, default "criu" on PATH), run
 * on its command line: `criu dump|pre-dump|restore`.  The image directory
 * defaults to <root>/<id>/checkpoint/, so `checkpoint ID` then `restore ID`
 * need no paths.  Next to CRIU's images sbxrun writes sbx-criu.txt: what
 * restore must hand back to CRIU (external mounts and their host sources,
 * the joined network namespace, the terminal).  Restore reapplies the
 * cgroup limits and the egress allowlist from the saved config, and checks
 * that the restored tasks carry the config's seccomp and no_new_privs,
 * before they run again.
 *
 * Layout: criu.c runs CRIU and caches `criu check` per boot; checkpoint.c
 * the two operations; snapshot.c the filesystem snapshots with a process
 * image (fs.h's snapshots plus this dump, in one frozen moment).  */
#ifndef SBX_CHECKPOINT_CHECKPOINT_H
#define SBX_CHECKPOINT_CHECKPOINT_H

#include <stdbool.h>

#include "core/core.h"
#include "state/state.h"

/* What checkpoint and restore share, the same flags on both commands:
   where the images are, and CRIU's options for what the processes hold.  */
typedef struct
{
  const char *image_path;          /* NULL = <root>/<id>/checkpoint */
  const char *work_path;           /* NULL = the image directory */
  const char *manage_cgroups_mode; /* soft|full|strict|ignore; NULL = soft */
  bool tcp_established;
  bool ext_unix_sk;
  bool shell_job;
  bool file_locks;
  /* Dump: keep the memory in the frozen tasks and serve it from a page
     server at page_server (required) to `criu lazy-pages`; restore: take
     it from that daemon over userfaultfd as the processes touch it.  */
  bool lazy_pages;
} sbx_criu_flags;

typedef struct
{
  const char *root;
  const char *id;
  const char *criu;        /* binary; NULL = "criu" */
  sbx_criu_flags f;
  const char *parent_path; /* previous pre-dump, relative to f.image_path */
  const char *empty_ns;    /* "network" or NULL */
  const char *page_server; /* ADDRESS:PORT ([V6]:PORT) or NULL: where the
                              memory goes (a `criu page-server`), or with
                              f.lazy_pages where it is served from */
  int status_fd;           /* with f.lazy_pages: CRIU writes a 0 byte when
                              it serves; -1 = none */
  bool leave_running;
  bool pre_dump;
  bool auto_dedup;
  bool rootless; /* --rootless resolved: refused (CRIU needs privileges) */
} sbx_checkpoint_opts;

/* Dump a running container.  Without leave_running (or pre_dump) its
   processes are gone afterwards and it reads "stopped"; the state directory
   stays for restore and delete.  A failure leaves the container running.  */
int sbx_container_checkpoint (const sbx_checkpoint_opts *o, sbx_error **err);

typedef struct
{
  const char *root;
  const char *id;
  const char *criu;
  sbx_criu_flags f;
  const char *bundle; /* a container that does not exist: created from it */
  const char *pid_file;
  const char *console_socket;
  const char *lsm_profile; /* passed to CRIU: apparmor:NAME or selinux:LABEL */
  const char *empty_ns;    /* "network" or NULL: a new, unconfigured one */
  bool detach;
  bool auto_dedup;
  bool no_subreaper;
  bool systemd_cgroup;
  bool rootless;    /* --rootless resolved: refused (CRIU needs privileges) */
  sbx_state *state; /* open and locked stopped container root/id, or NULL
                       (opened here); consumed either way */
} sbx_restore_opts;

/* Bring a checkpointed container back "running" with the same ID: a
   stopped container of that ID is reused (its saved config and bundle), a
   missing one is created from the bundle first.  Detached it returns once
   the processes run; in the foreground it waits for the init and returns
   its exit code.  */
int sbx_container_restore (const sbx_restore_opts *o, sbx_error **err);

/* snapshot create --with-process: fs.h's snapshot of running (or paused)
   container id, and while it is frozen for the copy, a CRIU dump
   (leave-running) into the snapshot's process/, covered by its manifest.
   Where CRIU is unusable it fails before anything is made, the container
   untouched.  criu: the binary (NULL = "criu").  */
int sbx_snapshot_create_with_process (const char *root, const char *criu, bool rootless, const char *id, const char *name,
                                      char **name_out, sbx_error **err);
/* restore --from-snapshot NAME ID (o->state must be NULL): a snapshot
   without a process image is container.h's reset (the container is
   created); one with is checked (a missing or changed image file is
   refused naming it, nothing changed), the filesystem reset, then the
   processes restored from a checked copy of the image as
   sbx_container_restore does: the container is running.  */
int sbx_container_restore_snapshot (const sbx_restore_opts *o, const char *name, sbx_error **err);

/* Is CRIU usable here?  `criu check` is run once per boot and binary, the
   result cached in <root>/.criu-check.  Returns true/false; *why (malloc'd)
   is "criu VERSION" when usable, CRIU's own reason otherwise.  */
bool sbx_criu_usable (const char *criu, const char *root, char **why);

#endif
