/* security/packet_guard.c - the seccomp filter that keeps a process under
 * an egress policy from sending past netfilter: packet sockets
 * (AF_PACKET, and the legacy SOCK_PACKET type the kernel turns into one)
 * and AF_XDP sockets need CAP_NET_RAW, which a policy allows for raw IP
 * sockets (those pass the output hook like any other traffic), and would
 * put frames on the link that no output hook sees.  io_uring is refused
 * too: its socket operation does not pass through seccomp.
 *
 * It is a filter of its own, stacked on the profile's (linux.seccomp):
 * the kernel runs every filter and keeps the strictest verdict, so the
 * profile is never weakened, whatever it says about these calls.  Loaded
 * before the profile's filter, which may not allow seccomp(2) itself.  */
#include <config.h>
#include "security/security.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOCK_PACKET
#define SOCK_PACKET 10
#endif
#define SOCK_TYPE_MASK 0xf

#define ARG_LO(n) (offsetof (struct seccomp_data, args) + (n) * sizeof (__u64))
#define STMT(c, k) ((struct sock_filter)BPF_STMT ((c), (k)))
#define JUMP(c, k, t, f) ((struct sock_filter)BPF_JUMP ((c), (k), (t), (f)))

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define NATIVE_SOCKET 41
#define NATIVE_IO_URING 425
#define X32_BIT 0x40000000u
/* ia32 processes on x86_64 */
#define COMPAT_ARCH AUDIT_ARCH_I386
#define COMPAT_SOCKET 359
#define COMPAT_SOCKETCALL 102
#define COMPAT_IO_URING 425
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define NATIVE_SOCKET 198
#define NATIVE_IO_URING 425
#endif

int
sbx_packet_guard_load (sbx_error **err)
{
#ifdef NATIVE_ARCH
  enum
  {
    EPERM_RET = SECCOMP_RET_ERRNO | EPERM
  };
  /* Indices are fixed: jumps are relative, count carefully.  */
  struct sock_filter f[] = {
    /* 0 */ STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
#ifdef COMPAT_ARCH
    /* 1 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
    /* 2 */ JUMP (BPF_JMP | BPF_JA, 9, 0, 0), /* -> 12: the compat arch */
#else
    /* 1 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
    /* 2 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS), /* no other ABI */
#endif
    /* 3 */ STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
#ifdef X32_BIT
    /* 4 */ STMT (BPF_ALU | BPF_AND | BPF_K, ~X32_BIT),
#else
    /* 4 */ STMT (BPF_ALU | BPF_AND | BPF_K, 0xffffffffu),
#endif
    /* 5 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, NATIVE_IO_URING, 3, 0), /* -> 9 */
    /* 6 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, NATIVE_SOCKET, 3, 0),   /* -> 10 */
    /* 7 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* 8 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* 9 */ STMT (BPF_RET | BPF_K, EPERM_RET),
    /* 10 */ JUMP (BPF_JMP | BPF_JA, 11, 0, 0), /* -> 22: socket's arguments */
    /* 11 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#ifdef COMPAT_ARCH
    /* 12 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, COMPAT_ARCH, 1, 0),
    /* 13 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS), /* x32 is native; no other ABI */
    /* 14 */ STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
    /* 15 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, COMPAT_IO_URING, 5, 0),   /* -> 21 */
    /* 16 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, COMPAT_SOCKET, 5, 0),     /* -> 22 */
    /* 17 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, COMPAT_SOCKETCALL, 1, 0), /* -> 19 */
    /* 18 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* socketcall(SYS_SOCKET, args): the arguments are in memory, out of
       the filter's reach, so only the direct socket(2) call works.  */
    /* 19 */ STMT (BPF_LD | BPF_W | BPF_ABS, ARG_LO (0)),
    /* 20 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, 1 /* SYS_SOCKET */, 0, 7), /* no: -> 28 allow */
    /* 21 */ STMT (BPF_RET | BPF_K, EPERM_RET),
#else
    /* 12..21: unused on this architecture */
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
    /* socket (family, type, protocol): the low 32 bits, as the kernel
       reads them (ints).  */
    /* 22 */ STMT (BPF_LD | BPF_W | BPF_ABS, ARG_LO (0)),
    /* 23 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, AF_PACKET, 5, 0), /* -> 29 */
    /* 24 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, AF_XDP, 4, 0),    /* -> 29 */
    /* 25 */ STMT (BPF_LD | BPF_W | BPF_ABS, ARG_LO (1)),
    /* 26 */ STMT (BPF_ALU | BPF_AND | BPF_K, SOCK_TYPE_MASK),
    /* 27 */ JUMP (BPF_JMP | BPF_JEQ | BPF_K, SOCK_PACKET, 1, 0), /* -> 29 */
    /* 28 */ STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* 29 */ STMT (BPF_RET | BPF_K, EPERM_RET),
  };
  struct sock_fprog prog = { .len = sizeof f / sizeof *f, .filter = f };

  /* The runtime's privileges are still in force (CAP_SYS_ADMIN), so no
     no_new_privs is needed; flags 0: the caller is single-threaded.  */
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0
      && prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
    return sbx_error_sys (err, "egress policy: load the seccomp filter refusing packet sockets");
  return 0;
#else
  return sbx_error_set (err, ENOTSUP,
                        "egress policy: no filter refusing packet sockets for this architecture");
#endif
}
