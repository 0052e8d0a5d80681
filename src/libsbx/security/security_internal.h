/* security/security_internal.h - what the seccomp files share: the compiled
 * filter and the compile cache (security/seccomp_cache.c).  */
#ifndef SBX_SECURITY_INTERNAL_H
#define SBX_SECURITY_INTERNAL_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ocispec.h"
#include "security/security.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1U << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1U << 5)
#endif
#ifndef BPF_MAXINSNS
#define BPF_MAXINSNS 4096
#endif
#define MAX_ERRNO_VALUE 4095
#define MAX_SYSCALL_ARGS 6

struct sbx_seccomp
{
  struct sock_filter *insns;
  size_t len;
  unsigned int flags; /* for seccomp(2), NEW_LISTENER included */
  bool notify;
  bool cached; /* taken from the cache */
};

/* The cache key of a profile (binary, and as the file name in hex).  */
void sbx_seccomp_cache_key (const oci_seccomp *s, uint8_t d[32], char hex[65]);
/* Fill sc from the entry of key in the cache directory dfd; false on any
   miss.  */
bool sbx_seccomp_cache_read (int dfd, const uint8_t key[32], const char *hex, sbx_seccomp *sc);
/* Store sc as the entry of key (best effort).  */
void sbx_seccomp_cache_write (int dfd, const uint8_t key[32], const char *hex, const sbx_seccomp *sc);

#endif
