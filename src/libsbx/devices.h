/* devices.h - the container's /dev content: default devices and symlinks
 * (config-linux.md "Default Devices") and linux.devices.  Called by
 * sbx_rootfs_prepare after mounts[], before pivot_root.  */
#ifndef SBX_DEVICES_H
#define SBX_DEVICES_H

#include <stdbool.h>

#include "error.h"
#include "ocispec.h"

typedef enum
{
  SBX_DEV_FRESH,  /* /dev is a new filesystem from mounts[] (tmpfs): populate it */
  SBX_DEV_ROOTFS, /* no /dev mount: populate the rootfs' own /dev, keep what exists */
  SBX_DEV_HOST,   /* /dev is a bind (of the host's): no default devices */
} sbx_dev_kind;

/* rootfd: the rootfs (every path resolved inside it).  userns: device nodes
   cannot be created, bind the host's node onto an empty file instead.  */
int sbx_devices_setup (const oci_config *c, int rootfd, bool userns, sbx_dev_kind kind,
                       sbx_error **err);

#endif
