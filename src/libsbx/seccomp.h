/* seccomp.h - linux.seccomp with libseccomp.  The filter is compiled in the
 * runtime (before the container process exists, cached by a hash of the
 * seccomp section) and only loaded by the container process, as late as
 * possible before exec.  */
#ifndef SBX_SECCOMP_H
#define SBX_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "ocispec.h"

typedef struct sbx_seccomp sbx_seccomp;

/* Validate and compile to a BPF program.  Errors name the field (e.g.
   "linux.seccomp.syscalls[3].action: unknown action `SCMP_ACT_FOO`").
   Unknown syscall names are skipped with a debug message.  cache_dir (may be
   NULL) holds compiled programs keyed by a hash of the seccomp section.  */
int sbx_seccomp_prepare (const oci_seccomp *s, const char *cache_dir, sbx_seccomp **out,
                         sbx_error **err);
/* In the container process, right before exec: load the program with the
   seccomp(2) syscall (no libseccomp call needed after fork).  If the profile
   uses SCMP_ACT_NOTIFY, *notify_fd receives the listener fd, else -1.  */
int sbx_seccomp_load (const sbx_seccomp *sc, int *notify_fd, sbx_error **err);
/* In the runtime (host side): send notify_fd and the container process state
   (config-linux.md "Seccomp notification": ociVersion, fds, pid, metadata,
   state) to listenerPath over SCM_RIGHTS.  oci_state_json is the container's
   state document.  */
int sbx_seccomp_notify_send (const oci_seccomp *s, int notify_fd, int pid,
                             const char *oci_state_json, sbx_error **err);
/* Refuse NOTIFY rules on the syscalls the container process still makes
   between loading the filter and execve.  */
int sbx_seccomp_check_notify (const oci_seccomp *s, bool no_new_privs, sbx_error **err);
void sbx_seccomp_free (sbx_seccomp *sc);

/* NULL-terminated lists for `features`.  */
extern const char *const sbx_seccomp_actions[];
extern const char *const sbx_seccomp_operators[];
extern const char *const sbx_seccomp_flags[];
char **sbx_seccomp_archs (void);
/* The flags of sbx_seccomp_flags the running kernel accepts (supportedFlags
   in `features`); free with sbx_strv_free.  */
char **sbx_seccomp_supported_flags (void);

/* Whether the program needs a notify listener (some rule uses
   SCMP_ACT_NOTIFY): the caller must then pass notify_fd to load and hand the
   fd to sbx_seccomp_notify_send.  */
bool sbx_seccomp_uses_notify (const sbx_seccomp *sc);

/* Introspection, mostly for tests: whether sc came from the cache, how many
   times libseccomp compiled a filter in this process, and the program
   itself (its length in instructions).  */
bool sbx_seccomp_from_cache (const sbx_seccomp *sc);
unsigned long sbx_seccomp_compile_count (void);
struct sock_filter;
size_t sbx_seccomp_program (const sbx_seccomp *sc, const struct sock_filter **insns);

/* SHA-256 of a buffer (the cache key hash).  */
void sbx_sha256 (const void *data, size_t len, unsigned char out[32]);

#endif
