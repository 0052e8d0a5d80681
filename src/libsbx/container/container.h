/* container/container.h - the library entry points the CLI calls, one per subcommand:
 * the OCI lifecycle, operations on a running container, spec, features.
 *
 * Public header of src/libsbx/container/; one section per source file.  */
#ifndef SBX_CONTAINER_CONTAINER_H
#define SBX_CONTAINER_CONTAINER_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <stdint.h>

#include "cgroup/cgroup.h"
#include "core/core.h"
#include "egress/egress.h"
#include "ocispec.h"
#include "state/state.h"

/* container.h - the OCI lifecycle (runtime.md): create, start, run, state,
 * kill, delete, exec, ps, list.  Each operation takes the state root and the
 * container ID; the CLI only parses flags and calls one of these.  */

typedef struct
{
  const char *root;
  const char *id;
  const char *bundle;         /* default "." */
  const char *config;         /* default <bundle>/config.json */
  const char *pid_file;
  const char *console_socket;
  int preserve_fds;
  bool no_pivot;
  bool no_new_keyring;
  bool systemd_cgroup;
  bool rootless;              /* --rootless resolved: no host privileges */
  bool detach;                /* run only */
  bool keep;                  /* run only: keep the state after exit */
  bool overlay;               /* --overlay (or the annotation, fs.h) */
  const char *from_snapshot;  /* --from-snapshot SRCID:NAME: fork (fs.h) */
  const char *carry;          /* reset only: trees to move into the state dir */
} sbx_create_opts;

int sbx_container_create (const sbx_create_opts *o, sbx_error **err);
/* create + start; in the foreground returns the exit code (128+N for a
   signal) after forwarding signals and deleting the container.  */
int sbx_container_run (const sbx_create_opts *o, sbx_error **err);
/* create's checks, the state directory (saved config, status) and the
   cgroup with its limits, but no process: for restore of a container that
   does not exist yet.  *out is the locked state; on failure nothing is
   left behind.  */
int sbx_container_prepare (const sbx_create_opts *o, sbx_state **out, sbx_error **err);
/* restore --from-snapshot NAME ID: reset stopped container ID to its
   snapshot NAME (fs.h) and make it created again, as `create` leaves it:
   the same ID, bundle and saved config, a new init waiting for `start`
   (new cgroup, namespaces, egress rules); its snapshots, CRIU images and
   reset filesystem carried over.  A snapshot that does not check out
   changes nothing.  console_socket and pid_file are create's.  */
int sbx_container_reset (const char *root, const char *id, const char *name, const char *console_socket,
                         const char *pid_file, sbx_error **err);
int sbx_container_start (const char *root, const char *id, sbx_error **err);
/* The OCI state JSON (malloc'd).  */
int sbx_container_state (const char *root, const char *id, char **json, sbx_error **err);
int sbx_container_kill (const char *root, const char *id, int signo, bool all, sbx_error **err);
int sbx_container_delete (const char *root, const char *id, bool force, sbx_error **err);
int sbx_container_pids (const char *root, const char *id, pid_t **pids, size_t *n,
                        sbx_error **err);
/* `ps`: the pids as a JSON array, or the output of ps(1) run with ps_args
   (NULL or empty: -ef), its header and the lines whose PID column is one
   of the container's processes.  */
int sbx_container_ps (const char *root, const char *id, bool json, char **ps_args, FILE *out,
                      sbx_error **err);
/* `list`: every container under root as a table, a JSON array of OCI
   states ("annotations" only when there are some; `null` for no
   containers, as runc), or (quiet) only the IDs.  */
int sbx_container_list (const char *root, bool json, bool quiet, FILE *out, sbx_error **err);

/* What `exec` runs when no oci_process is given: a --process file as is,
   else the container's own process with these laid over it.  */
typedef struct
{
  const char *process_file; /* --process: the whole process.json */
  char *const *args;        /* COMMAND [ARG...] */
  size_t nargs;
  bool tty, no_new_privs;
  const char *cwd;
  const char *user;  /* numeric UID[:GID] */
  char *const *env;  /* KEY=VALUE, replacing the base's KEY */
  size_t nenv;
  char *const *caps; /* added to every capability set */
  size_t ncaps;
  const uint32_t *gids; /* replace additionalGids */
  size_t ngids;
} sbx_exec_flags;

typedef struct
{
  const char *root;
  const char *id;
  oci_process *process;       /* complete process; NULL: built from flags */
  const sbx_exec_flags *flags;
  const char *console_socket;
  const char *pid_file;
  int preserve_fds;
  bool detach;
  bool ignore_paused;   /* exec into a paused container: the process
                           runs once it is resumed */
  char *const *cgroups; /* --cgroup [CONTROLLER[,...]:]PATH: sub-cgroups */
  size_t ncgroups;
} sbx_exec_opts;

/* The container's own process (runc semantics), the base of flags.  */
int sbx_container_exec_base (const char *root, const char *id, oci_process **out, sbx_error **err);
/* The process of sbx_exec_flags (malloc'd; ocispec_free it).  */
int sbx_container_exec_process (const char *root, const char *id, const sbx_exec_flags *f, oci_process **out,
                                sbx_error **err);
