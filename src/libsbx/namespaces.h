/* namespaces.h - linux.namespaces: the table of namespace types, the flags to
 * create, the ones to join by path, uid/gid maps and time offsets.  */
#ifndef SBX_NAMESPACES_H
#define SBX_NAMESPACES_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "ocispec.h"

#define SBX_NS_MAX 8

typedef struct
{
  int new_flags;             /* CLONE_NEW* to create */
  int join_flags;            /* CLONE_NEW* joined by path */
  int join_fds[SBX_NS_MAX];  /* opened paths, in join order (user first) */
  int join_types[SBX_NS_MAX];
  size_t njoin;
} sbx_ns_plan;

/* Validate linux.namespaces and open the paths to join (O_CLOEXEC).  Errors
   name the entry: linux.namespaces[2].type: unknown namespace `foo`.  */
int sbx_ns_plan_make (const oci_linux *l, sbx_ns_plan *plan, sbx_error **err);
void sbx_ns_plan_close (sbx_ns_plan *plan);
/* In the child: setns every joined namespace except pid and time (which
   the parent joins for its children), user namespace first.  */
int sbx_ns_join (const sbx_ns_plan *plan, bool skip_pid, sbx_error **err);
/* The flag for a type name ("network" -> CLONE_NEWNET), 0 if unknown.  */
int sbx_ns_flag (const char *type);
/* The /proc/<pid>/ns/ file name for a flag ("net").  */
const char *sbx_ns_proc_name (int flag);
/* NULL-terminated list of the type names we support (for features).  */
extern const char *const sbx_ns_names[];

/* Write /proc/<pid>/{uid,gid}_map from linux.{uid,gid}Mappings.  */
int sbx_ns_write_id_maps (pid_t pid, const oci_linux *l, sbx_error **err);
/* Write /proc/self/timens_offsets (after unshare(CLONE_NEWTIME)).  */
int sbx_ns_write_time_offsets (const oci_linux *l, sbx_error **err);

#endif
