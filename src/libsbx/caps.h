/* caps.h - process capabilities (all five sets) with libcap.  */
#ifndef SBX_CAPS_H
#define SBX_CAPS_H

#include "error.h"
#include "ocispec.h"

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

#endif
