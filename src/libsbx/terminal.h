/* terminal.h - pseudo-terminals for process.terminal: allocate the pty in
 * the container's devpts, make the slave the controlling terminal and stdio,
 * and pass the master to --console-socket with SCM_RIGHTS.  */
#ifndef SBX_TERMINAL_H
#define SBX_TERMINAL_H

#include "error.h"
#include "ocispec.h"

/* Open a new pty from /dev/ptmx (of the current root); returns the master
   fd, and the slave's path in *slave (malloc'd).  */
int sbx_pty_open (char **slave, sbx_error **err);
/* The slave of master, opened from the master itself (TIOCGPTPEER), so no
   path in the container's /dev can stand in for it; slave (the name) is
   only used on kernels without the ioctl.  Returns the fd.  */
int sbx_pty_open_peer (int master, const char *slave, sbx_error **err);
/* In the process that will exec: setsid, open slave, TIOCSCTTY, dup onto
   0/1/2, apply consoleSize (may be NULL).  */
int sbx_pty_setup_slave (const char *slave, const oci_console_size *size, sbx_error **err);
/* Same with the slave already open (fd is consumed; slave names it in
   messages).  */
int sbx_pty_setup_slave_fd (int fd, const char *slave, const oci_console_size *size, sbx_error **err);
/* Connect to a unix socket path.  Returns the connected fd.  */
int sbx_unix_connect (const char *path, sbx_error **err);
/* Send / receive one fd with SCM_RIGHTS (with a short text payload, the
   pty name, as runc sends).  recv returns the fd.  */
int sbx_send_fd (int sock, int fd, const char *name, sbx_error **err);
int sbx_recv_fd (int sock, sbx_error **err);
/* Same, also returning the text payload in *name (malloc'd; pass NULL
   when not wanted).  */
int sbx_recv_fd_name (int sock, char **name, sbx_error **err);
/* Copy between our stdio and the master until the master hangs up (used by
   `run`/`exec` in the foreground with a terminal but no console socket).
   Puts our terminal (if stdin is one) in raw mode and restores it.  With
   pidfd >= 0, the signals read from fwd_sigfd (a signalfd) are sent on to
   that process meanwhile; SIGWINCH is ours, for the window size.  */
int sbx_pty_proxy (int master, int fwd_sigfd, int pidfd, sbx_error **err);

#endif
