/* lsm.h - Linux security module labels: process.apparmorProfile,
 * process.selinuxLabel and linux.mountLabel.  Each is applied only when its
 * LSM is active; asking for one on a host without it is a clear error at
 * create time, never a silent no-op.  */
#ifndef SBX_LSM_H
#define SBX_LSM_H

#include <stdbool.h>

#include "error.h"
#include "ocispec.h"

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

#endif
