/* process/process.h - the pieces every container process (init or exec) is made
 * of: the parent/child sync protocol, ptys and fd passing, hooks, namespaces,
 * and the last steps before execve.
 *
 * Public header of src/libsbx/process/; one section per source file.  */
#ifndef SBX_PROCESS_PROCESS_H
#define SBX_PROCESS_PROCESS_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "core/core.h"
#include "ocispec.h"
#include "security/security.h"

/* sync.h - the one parent/child protocol of container creation.
 *
 * Messages travel over a SOCK_SEQPACKET socketpair, one step per message, in
 * this order (P = runtime, C = container init):
 *
 *   P->C  SYNC_GO             ids mapped, cgroup joined: start setting up
 *   P->C  SYNC_CGROUP         (late cgroup, cgroup.h) the v1 cgroups are
 *                             made: the files to move in through ride along
 *   C->P  SYNC_RUNTIME_HOOKS  namespaces and mounts done, before pivot_root:
 *                             run prestart + createRuntime hooks now
 *   P->C  SYNC_HOOKS_DONE
 *   C->P  SYNC_CHILD_PID      (pid namespace joined by path) the setup
 *                             process forked the init into it and exits
 *   P->C  SYNC_GO             the init is in its cgroup: go on
 *   C->P  SYNC_PTY            (terminal only) the pty master rides along
 *   C->P  SYNC_CREATED        all set up; blocked waiting for `start`
 *   C->P  SYNC_ERROR          at any point: text + errno of the failure
 *
 * The same framing carries exec's steps (SYNC_CHILD_PID from the joiner,
 * then SYNC_GO, SYNC_PTY, SYNC_ERROR and SYNC_EXEC_READY with the exec
 * process).  Errors are sbx_errors rebuilt on the other side, so the
 * user sees exactly what failed inside the container.  */

typedef enum
{
  SYNC_GO = 1,
  SYNC_RUNTIME_HOOKS,
  SYNC_HOOKS_DONE,
  SYNC_PTY,
  SYNC_CREATED,
  SYNC_EXEC_READY,
  SYNC_ERROR,
  SYNC_CHILD_PID, /* text: host pid of the process that carries on (exec, joined pid ns) */
  SYNC_CGROUP,    /* fds: the staging files (sbx_cgroup_stage_fds); text: which ones */
} sbx_sync_step;

/* errno of the error reported when the peer hung up.  */
#define SBX_SYNC_HUNG_UP_ERRNO EPIPE
/* What the send and expect functions return then (any other failure: -1).
   Below -4095 (MAX_ERRNO), so it can never be read as a -errno (-2 was
   -ENOENT).  */
#define SBX_SYNC_HUNG_UP (-4096)

const char *sbx_process_sync_step_name (sbx_sync_step s);
/* Send a step; fd (>= 0) is attached with SCM_RIGHTS; text (may be NULL)
   rides along (the state JSON for hooks).  */
int sbx_process_sync_send (int sock, sbx_sync_step step, int fd, sbx_error **err);
int sbx_process_sync_send_text (int sock, sbx_sync_step step, int fd, const char *text, sbx_error **err);
/* The same with write(2), which any seccomp profile allows (sendmsg is
   not a given); no fd, no text, and SIGPIPE if the peer is gone.  */
int sbx_process_sync_send_plain (int sock, sbx_sync_step step, sbx_error **err);
/* Send an error to the peer (best effort).  */
void sbx_process_sync_send_error (int sock, const sbx_error *e);
/* Wait for `want`.  A SYNC_ERROR becomes *err; EOF is "container init
   exited during setup" and returns SBX_SYNC_HUNG_UP.  If fd_out is given it
   receives an attached fd.  */
int sbx_process_sync_expect (int sock, sbx_sync_step want, int *fd_out, sbx_error **err);
/* Same, returning the text payload (malloc'd, "" if none) in *text.  */
int sbx_process_sync_expect_text (int sock, sbx_sync_step want, int *fd_out, char **text, sbx_error **err);
/* With up to SBX_MAX_SEND_FDS descriptors attached: received into fds
   (*nfds of them; more than max is an error, all closed).  */
int sbx_process_sync_send_fds (int sock, sbx_sync_step step, const int *fds, size_t nfds, const char *text,
                               sbx_error **err);
