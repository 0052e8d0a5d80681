/* sectest.c - a tiny probe for the security tests (test_security.py).
 *
 * Built statically at test time and copied into the container's rootfs, it
 * makes the system calls busybox cannot be asked for and prints one line per
 * operation, so a test can read from inside the container what the kernel
 * answered:
 *
 *   sectest OP [OP...]
 *
 *   getppid              getppid()
 *   personality:VAL      personality(VAL), VAL in any base strtoull reads
 *   fork                 clone(SIGCHLD), the child exits at once
 *   clone:FLAGS          clone(FLAGS | SIGCHLD), ditto
 *   clone3               clone3({.exit_signal = SIGCHLD}), ditto
 *   sys:NR[,ARG...]      syscall(NR, ARG...), at most six arguments
 *   int80:NR[,ARG...]    the i386 system call NR through `int $0x80` (x86_64
 *                        only), at most three arguments: the 32-bit ABI must
 *                        be filtered as well
 *
 * Every line reads "OP ret=R errno=E" (E is 0 when R is not -1).  The calls
 * are raw syscall(2)s, so no libc fallback (e.g. clone3 -> clone) hides what
 * the seccomp filter did.  */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

struct clone3_args
{
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static unsigned long
num (const char *s)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 0);
  if (errno || end == s || *end)
    {
      fprintf (stderr, "sectest: bad number `%s`\n", s);
      exit (2);
    }
  return (unsigned long) v;
}

/* In a child made by a raw clone: leave without running atexit handlers or
   flushing stdio buffers inherited from the parent.  */
static long
reap (long pid)
{
  if (pid == 0)
    syscall (SYS_exit_group, 0);
  if (pid > 0)
    {
      int st;
      if (waitpid ((pid_t) pid, &st, 0) < 0 || !WIFEXITED (st) || WEXITSTATUS (st) != 0)
        {
          fprintf (stderr, "sectest: child %ld did not exit cleanly\n", pid);
          exit (3);
        }
      return 0; /* the pid itself means nothing to the caller */
    }
  return pid;
}

/* Numbers from a comma-separated list into a[0..max-1]; returns how many.  */
static int
parse_list (const char *op, const char *list, unsigned long *a, int max)
{
  char *copy = strdup (list), *save = NULL, *tok;
  int n = 0;
  for (tok = strtok_r (copy, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
    {
      if (n == max)
        {
          fprintf (stderr, "sectest: too many numbers in `%s`\n", op);
          exit (2);
        }
      a[n++] = num (tok);
    }
  free (copy);
  if (n == 0)
    {
      fprintf (stderr, "sectest: `%s` needs a syscall number\n", op);
      exit (2);
    }
  return n;
}

static long
int80 (unsigned long nr, unsigned long a, unsigned long b, unsigned long c)
{
#if defined(__x86_64__)
  long r;
  __asm__ volatile ("int $0x80"
                    : "=a"(r)
                    : "a"(nr), "b"(a), "c"(b), "d"(c)
                    : "memory", "r8", "r9", "r10", "r11");
  if (r < 0 && r >= -4095)
    {
      errno = (int) -r;
      return -1;
    }
  return r;
#else
  (void) nr, (void) a, (void) b, (void) c;
  fprintf (stderr, "sectest: int80 is x86_64 only\n");
  exit (2);
#endif
}

static long
run_op (const char *op)
{
  const char *arg = strchr (op, ':');
  arg = arg ? arg + 1 : "";

  if (strcmp (op, "getppid") == 0)
    return syscall (SYS_getppid);
  if (strncmp (op, "personality:", 12) == 0)
    return syscall (SYS_personality, num (arg));
  if (strcmp (op, "fork") == 0)
    return reap (syscall (SYS_clone, (unsigned long) SIGCHLD, 0UL, 0UL, 0UL, 0UL));
  if (strncmp (op, "clone:", 6) == 0)
    return reap (syscall (SYS_clone, num (arg) | SIGCHLD, 0UL, 0UL, 0UL, 0UL));
  if (strcmp (op, "clone3") == 0)
    {
      struct clone3_args ca;
      memset (&ca, 0, sizeof ca);
      ca.exit_signal = SIGCHLD;
      return reap (syscall (SYS_clone3, &ca, sizeof ca));
    }
  if (strncmp (op, "sys:", 4) == 0)
    {
      unsigned long a[7] = { 0 };
      parse_list (op, arg, a, 7);
      return syscall (a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    }
  if (strncmp (op, "int80:", 6) == 0)
    {
      unsigned long a[4] = { 0 };
      parse_list (op, arg, a, 4);
      return int80 (a[0], a[1], a[2], a[3]);
    }
  fprintf (stderr, "sectest: unknown operation `%s`\n", op);
  exit (2);
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: sectest OP [OP...]\n");
      return 2;
    }
  for (int i = 1; i < argc; i++)
    {
      long r;
      errno = 0;
      r = run_op (argv[i]);
      printf ("%s ret=%ld errno=%d\n", argv[i], r, r == -1 ? errno : 0);
      fflush (stdout);
    }
  return 0;
}
