/* container/pod.c - the containers of a pod (CRI sandbox and members,
 * podman infra and members) at create and delete: the pod's egress policy
 * found through the sandbox, the pod's cgroup shared with it, and the
 * pod's table kept while any member is left (egress.h, docs/annotations.md
 * "Pods").  */
#include <config.h>
#include "container/container.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "container/container_internal.h"
#include "core/core.h"
#include "egress/egress.h"

/* The egress policy of the pod a container belongs to: its sandbox,
   named by the CRI / CRI-O sandbox ID annotation, else the container of
   this root whose policy record is for the network namespace the
   container joins.  NULL when there is none.  */
int
sbx_container_find_pod_policy (const char *root, const char *id, const oci_config *c, sbx_net_policy **out,
                               sbx_error **err)
{
  const char *sid = sbx_net_sandbox_id (c);
  cleanup_strv char **ids = NULL;

  *out = NULL;
  if (sbx_net_is_sandbox (c))
    return 0;
  if (sid)
    {
      sbx_state *s = NULL;
      int r;
      if (strcmp (sid, id) == 0 || sbx_id_validate (sid, NULL) < 0
          || sbx_state_open (root, sid, &s, NULL) < 0)
        return 0; /* not a sandbox of ours */
      r = sbx_net_pod_load (s->dir_fd, sid, c, false, out, err);
      sbx_state_free (s);
      return r;
    }
  /* No sandbox ID: the namespace itself, when it is a pod sandbox's (a
     container that only shares another one's namespace is not governed by
     that one's policy).  Only a joined namespace can be a sandbox's.  */
  if (!sbx_net_joins_netns (c) || sbx_state_list (root, &ids, NULL) < 0)
    return 0;
  for (size_t i = 0; ids[i] && *out == NULL; i++)
    {
      sbx_state *s = NULL;
      if (strcmp (ids[i], id) == 0 || sbx_state_open (root, ids[i], &s, NULL) < 0)
        continue;
      int r = sbx_net_pod_load (s->dir_fd, ids[i], c, true, out, err);
      sbx_state_free (s);
      if (r < 0)
        return -1;
    }
  return 0;
}

/* A pod member's cgroup shares the pod's (its parent) with the sandbox
   named by the CRI / CRI-O sandbox ID: if the sandbox's create made it,
   the last of them to go removes it (sbx_cgroup_share_parent).  */
void
sbx_container_share_pod_cgroup (const char *root, const char *id, const oci_config *c, sbx_cgroup *cg)
{
  const char *sid = sbx_net_sandbox_id (c);
  sbx_state *s = NULL;
  if (sid == NULL || strcmp (sid, id) == 0 || sbx_id_validate (sid, NULL) < 0
      || sbx_state_open (root, sid, &s, NULL) < 0)
    return;
  sbx_cgroup_share_parent (cg, s->st->cgroup);
  sbx_state_free (s);
}

/* A podman pod member: its infra container's policy goes to the pod's
   cgroup, one table for the pod (sbx_net_pod_share).  */
static int
share_podman_pod_policy (const char *root, const oci_config *c, sbx_net_policy *np, sbx_cgroup *cg,
                         sbx_error **err)
{
  const char *sid = sbx_net_sandbox_id (c);
  oci_config *sc = NULL;
  sbx_state *s = NULL;
  int r = 0;
  if (np == NULL || !sbx_net_is_podman_member (c) || sbx_id_validate (sid, NULL) < 0
      || sbx_state_open (root, sid, &s, NULL) < 0)
    return 0;
  if (sbx_state_config (s, &sc, NULL) == 0 && sbx_net_is_podman_infra (sc))
    r = sbx_net_pod_share (np, s->dir_fd, c, cg, err);
  oci_config_free (sc);
  sbx_state_free (s);
  return r;
}

/* The egress rules and their record.  A pod member's record is written
   under the root's lock, after checking that its sandbox still holds the
   pod's rules: a sandbox deleted at the same time either sees the member
   (and keeps its table) or has dropped its record (and the member is
   refused), never neither (sbx_container_net_teardown).  */
int
sbx_container_net_install (const char *root, sbx_state *s, const oci_config *c, sbx_net_policy *np, int netns,
                           sbx_cgroup *cg, bool rootless, sbx_error **err)
{
  const char *pod = sbx_net_policy_pod (np);
  cleanup_close int sfd = -1;
  int r;

  if (share_podman_pod_policy (root, c, np, cg, err) < 0)
    return -1;
  if (pod == NULL)
    return sbx_net_policy_install (np, c, netns, s->id, cg, rootless, s->dir_fd, err);
  if (sbx_state_lock_root (s, err) < 0)
    return -1;
  if (sbx_id_validate (pod, NULL) == 0)
    sfd = openat (s->root_fd, pod, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  r = sbx_net_pod_held (np, sfd, netns, err);
  if (r == 0)
    r = sbx_net_policy_install (np, c, netns, s->id, cg, rootless, s->dir_fd, err);
  sbx_state_unlock_root (s);
  return r;
}

/* ---------------------------------------------------------------- delete */

/* Does another container of the root count for t's pod (a member's
   net.json names it)?  */
static bool
pod_members_left (sbx_state *s, const sbx_net_teardown *t)
{
  cleanup_strv char **ids = NULL;
  bool left = false;
  /* unreadable: keep the table (fail closed) */
  if (sbx_state_list_at (s->root_fd, &ids, NULL) < 0)
    return true;
  for (size_t i = 0; ids[i] && !left; i++)
    {
      cleanup_close int fd = -1;
      if (strcmp (ids[i], s->id) == 0)
        continue;
      fd = openat (s->root_fd, ids[i], O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      left = fd >= 0 && sbx_net_teardown_member (t, fd);
    }
  return left;
}

/* The egress rules go after the container's processes.  A pod's table
   (the sandbox's) covers every member: deleting the sandbox first keeps
   it while members are left, and the last member to go removes it.  The
   decision and the record's removal happen under the root's lock, so
   that two deletes of a pod never both leave the table to the other.  A
   delete killed before the record is dropped decides again.  */
void
sbx_container_net_teardown (sbx_state *s, sbx_net_teardown *nt)
{
  bool sandbox, locked;
  const char *pod = sbx_net_teardown_pod (nt, &sandbox);

  if (pod == NULL)
    {
      sbx_net_teardown_finish (nt);
      sbx_test_kill_point ("delete:net");
      return;
    }
  /* Without the lock a member's create could check the table and record
     itself while we remove it: keep the table then (fail closed; it goes
     with the pod's namespace).  */
  locked = sbx_state_lock_root (s, NULL) == 0;
  if (sandbox)
    sbx_net_teardown_pod_table (nt, !locked || pod_members_left (s, nt));
  else
    {
      cleanup_close int sfd = sbx_id_validate (pod, NULL) < 0
                                  ? -1
                                  : openat (s->root_fd, pod, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      bool held = sfd >= 0 && sbx_net_teardown_holder (nt, sfd);
      sbx_net_teardown_pod_table (nt, !locked || held || pod_members_left (s, nt));
    }
  sbx_net_teardown_finish (nt);
  sbx_test_kill_point ("delete:net");
  sbx_net_record_drop (s->dir_fd);
  if (locked)
    sbx_state_unlock_root (s);
}