int sbx_process_sync_expect_fds (int sock, sbx_sync_step want, int *fds, size_t max, size_t *nfds,
                                 char **text, sbx_error **err);

/* terminal.h - pseudo-terminals for process.terminal: allocate the pty in
 * the container's devpts, make the slave the controlling terminal and stdio,
 * and pass the master to --console-socket with SCM_RIGHTS.  */

/* Open a new pty from /dev/ptmx (of the current root); returns the master
   fd, and the slave's path in *slave (malloc'd).  */
int sbx_process_pty_open (char **slave, sbx_error **err);
/* The slave of master, opened from the master itself (TIOCGPTPEER), so no
   path in the container's /dev can stand in for it; slave (the name) is
   only used on kernels without the ioctl.  Returns the fd.  */
int sbx_process_pty_open_peer (int master, const char *slave, sbx_error **err);
/* In the process that will exec, with the slave open (fd is consumed;
   slave names it in messages): setsid, TIOCSCTTY, dup onto 0/1/2, apply
   consoleSize (may be NULL).  */
int sbx_process_pty_setup_slave_fd (int fd, const char *slave, const oci_console_size *size, sbx_error **err);
/* The terminal on fd 0 (set up as above) given to the process's user,
   process.user.uid (p may be NULL: root), before it drops privileges; its
   group stays the one devpts gave it (the mount's gid= option).  A uid the
   user namespace does not map leaves it as it is.  */
int sbx_process_pty_give (const oci_process *p, sbx_error **err);
/* Without a terminal: the anonymous pipes on fds 0..2 (ours, which the
   process inherits) given to process.user.uid as uid_map (the text of the
   container's user namespace's uid_map, as recorded at create; NULL
   without a user namespace: the uid is the host's) maps it, so that a
   non-root user can reopen /proc/self/fd/0..2 (runc gives stdio to the
   user too).  Files, named FIFOs and terminals are left as they are; an
   unmapped uid or a chown we may not make (unprivileged) is skipped.  */
int sbx_process_stdio_give (const char *uid_map, const oci_process *p, sbx_error **err);
/* Send one fd with SCM_RIGHTS (with a short text payload, the pty name,
   as runc sends).  */
int sbx_process_send_fd (int sock, int fd, const char *name, sbx_error **err);
/* Copy between our stdio and the master until the master hangs up (used by
   `run`/`exec` in the foreground with a terminal but no console socket).
   Puts our terminal (if stdin is one) in raw mode and restores it.  With
   pidfd >= 0, the signals read from fwd_sigfd (a signalfd) are sent on to
   that process meanwhile; SIGWINCH is ours, for the window size.  */
int sbx_process_pty_proxy (int master, int fwd_sigfd, int pidfd, sbx_error **err);

/* hooks.h - OCI hooks (config.md "POSIX-platform Hooks"): run one hook list
 * with the container state JSON on stdin, its own args/env, and a timeout.  */

/* Run hooks[0..n) in order; stops at the first failure (non-zero exit,
   signal, timeout -> killed with SIGKILL) with an error naming the hook
   kind ("createRuntime"), its index (from 1) and its path, e.g.
   `createRuntime hook #1 (/usr/bin/x): timed out after 2s`.  state_json is
   written to each hook's stdin.  The hook's stdout/stderr go to ours; no
   other fd of ours reaches it, and its environment is exactly hook->env.  */
int sbx_process_hooks_run (const char *kind, oci_hook *const *hooks, size_t n, const char *state_json,
                           sbx_error **err);

/* The hooks' stdout/stderr from then on: the files named by c's
   run.oci.hooks.stdout / run.oci.hooks.stderr (opened for append, created
   0600, at each hook), or ours (c NULL, or no annotation).  */
void sbx_process_hooks_set_output (const oci_config *c);

/* For poststop, and poststart up to runtime-spec 1.2: a failing hook is
   a warning and the remaining hooks still run (runtime.md, lifecycle
   steps 9 and 13; from 1.3 on a failing poststart hook is an error).  */
void sbx_process_hooks_run_warn (const char *kind, oci_hook *const *hooks, size_t n, const char *state_json);

/* namespaces.h - linux.namespaces: the table of namespace types, the flags to
 * create, the ones to join by path, uid/gid maps and time offsets.  */

/* glibc before 2.39 lacks it (kernel 5.6).  */
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define SBX_NS_MAX 8

