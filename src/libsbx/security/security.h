/* security/security.h - what confines a container process: capabilities, LSM labels,
 * the seccomp filter, Landlock rules, and the sealed copy of our own binary.
 *
 * Public header of src/libsbx/security/; one section per source file.  */
#ifndef SBX_SECURITY_SECURITY_H
#define SBX_SECURITY_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "ocispec.h"

/* caps.h - process capabilities (all five sets) with libcap.  */

/* Validate names (unknown names are an error naming the set and the value;
   names the running kernel does not know are dropped with a warning).  Call
   before exec, after setuid: sets bounding, then inheritable/permitted/
   effective, then ambient (only those permitted+inheritable allow).  A NULL
   caps drops everything.  */
int sbx_caps_apply (const oci_capabilities *caps, sbx_error **err);
/* Check the names only (at create time, to fail before anything is set up).  */
int sbx_caps_validate (const oci_capabilities *caps, sbx_error **err);
/* NULL-terminated list of every capability name known to libcap ("CAP_...").  */
char **sbx_caps_known_names (void);
/* Keep permitted capabilities over setuid (PR_SET_KEEPCAPS and back).  */
int sbx_caps_keep (int on, sbx_error **err);

/* lsm.h - Linux security module labels: process.apparmorProfile,
 * process.selinuxLabel and linux.mountLabel.  Each is applied only when its
 * LSM is active; asking for one on a host without it is a clear error at
 * create time, never a silent no-op.  */

bool sbx_apparmor_enabled (void);
bool sbx_selinux_enabled (void);
/* Check the config's labels against the running host (create / exec).  */
int sbx_lsm_validate (const oci_process *p, const oci_linux *l, sbx_error **err);
/* Right before execve: the labels the exec'd program is to run with.
   Written through procfd (procfs.h).  */
int sbx_lsm_apply_exec (const oci_process *p, int procfd, sbx_error **err);
/* The mount data option carrying linux.mountLabel ("context=\"...\""), or
   NULL when there is none to add.  malloc'd.  */
char *sbx_lsm_mount_data (const oci_linux *l);

/* seccomp.h - linux.seccomp with libseccomp.  The filter is compiled in the
 * runtime (before the container process exists, cached by a hash of the
 * seccomp section) and only loaded by the container process, as late as
 * possible before exec.  */

typedef struct sbx_seccomp sbx_seccomp;

/* security/packet_guard.c: under an egress policy, a filter of its own
   making socket(AF_PACKET / AF_XDP / SOCK_PACKET) and io_uring_setup fail
   with EPERM, stacked on (never weakening) the profile's.  Call while the
   runtime's privileges are still in force, before the profile's filter.  */
int sbx_packet_guard_load (sbx_error **err);

/* Validate and compile to a BPF program.  Errors name the field (e.g.
   "linux.seccomp.syscalls[3].action: unknown action `SCMP_ACT_FOO`").
   Unknown syscall names are skipped with a debug message.  cache_dir (may be
   NULL) holds compiled programs keyed by a hash of the seccomp section.  */
/* Every syscall name known to libseccomp (run.oci.seccomp_fail_unknown_syscall);
   by default unknown names are skipped, as other runtimes do.  */
int sbx_seccomp_check_names (const oci_seccomp *s, sbx_error **err);
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

/* sealed.h - run from a sealed copy of our own binary.
 *
 * A container process that can reach one of our processes' executable
 * (its own entrypoint a link to /proc/self/exe, /proc/<pid>/exe of our init
 * or exec process, a ptracer in a shared pid namespace) could otherwise
 * reopen the host's sbxrun for writing once we exit, and the next sbxrun on
 * the host would run its code as root (CVE-2019-5736).  So the commands
 * that make processes a container can see switch, first thing, to the
 * binary seen through a private overlay mount that nothing can make
 * writable, or else to an anonymous copy sealed against writes: the file
 * behind every such /proc/<pid>/exe, and behind every mapping of the
 * image, is then that view or copy, which nobody can change, and which
 * disappears with the last process that runs it.  */

/* Run from a sealed copy of /proc/self/exe, unless already running from
   one: in place where the kernel allows it (every mapping of the binary
   replaced by the same bytes of the copy, then PR_SET_MM_MAP's exe_fd;
   needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN), else by re-executing
   the copy with the same argv and environment.  Returns 0 when running
   sealed; on failure returns -1 with *err set (never runs unprotected
   silently).  Call before opening anything and before any thread: every
   fd of ours is close-on-exec, the caller's fds pass through unchanged.  */
int sbx_reexec_sealed (char **argv, sbx_error **err);

/* landlock.h - org.sbxrun.landlock.* annotations: Landlock rules on the
 * container's paths and TCP ports (docs/annotations.md).  Parsed at create
 * (and for each exec from the saved config); the container process builds
 * the ruleset inside its final root while still privileged
 * (sbx_landlock_prepare) and enforces it as its last step before execve
 * (sbx_landlock_enforce), which implies no_new_privs.  */

#define SBX_LANDLOCK_PREFIX "org.sbxrun.landlock."
#define SBX_LANDLOCK_EFFECTIVE SBX_LANDLOCK_PREFIX "effective"

typedef struct sbx_landlock sbx_landlock;

/* The kernel's Landlock ABI version, 0 when Landlock is unavailable.  */
int sbx_landlock_abi (void);
/* "execute, write_file, ..., connect_tcp": the rights this kernel knows.  */
char *sbx_landlock_rights_supported (void);
/* NULL in *out when c has no org.sbxrun.landlock.* annotation.  Errors
   name the annotation and the value; rights the kernel cannot enforce are
   refused in mode strict and warned about (unless from_state) otherwise.  */
int sbx_landlock_parse (const oci_config *c, bool from_state, sbx_landlock **out, sbx_error **err);
/* The rules in force, for the state's org.sbxrun.landlock.effective.  */
const char *sbx_landlock_effective (const sbx_landlock *ll);
/* In the container process, in its final root: the ruleset fd in *fd_out
   (-1 when this kernel enforces nothing of it).  A path missing in the
   container is an error naming it.  */
int sbx_landlock_prepare (const sbx_landlock *ll, int *fd_out, sbx_error **err);
/* Enforce the ruleset *ruleset (consumed; nothing when -1).  */
int sbx_landlock_enforce (int *ruleset, sbx_error **err);
void sbx_landlock_free (sbx_landlock *ll);
void sbx_landlock_freep (sbx_landlock **ll);
#define cleanup_landlock __attribute__ ((cleanup (sbx_landlock_freep)))

#endif
