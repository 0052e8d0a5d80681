/* spec_default.h - the configuration `sbxrun spec` writes.  */
#ifndef SBX_SPEC_DEFAULT_H
#define SBX_SPEC_DEFAULT_H

#include <stdbool.h>

#include "error.h"
#include "ocispec.h"

/* A fresh default config; rootless adapts it for an unprivileged user
   (user namespace mapping the caller, no network namespace, /sys bound).  */
int sbx_spec_default (bool rootless, oci_config **out, sbx_error **err);

#endif