typedef struct
{
  int new_flags;            /* CLONE_NEW* to create */
  int join_flags;           /* CLONE_NEW* joined by path */
  int join_fds[SBX_NS_MAX]; /* opened paths, in join order (user first) */
  int join_types[SBX_NS_MAX];
  size_t njoin;
} sbx_ns_plan;

/* Validate linux.namespaces and open the paths to join (O_CLOEXEC).  Errors
   name the entry: linux.namespaces[2].type: unknown namespace `foo`.  */
int sbx_process_ns_plan_make (const oci_linux *l, sbx_ns_plan *plan, sbx_error **err);
void sbx_process_ns_plan_close (sbx_ns_plan *plan);
/* In the child: setns every joined namespace except pid and time (which
   the parent joins for its children), user namespace first.  */
int sbx_process_ns_join (const sbx_ns_plan *plan, bool skip_pid, sbx_error **err);
/* The flag for a type name ("network" -> CLONE_NEWNET), 0 if unknown.  */
int sbx_process_ns_flag (const char *type);
/* The /proc/<pid>/ns/ file name for a flag ("net").  */
const char *sbx_process_ns_proc_name (int flag);
/* NULL-terminated list of the type names we support (for features).  */
extern const char *const sbx_ns_names[];

/* Write /proc/<pid>/{uid,gid}_map from linux.{uid,gid}Mappings.  */
int sbx_process_ns_write_id_maps (pid_t pid, const oci_linux *l, bool rootless, sbx_error **err);
/* Write /proc/self/timens_offsets (after unshare(CLONE_NEWTIME)).  */
int sbx_process_ns_write_time_offsets (const oci_linux *l, sbx_error **err);

/* process.h - the last steps of a container process (init or exec) before
 * execve: cwd, rlimits, oom score, umask, user and groups, capabilities,
 * no_new_privs, seccomp, fd hygiene, PATH lookup inside the container.  */

typedef struct
{
  const oci_process *p;
  const sbx_seccomp *seccomp; /* may be NULL */
  int preserve_fds;           /* fds 3..3+n-1 survive into the container */
  int notify_sock;            /* where a seccomp notify fd is sent, or -1 */
  sbx_cgroup *cg;             /* the init's: re-entered before the user switch */
  int procfd;                 /* the container's procfs (procfs.h), or -1: open /proc */
  const oci_linux *linux;     /* the container's: personality, memoryPolicy (may be NULL) */
  bool keep_groups;           /* run.oci.keep_original_groups: the caller's groups stay */
  const sbx_landlock *landlock; /* org.sbxrun.landlock.* rules, or NULL */
  bool packet_guard;            /* under an egress policy: sbx_packet_guard_load */
} sbx_exec_ctx;

struct clone_args;
/* clone3 with `ca`, straight into cg's v2 directory when the kernel can
   (CLONE_INTO_CGROUP, also the unified hierarchy of a hybrid host); the
   rest the child does itself when cg's staging is prepared
   (sbx_cgroup_stage_arrive, with ca->flags telling whether it was born in
   v2), else the parent moves it there by pid; cg may be NULL.  Returns 0 in the child; in the parent its pid,
   or -1 with the child killed and reaped and its pidfd (CLONE_PIDFD) closed.  */
pid_t sbx_process_spawn_in_cgroup (struct clone_args *ca, sbx_cgroup *cg, const char *what, sbx_error **err);

/* Close every fd >= 3 except the n in keep and the ones the caller
   passed in [3, 3 + preserve_fds): for a process about to become visible
   to the container, which must hold nothing of the host (state dirs,
   cgroup dirs, the log file...).  */
/* Fork a sibling (CLONE_PARENT: our parent's child, which it can wait
   for and supervise).  clone3 first; clone when a seccomp filter loaded
   already refuses clone3, as many profiles do so that libc falls back.
   Returns as fork does, -1 with errno.  */
pid_t sbx_process_fork_sibling (void);
int sbx_process_close_fds_except (const int *keep, size_t n, int preserve_fds, sbx_error **err);

/* Validate process fields that can be checked before anything runs
   (args, cwd absolute, rlimit names, capabilities).  */
