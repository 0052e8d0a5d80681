/* utils.h - cleanup helpers and small file/string utilities shared by all
 * modules.  Ownership moves out of a cleanup variable with steal_ptr() or
 * steal_fd().  */
#ifndef SBX_UTILS_H
#define SBX_UTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "error.h"

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
void sbx_strv_free (char **v);
size_t sbx_strv_len (char *const *v);

/* Read a whole file (at most max bytes; 0 = no limit).  NUL terminated.  */
int sbx_read_file (const char *path, size_t max, char **out, size_t *len, sbx_error **err);
int sbx_read_fd (int fd, size_t max, char **out, size_t *len, sbx_error **err);
/* Write a file atomically: a temporary with an unpredictable name created
   O_EXCL|O_NOFOLLOW in the same directory, then renamed over NAME.  */
int sbx_write_file_atomic (int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                           sbx_error **err);
int sbx_write_file_at (int dirfd, const char *name, const void *data, size_t len, sbx_error **err);
/* Full read/write loops retrying on EINTR.  */
ssize_t sbx_write_all (int fd, const void *buf, size_t len);
ssize_t sbx_read_all (int fd, void *buf, size_t len);
int sbx_mkdir_p (const char *path, mode_t mode, sbx_error **err);

/* A directory whose contents sbxrun trusts (state root, seccomp cache):
   refused (EPERM, naming WHAT and PATH) unless owned by the euid and not
   writable by group or others; open_ also refuses a symlink and, with
   CREATE, makes missing directories (0700).  Returns the fd.  */
int sbx_check_private_dir (int fd, const char *path, const char *what, sbx_error **err);
int sbx_open_private_dir (const char *path, bool create, const char *what, sbx_error **err);

/* The fds sbxrun was started with (>= 3), recorded before it opens any:
   only those may be passed to a container (--preserve-fds, LISTEN_FDS).  */
void sbx_inherited_fds_snapshot (void);
bool sbx_fd_inherited (int fd);

/* Read one signal from signalfd sigfd and send it to the process behind
   pidfd (`run`/`exec` in the foreground pass signals on).  */
void sbx_forward_signal (int sigfd, int pidfd);

bool sbx_has_prefix (const char *s, const char *prefix);
int sbx_parse_int64 (const char *s, long long *out);

#endif
