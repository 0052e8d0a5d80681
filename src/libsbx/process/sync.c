/* sync.c - see sync.h.  A message is a header (step, errno) followed by an
 * optional NUL-terminated text; SOCK_SEQPACKET keeps the boundaries.  */
#include <config.h>
#include "process/process.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"

#define SYNC_MSG_MAX (256 * 1024)

struct sync_hdr
{
  int step;
  int errno_;
};

const char *
sbx_process_sync_step_name (sbx_sync_step s)
{
  static const char *names[] = { "?",       "go",         "runtime-hooks", "hooks-done", "pty",
                                 "created", "exec-ready", "error",         "child-pid",  "cgroup" };
  return (unsigned)s < sizeof names / sizeof *names ? names[s] : "?";
}

/* EPIPE/ECONNRESET: the peer hung up, which is SBX_SYNC_HUNG_UP as for the
   expect functions.  */
static int
send_failed (int step, sbx_error **err)
{
  bool hung_up = errno == EPIPE || errno == ECONNRESET;
  sbx_error_sys (err, "sync: send `%s`", sbx_process_sync_step_name (step));
  return hung_up ? SBX_SYNC_HUNG_UP : -1;
}

static int
send_msg_fds (int sock, int step, int errno_, const int *fds, size_t nfds, const char *text, sbx_error **err)
{
  struct sync_hdr h = { step, errno_ };
  size_t tl = text ? strlen (text) : 0;
  if (tl >= SYNC_MSG_MAX - sizeof h)
    tl = SYNC_MSG_MAX - sizeof h - 1;
  struct iovec iov[2] = { { &h, sizeof h }, { (void *)(text ? text : ""), tl + 1 } };

  if (sbx_sendmsg_fds (sock, iov, 2, fds, nfds) < 0)
    return send_failed (step, err);
  return 0;
}

static int
send_msg (int sock, int step, int errno_, int fd, const char *text, sbx_error **err)
{
  return send_msg_fds (sock, step, errno_, &fd, fd >= 0, text, err);
}

int
sbx_process_sync_send_fds (int sock, sbx_sync_step step, const int *fds, size_t nfds, const char *text,
                           sbx_error **err)
{
  return send_msg_fds (sock, step, 0, fds, nfds, text, err);
}

int
sbx_process_sync_send_text (int sock, sbx_sync_step step, int fd, const char *text, sbx_error **err)
{
  return send_msg (sock, step, 0, fd, text, err);
}

int
sbx_process_sync_send (int sock, sbx_sync_step step, int fd, sbx_error **err)
{
  return send_msg (sock, step, 0, fd, NULL, err);
}

int
sbx_process_sync_send_plain (int sock, sbx_sync_step step, sbx_error **err)
{
  char buf[sizeof (struct sync_hdr) + 1] = { 0 };
  struct sync_hdr h = { step, 0 };
  memcpy (buf, &h, sizeof h);
  while (write (sock, buf, sizeof buf) < 0)
    if (errno != EINTR)
      return send_failed (step, err);
  return 0;
}

void
sbx_process_sync_send_error (int sock, const sbx_error *e)
{
  send_msg (sock, SYNC_ERROR, e ? e->errno_ : 0, -1, e ? e->msg : "unknown error", NULL);
}

int
sbx_process_sync_expect_fds (int sock, sbx_sync_step want, int *fds, size_t max, size_t *nfds, char **text,
                             sbx_error **err)
{
  /* not zeroed: a recycled heap chunk would be written whole, charged to
     the container when the init waits in its cgroup */
  cleanup_free char *buf = xrealloc (NULL, SYNC_MSG_MAX + 1);
  struct iovec iov = { buf, SYNC_MSG_MAX };
  union
  {
    char buf[CMSG_SPACE (SBX_MAX_SEND_FDS * sizeof (int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh
      = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct sync_hdr h;
  ssize_t n;
  int got[SBX_MAX_SEND_FDS];
  size_t ngot = 0;
  const char *payload;

  *nfds = 0;
  /* A peer that exited with a message of ours unread leaves ECONNRESET,
     which the kernel reports (once) before what the peer sent: its error,
     queued, comes with the next call.  */
  for (bool reset = false;;)
    {
      n = recvmsg (sock, &mh, MSG_CMSG_CLOEXEC);
      if (n >= 0 || !(errno == EINTR || (errno == ECONNRESET && !reset)))
        break;
      reset = reset || errno == ECONNRESET;
    }
  if (n < 0 && errno != ECONNRESET)
    {
      sbx_error_sys (err, "sync: waiting for `%s`", sbx_process_sync_step_name (want));
      return -1;
    }
  for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR (&mh) : NULL; c; c = CMSG_NXTHDR (&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN (0)) / sizeof (int) && ngot < SBX_MAX_SEND_FDS; k++)
        memcpy (&got[ngot++], CMSG_DATA (c) + k * sizeof (int), sizeof (int));
  /* ECONNRESET: it hung up with our message unread.  */
  if (n < (ssize_t)sizeof h)
    {
      for (size_t k = 0; k < ngot; k++)
        close (got[k]);
      sbx_error_set (err, SBX_SYNC_HUNG_UP_ERRNO, "the container process exited while waiting for `%s`",
                     sbx_process_sync_step_name (want));
      return SBX_SYNC_HUNG_UP;
    }
  buf[n] = '\0';
  memcpy (&h, buf, sizeof h);
  payload = buf + sizeof h;
  if (h.step != (int)want || ngot > max)
    {
      for (size_t k = 0; k < ngot; k++)
        close (got[k]);
      if (h.step == SYNC_ERROR)
        sbx_error_set (err, h.errno_, "%s", payload);
      else if (h.step == (int)want)
        sbx_error_set (err, EPROTO, "sync: `%s` with %zu descriptors, at most %zu expected",
                       sbx_process_sync_step_name (want), ngot, max);
      else
        sbx_error_set (err, EPROTO, "sync: expected `%s`, got `%s`", sbx_process_sync_step_name (want),
                       sbx_process_sync_step_name (h.step));
      return -1;
    }
  memcpy (fds, got, ngot * sizeof *got);
  *nfds = ngot;
  if (text)
    *text = xstrdup (payload);
  return 0;
}

int
sbx_process_sync_expect_text (int sock, sbx_sync_step want, int *fd_out, char **text, sbx_error **err)
{
  int fds[SBX_MAX_SEND_FDS];
  size_t n = 0;
  int r = sbx_process_sync_expect_fds (sock, want, fds, SBX_MAX_SEND_FDS, &n, text, err);
  if (r < 0)
    return r;
  /* one at most is meant; any other is closed */
  for (size_t k = fd_out ? 1 : 0; k < n; k++)
    close (fds[k]);
  if (fd_out)
    *fd_out = n ? fds[0] : -1;
  return 0;
}

int
sbx_process_sync_expect (int sock, sbx_sync_step want, int *fd_out, sbx_error **err)
{
  return sbx_process_sync_expect_text (sock, want, fd_out, NULL, err);
}