int sbx_process_validate (const oci_process *p, sbx_error **err);
/* Apply everything and execve, in two halves (each returns only on
   failure) for a process that waits in between (the
   created init): first everything that needs the runtime's privileges,
   ending with the container's credentials (user, capabilities,
   no_new_privs, and a seccomp filter that needs CAP_SYS_ADMIN to load);
   then the LSM label, the PATH lookup, the last word on ctx->notify_sock,
   a no_new_privs filter and execve.  */
typedef struct
{
  int procfd;     /* for the LSM label: ctx's, or own_procfd */
  int own_procfd; /* opened by the first half, or -1 */
  int notify_fd;  /* a seccomp listener fd loaded early, or -1 */
  char *file;     /* the program, once resolved (sbx_process_resolve), or NULL */
  char *home;     /* "HOME=..." when process.env has none, or NULL */
  int landlock_fd; /* the Landlock ruleset built in the first half, or -1 */
} sbx_exec_prep;
#define SBX_EXEC_PREP_INIT                                                                                   \
  {                                                                                                          \
    .procfd = -1, .own_procfd = -1, .notify_fd = -1, .landlock_fd = -1                                       \
  }
int sbx_process_drop_privileges (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err);
int sbx_process_finish_exec (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err);
/* Between the halves: find the program (in the container's PATH, with its
   credentials), so that a missing or non-executable one fails `create`
   ("executable file not found", which engines map to 127; EACCES: 126).  */
int sbx_process_resolve (const sbx_exec_ctx *ctx, sbx_exec_prep *prep, sbx_error **err);
/* The environment the process gets: process.env, and HOME when it has
   none (a malloc'd array of borrowed strings).  */
char **sbx_process_exec_env (const oci_process *p, const sbx_exec_prep *prep);

/* sched.h - the kernel's per-process attributes: process.scheduler and
 * process.ioPriority (set on the final process by the runtime, from
 * outside: a process the runtime forks after them would lose a
 * reset-on-fork policy, and SCHED_DEADLINE cannot fork at all), and
 * linux.personality and linux.memoryPolicy (set by the process itself,
 * inherited by its children).  Every rule the kernel applies is checked by
 * the validators, with errors naming the field.  */
int sbx_process_sched_validate (const oci_process *p, sbx_error **err);
int sbx_process_sched_apply_to (pid_t pid, const oci_process *p, sbx_error **err);
int sbx_process_linux_proc_validate (const oci_linux *l, sbx_error **err);
int sbx_process_linux_proc_apply (const oci_linux *l, sbx_error **err);
/* process.execCPUAffinity: `initial` before the process joins the
   container's cgroup (exec's joiner, the init's setup), `final` after.  */
int sbx_process_cpu_affinity_validate (const oci_process *p, sbx_error **err);
int sbx_process_cpu_affinity_apply (const oci_process *p, bool initial, sbx_error **err);

/* The engine annotations (crun's) that sbxrun acts on, for features.  */
#define SBX_ANN_KEEP_GROUPS "run.oci.keep_original_groups"
#define SBX_ANN_SECCOMP_FAIL_UNKNOWN "run.oci.seccomp_fail_unknown_syscall"
#define SBX_ANN_HOOKS_STDOUT "run.oci.hooks.stdout"
#define SBX_ANN_HOOKS_STDERR "run.oci.hooks.stderr"
typedef struct
{
  const char *name, *description;
} sbx_oci_annotation;
extern const sbx_oci_annotation sbx_oci_annotations[];
/* Whether annotation `name` of c is "1" (or "true").  */
bool sbx_process_annotation_on (const oci_config *c, const char *name);

/* netdev.h - rtnetlink in the container's network namespace.  */
/* Bring up the loopback of the (new) network namespace we are in.  */
int sbx_process_netns_loopback_up (sbx_error **err);
/* linux.netDevices: names valid, devices present on the host, a network
   namespace of the container's own.  */
int sbx_process_netdev_validate (const oci_linux *l, bool own_netns, sbx_error **err);
/* Move the devices into netns_fd's namespace, renamed as configured, with
   their permanent addresses (from the runtime, in the host's namespace).  */
int sbx_process_netdev_move_in (const oci_linux *l, int netns_fd, sbx_error **err);
/* At delete, while the namespace lives: move them back under their host
   names (best effort: warns).  A namespace that died has sent physical
   devices back already, and destroyed virtual ones.  */
void sbx_process_netdev_move_out (const oci_linux *l, int netns_fd);

#endif