/* Returns the exit code in the foreground, 0 detached.  */
int sbx_container_exec (const sbx_exec_opts *o, sbx_error **err);

/* Shared with restore (checkpoint/): a pidfd, the --pid-file, and the
   foreground of run: forward signals to pid, proxy the pty (if >= 0;
   closed when the proxy ends, so the container sees a hangup), reap; the
   exit code.  */
int sbx_pidfd_open (pid_t pid);
int sbx_write_pid_file (const char *path, pid_t pid, sbx_error **err);
int sbx_supervise (pid_t pid, int pidfd, int pty, sbx_error **err);

/* Parse a signal name ("TERM", "SIGTERM", "15").  */
int sbx_parse_signal (const char *s, sbx_error **err);

/* Operations on a running container's cgroup: pause, resume (container.c),
 * update (update.c), events (events.c).  Each takes the state root and the
 * container ID; the cgroup comes from the description saved at create
 * (sbx_cgroup_load).  */

/* Freeze every process of a running container (state "paused").  */
int sbx_container_pause (const char *root, const char *id, sbx_error **err);
/* Thaw a paused container; an error if it is not paused.  */
int sbx_container_resume (const char *root, const char *id, sbx_error **err);

/* Merge r into the container's linux.resources (what r sets replaces the
   saved values; devices, when given, replace the whole list), write the
   sections that changed to the cgroup, and save the merged config.json in
   the state directory.  The container must not be stopped.  */
int sbx_container_update (const char *root, const char *id, const oci_resources *r, sbx_error **err);
/* `update` from the command line: a linux.resources JSON file ("-" =
   stdin) and single-field flags as given (NULL = not given), which win over
   the file; errors name the flag (--memory, ...).  */
typedef enum
{
  SBX_UPDATE_MEMORY,
  SBX_UPDATE_MEMORY_SWAP,
  SBX_UPDATE_MEMORY_RESERVATION,
  SBX_UPDATE_CPU_SHARES,
  SBX_UPDATE_CPU_QUOTA,
  SBX_UPDATE_CPU_PERIOD,
  SBX_UPDATE_CPU_RT_PERIOD,
  SBX_UPDATE_CPU_RT_RUNTIME,
  SBX_UPDATE_CPUSET_CPUS,
  SBX_UPDATE_CPUSET_MEMS,
  SBX_UPDATE_PIDS_LIMIT,
  SBX_UPDATE_BLKIO_WEIGHT,
  SBX_UPDATE_N
} sbx_update_field;
typedef struct
{
  const char *resources_file;
  const char *flags[SBX_UPDATE_N];
} sbx_update_opts;
int sbx_container_update_from (const char *root, const char *id, const sbx_update_opts *o, sbx_error **err);

typedef struct
{
  bool stats_only;       /* print one stats event and return */
  long long interval_ms; /* between stats events; <= 0: none, only OOM events */
  int out_fd;            /* where the JSON lines go */
} sbx_events_opts;

/* runc-compatible event lines until the container stops:
   {"type":"stats","id":ID,"data":{cpu, memory, pids, blkio, hugetlb...}}
   every interval, {"type":"oom","id":ID} on each OOM.  */
int sbx_container_events (const char *root, const char *id, const sbx_events_opts *o, sbx_error **err);

/* A memory size as runc's update takes it: "1024", "512k", "1.5g", "64MiB",
   "2 GB" (binary units: k = 1024), or "-1" for unlimited.  */
int sbx_parse_size (const char *s, int64_t *out, sbx_error **err);
/* A Go duration ("5s", "250ms", "1m30s", "1.5h"); a bare number is seconds.  */
int sbx_parse_duration_ms (const char *s, long long *ms, sbx_error **err);

/* spec_default.h - the configuration `sbxrun spec` writes.  */

/* A fresh default config; rootless adapts it for an unprivileged user
   (user namespace mapping the caller, no network namespace, /sys bound).  */
int sbx_spec_default (bool rootless, oci_config **out, sbx_error **err);

/* ocifeatures.h - the runtime-spec "features" document (features.md) and the
 * compiled-in feature tags shown by --version.  Every list is taken from the
 * module that implements it, so it cannot claim more than works.  */

#ifdef HAVE_SYSTEMD
#define SBX_FEATURE_TAGS "+SECCOMP +CAP +NFTABLES +YAJL +SYSTEMD"
#else
#define SBX_FEATURE_TAGS "+SECCOMP +CAP +NFTABLES +YAJL"
#endif

int sbx_features (oci_features **out, sbx_error **err);

/* The egress policy of the pod container `id` (config c) belongs to: its
   sandbox, named by the CRI / CRI-O sandbox ID annotation, else the
   container of `root` whose policy record is for the network namespace c
   joins.  NULL in *out when there is none.  */
int sbx_container_find_pod_policy (const char *root, const char *id, const oci_config *c,
                                   sbx_net_policy **out, sbx_error **err);
/* create and restore: the egress policy np of container s in netns (a
   podman member's re-scopes its infra's first; a pod member's is refused
   when its sandbox went meanwhile).  */
int sbx_container_net_install (const char *root, sbx_state *s, const oci_config *c, sbx_net_policy *np,
                               int netns, sbx_cgroup *cg, bool rootless, sbx_error **err);

#endif
