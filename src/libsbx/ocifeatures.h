/* ocifeatures.h - the runtime-spec "features" document (features.md) and the
 * compiled-in feature tags shown by --version.  Every list is taken from the
 * module that implements it, so it cannot claim more than works.  */
#ifndef SBX_OCIFEATURES_H
#define SBX_OCIFEATURES_H

#include "error.h"
#include "ocispec.h"

#define SBX_FEATURE_TAGS "+SECCOMP +CAP +NFTABLES +YAJL"

int sbx_features (oci_features **out, sbx_error **err);

#endif
