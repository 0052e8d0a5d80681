/* core/core.h - the base every module builds on: the error idiom, cleanup
 * attributes and file helpers, log lines, checked procfs writes.
 *
 * Public header of src/libsbx/core/; one section per source file.  */
#ifndef SBX_CORE_CORE_H
#define SBX_CORE_CORE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* error.h - the one error idiom of sbxrun.
 *
 * Every fallible library function returns 0 (or a non-negative value) on
 * success, or a negative value on failure after filling *err.  Callers add
 * context while unwinding with sbx_error_wrap(); the CLI prints the result as
 * "sbxrun: <context>: <message>: <strerror>" or as a JSON log line.  Library
 * code never calls exit().  */

typedef struct sbx_error
{
  int errno_;   /* 0 when the failure is not a system error */
  char *msg;    /* full text, context prepended by wraps */
} sbx_error;

/* Create an error; errno_ may be 0.  Always returns -1 (or -errno_ if set),
   so that `return sbx_error_set (...)` reads naturally.  If *err is already
   set it is replaced.  */
int sbx_error_set (sbx_error **err, int errno_, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Same with errno as the error number.  */
#define sbx_error_sys(err, ...) sbx_error_set ((err), errno, __VA_ARGS__)

/* Prepend "context: " to an existing error and return its status.  */
int sbx_error_wrap (sbx_error **err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* The text "msg: strerror" (or just msg), owned by the caller.  */
char *sbx_error_text (const sbx_error *err);

void sbx_error_free (sbx_error *err);
void sbx_error_freep (sbx_error **err);
#define cleanup_error __attribute__ ((cleanup (sbx_error_freep)))

/* Status for an error: negative errno, or -1.  */
static inline int
sbx_error_status (const sbx_error *err)
{
  return err && err->errno_ > 0 ? -err->errno_ : -1;
}

/* utils.h - cleanup helpers and small file/string utilities shared by all
 * modules.  Ownership moves out of a cleanup variable with steal_ptr() or
 * steal_fd().  */

void sbx_freep (void *p);
void sbx_closep (int *fd);
void sbx_fclosep (void *f);
void sbx_strv_freep (char ***v);

#define cleanup_free __attribute__ ((cleanup (sbx_freep)))
#define cleanup_close __attribute__ ((cleanup (sbx_closep)))
#define cleanup_file __attribute__ ((cleanup (sbx_fclosep)))
#define cleanup_strv __attribute__ ((cleanup (sbx_strv_freep)))

static inline void *
sbx_steal_ptr_ (void *pp)
{
  void **p = (void **) pp;
  void *r = *p;
  *p = NULL;
  return r;
}
#define steal_ptr(p) sbx_steal_ptr_ (&(p))

static inline int
steal_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* Abort on allocation failure: an OOM runtime can do nothing useful.  */
void *xmalloc0 (size_t n);
void *xrealloc (void *p, size_t n);
char *xstrdup (const char *s);
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
char *xvasprintf (const char *fmt, va_list ap) __attribute__ ((format (printf, 1, 0)));
void sbx_strv_free (char **v);
size_t sbx_strv_len (char *const *v);

/* Read a whole file (at most max bytes; 0 = no limit).  NUL terminated.  */
int sbx_read_file (const char *path, size_t max, char **out, size_t *len, sbx_error **err);
int sbx_read_fd (int fd, size_t max, char **out, size_t *len, sbx_error **err);
/* Write a file atomically: a temporary with an unpredictable name created
   O_EXCL|O_NOFOLLOW in the same directory, then renamed over NAME.  */
int sbx_write_file_atomic (int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                           sbx_error **err);
/* Full read/write loops retrying on EINTR.  */
ssize_t sbx_write_all (int fd, const void *buf, size_t len);
ssize_t sbx_read_all (int fd, void *buf, size_t len);
/* Fields 3 to last (at most 52) of /proc/PID/stat (pid 0: our own), read
   after the name, which may hold anything: v[3] is the state letter, the
   others are numbers.  0, or -1 when the process or a field is missing.  */
int sbx_proc_stat (pid_t pid, unsigned long long *v, int last);
int sbx_mkdir_p (const char *path, mode_t mode, sbx_error **err);
/* Remove name under dirfd and everything below it, never following a
   symlink; a missing name is fine.  -1 with errno on the first failure.  */
int sbx_remove_tree_at (int dirfd, const char *name);

/* A directory whose contents sbxrun trusts (state root, seccomp cache):
   refused (EPERM, naming WHAT and PATH) unless owned by the euid and not
   writable by group or others; open_ also refuses a symlink and, with
   CREATE, makes missing directories (0700).  Returns the fd.  */
int sbx_check_private_dir (int fd, const char *path, const char *what, sbx_error **err);
int sbx_open_private_dir (const char *path, bool create, const char *what, sbx_error **err);

/* --rootless: NULL or "auto" means rootless when euid != 0 or in a user
   namespace that does not map every id; "true"/"false" force it.  */
int sbx_rootless_resolve (const char *flag, bool *rootless, sbx_error **err);
/* /run/sbxrun for root, else $XDG_RUNTIME_DIR/sbxrun (/run/user/UID/sbxrun
   without it); also $XDG_RUNTIME_DIR/sbxrun for uid 0 when rootless (in a
   user's namespace) and USER is not "root".  Allocated.  */
char *sbx_default_state_root (bool rootless);

/* The fds sbxrun was started with (>= 3), recorded before it opens any:
   only those may be passed to a container (--preserve-fds, LISTEN_FDS).  */
void sbx_inherited_fds_snapshot (void);
bool sbx_fd_inherited (int fd);

/* Read one signal from signalfd sigfd and send it to the process behind
   pidfd (`run`/`exec` in the foreground pass signals on).  */
void sbx_forward_signal (int sigfd, int pidfd);

bool sbx_has_prefix (const char *s, const char *prefix);
int sbx_parse_int64 (const char *s, long long *out);
/* Crash-consistency tests: SBXRUN_TEST_KILL_AT=<step> makes the runtime
   SIGKILL itself when it reaches step (names in docs/design.md).  Built in
   always: whoever sets sbxrun's environment can kill it anyway.
   SBXRUN_TEST_STOP_AT=<step> stops it there (SIGSTOP) instead.  */
void sbx_test_kill_point (const char *step);

/* log.h - diagnostics for the CLI and library: text or JSON lines
 * ({"level","msg","time"}, as podman and containerd parse) to the --log file,
 * falling back to stderr.  */

typedef enum
{
  SBX_LOG_ERROR,
  SBX_LOG_WARNING,
  SBX_LOG_INFO,
  SBX_LOG_DEBUG
} sbx_log_level;

/* path may be NULL (stderr only).  format: "text" or "json".  */
int sbx_log_init (const char *path, const char *format, bool debug, sbx_error **err);
void sbx_log (sbx_log_level level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
#define sbx_debug(...) sbx_log (SBX_LOG_DEBUG, __VA_ARGS__)
/* Are debug messages on (--debug)?  For measurements only they need.  */
bool sbx_log_debugging (void);
#define sbx_warn(...) sbx_log (SBX_LOG_WARNING, __VA_ARGS__)
/* Report a fatal error: always on stderr as "sbxrun: msg", and in the log
   file in its format.  */
void sbx_log_error (const sbx_error *err);
/* Close the log file in a process that a container can see: it is a host
   file (messages then go to stderr).  */
void sbx_log_close (void);

/* procfs.h - writes into procfs that cannot be redirected.
 *
 * Files such as attr/exec (the LSM label), oom_score_adj, uid_map or a
 * sysctl are only safe to write when the write lands on procfs itself: a
 * bind mount over /proc (or over one of its files) would otherwise take the
 * value into an ordinary file, or onto another procfs file, and the
 * container would run unconfined (CVE-2019-16884, CVE-2025-52881).  So a
 * procfs is opened once as a directory fd, checked to be the root of a
 * procfs, replaced by a private detached copy of that mount (which carries
 * none of the mounts stacked on it) where the kernel allows, and every file
 * is then opened beneath that fd without crossing a mount or following a
 * symlink at the end, and checked again to be on that same procfs.  */

/* Open the procfs mounted at path (relative to dirfd; the last component
   is not followed): an fd usable as procfd below.  Fails unless path is
   the root of a procfs.  */
int sbx_proc_open (int dirfd, const char *path, sbx_error **err);
/* The same, choosing: a private copy is for a process no container
   process can see yet (it carries none of the masks either); a process
   that may be seen uses the mount as it is, masks included.  */
typedef enum
{
  SBX_PROC_PRIVATE_COPY,
  SBX_PROC_MOUNTED,
} sbx_proc_open_mode;
int sbx_proc_open_as (int dirfd, const char *path, sbx_proc_open_mode mode, sbx_error **err);
/* Open rel (e.g. "self/oom_score_adj") beneath procfd for writing.  */
int sbx_proc_open_write (int procfd, const char *rel, sbx_error **err);
/* Open rel beneath procfd and write buf (one write: procfs files take a
   value in one piece).  */
int sbx_proc_write (int procfd, const char *rel, const char *buf, size_t len, sbx_error **err);

/* Connect to a unix socket path (SOCK_STREAM, close-on-exec); paths longer
   than sun_path go through /proc/self/fd/N/name of their directory, else
   (no /proc) a temporary fchdir.  Returns the connected fd.  */
int sbx_unix_connect (const char *path, sbx_error **err);
/* sendmsg(2) of iov with fd (if >= 0) attached as SCM_RIGHTS; MSG_NOSIGNAL,
   EINTR retried.  What sendmsg returns (errno set on -1).  */
struct iovec;
ssize_t sbx_sendmsg_fd (int sock, struct iovec *iov, size_t niov, int fd);
/* The same with up to SBX_MAX_SEND_FDS descriptors in one message.  */
#define SBX_MAX_SEND_FDS 32
ssize_t sbx_sendmsg_fds (int sock, struct iovec *iov, size_t niov, const int *fds, size_t nfds);
/* Run argv (argv[0] searched in PATH) with stdin on /dev/null and no fd
   beyond stdio; its stdout and stderr together go to *out (malloc'd, NUL
   terminated).  hint follows the child's message when it cannot exec.
   Returns its exit status (128+N for signal N), or -1 with ERR when it
   could not be run or waited for.  Not for the hot path.  */
int sbx_run_capture (char *const *argv, const char *hint, char **out, sbx_error **err);
/* A user namespace with uid_map and gid_map (the text of
   /proc/PID/uid_map: "inside outside count" lines), made by a child that
   exits once it is open: for an idmapped mount.  Needs CAP_SETUID and
   CAP_SETGID for ranges beyond our own id.  Returns its fd.  */
int sbx_userns_fd (const char *uid_map, const char *gid_map, sbx_error **err);
/* The maps of the user namespace nsfd as seen from ours (the text of its
   /proc/PID/uid_map and gid_map, read from a child that joins it and
   exits; needs CAP_SYS_ADMIN over it).  *uid_map and *gid_map malloc'd.  */
int sbx_userns_maps (int nsfd, char **uid_map, char **gid_map, sbx_error **err);
/* The id outside that id inside is through map (uid_map's text); false
   when map does not map it.  */
bool sbx_idmap_outside (const char *map, unsigned long long id, unsigned long long *out);
/* pidfd_open(2) (-1 with ENOSYS where the headers lack it).  */
int sbx_pidfd_open (pid_t pid);
/* CLOCK_MONOTONIC in milliseconds, for deadlines.  */
long long sbx_now_ms (void);

/* One line of /proc/<pid>/mountinfo, split in place (root and mountpoint
   unescaped); false if it is not a complete line.  */
typedef struct
{
  char *root, *mountpoint, *fstype, *superopts;
} sbx_mountinfo_entry;
bool sbx_mountinfo_parse_line (char *line, sbx_mountinfo_entry *e);
/* The mount id (statx STATX_MNT_ID) of path at dirfd, flags as statx's;
   -1 with errno, ENOTSUP when the kernel gives none.  */
int sbx_mount_id (int dirfd, const char *path, int flags, uint64_t *out);

/* Append (or replace) one annotation of a config: what the runtime
   records in the saved config for `state` (org.sbxrun.*.resolved...).  */
struct oci_config;
void sbx_config_annotate (struct oci_config *c, const char *key, const char *value);

/* sha256.h - SHA-256 (FIPS 180-4): the seccomp cache key, snapshot
 * manifests.  */

typedef struct
{
  unsigned int h[8];
  unsigned long long total;
  unsigned char buf[64];
  size_t used;
} sbx_sha256_ctx;

void sbx_sha256_init (sbx_sha256_ctx *c);
void sbx_sha256_update (sbx_sha256_ctx *c, const void *data, size_t len);
void sbx_sha256_final (sbx_sha256_ctx *c, unsigned char out[32]);
/* One buffer at once.  */
void sbx_sha256 (const void *data, size_t len, unsigned char out[32]);
/* 64 lowercase hex digits and a NUL.  */
void sbx_sha256_hex (const unsigned char d[32], char hex[65]);

#endif
