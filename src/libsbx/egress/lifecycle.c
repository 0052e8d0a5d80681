/* egress/lifecycle.c - the egress policy in a container's life (see
 * egress.h): the record in the state directory (net.json), installing the
 * rules at create, finding the namespace again to remove them or read the
 * counters.  */
#include <config.h>
#include "egress/egress_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
net_record (const sbx_net_policy *p, const char *id, const char *joined, const struct stat *st,
            const char *cgroup2_dir, bool has_table)
{
  oj_writer *w = oj_writer_new (true);
  cleanup_free char *table = sbx_net_table_name (id), *chain = sbx_net_chain_name (id);
  cleanup_free char *resolved = sbx_net_policy_resolved (p);

  oj_w_begin_object (w);
  oj_w_key (w, "table");
  if (has_table)
    oj_w_string (w, table);
  else
    oj_w_null (w); /* a pod member covered by the pod's rules */
  oj_w_key (w, "chain");
  oj_w_string (w, chain);
  oj_w_key (w, "netnsPath");
  if (joined)
    oj_w_string (w, joined);
  else
    oj_w_null (w);
  /* a member's way back to the pod's namespace once the sandbox (whose
     /proc/PID path the member joined) is gone: the sandbox's own path */
  oj_w_key (w, "podNetnsPath");
  if (p->pod_id && p->pod_netns)
    oj_w_string (w, p->pod_netns);
  else
    oj_w_null (w);
  oj_w_key (w, "netnsDev");
  oj_w_uint (w, st->st_dev);
  oj_w_key (w, "netnsIno");
  oj_w_uint (w, st->st_ino);
  oj_w_key (w, "cgroup2");
  if (cgroup2_dir)
    oj_w_string (w, cgroup2_dir);
  else
    oj_w_null (w);
  oj_w_key (w, "resolved");
  if (resolved)
    {
      oj_value *v = oj_parse (resolved, strlen (resolved), NULL);
      oj_w_value (w, v);
      oj_free (v);
    }
  else
    oj_w_begin_object (w), oj_w_end_object (w);
  sbx_net_record_policy (w, p);
  oj_w_end_object (w);
  return oj_writer_finish (w, NULL);
}

int
sbx_net_policy_install (const sbx_net_policy *p, const oci_config *c, int fd, const char *id, sbx_cgroup *cg,
                        bool rootless, int state_dirfd, sbx_error **err)
{
  cleanup_free char *record = NULL, *pod_dir = NULL;
  const char *joined = sbx_net_joined_netns (c);
  bool covered;
  const char *cg_dir = NULL;
  int level = 0;
  struct stat st;

  if (fstat (fd, &st) < 0)
    return sbx_error_sys (err, "stat the container's network namespace");
  if (cg)
    cg_dir = sbx_cgroup_unified_dir (cg, &level);
  if (cg_dir == NULL && joined && rootless)
    /* setns(2) into it needed CAP_SYS_ADMIN over its owning user
       namespace: one of the caller's (rootless podman's, for slirp4netns
       or pasta), so whatever else is in it is the caller's too */
    sbx_warn ("rootless: annotations " SBX_NET_PREFIX "*: the network namespace `%s` is joined by path "
              "and the container has no cgroup v2 to scope the rules to: they apply to every process "
              "in that namespace",
              joined);
  else if (cg_dir == NULL && joined)
    return sbx_error_set (err, ENOTSUP,
                          "annotations " SBX_NET_PREFIX "*: the network namespace `%s` is joined "
                          "by path, so the rules must match only this container's sockets, by "
                          "its cgroup v2, and this host has no unified cgroup hierarchy for it",
                          joined);
  if (cg_dir && p->sandbox)
    {
      /* The pod's cgroup: every container of the pod, the later ones too.  */
      pod_dir = sbx_net_pod_scope (cg_dir);
      if (pod_dir == NULL || level < 2)
        return sbx_error_set (err, EINVAL,
                              "annotations " SBX_NET_PREFIX "*: the pod sandbox's cgroup `%s` has "
                              "no parent of the pod's own to scope the policy to",
                              cg_dir);
      cg_dir = pod_dir;
      level--;
    }
  /* A member without a policy of its own, inside the pod's cgroup: the
     pod's rules cover it already.  */
  covered = p->inherited && cg_dir && sbx_net_cgroup_within (cg_dir, p->pod_cgroup2);
  record = net_record (p, id, joined, &st, cg_dir, !covered);
  /* Recorded first, so that a failure from here on is undone.  */
  if (sbx_write_file_atomic (state_dirfd, SBX_NET_STATE_FILE, record, strlen (record), 0600, err) < 0)
    return sbx_error_wrap (err, "save the egress policy record");
  if (covered)
    {
      sbx_debug ("container \"%s\": covered by the egress policy of pod sandbox \"%s\"", id, p->pod_id);
      return 0;
    }
  if (sbx_net_policy_apply (p, fd, id, cg_dir, level, err) < 0)
    return -1;
  sbx_debug ("container \"%s\": egress policy installed (%s)", id,
             cg_dir ? "scoped to its cgroup" : "whole network namespace");
  return 0;
}

int
sbx_net_pod_share (sbx_net_policy *p, int sandbox_dirfd, const oci_config *c, sbx_cgroup *cg, sbx_error **err)
{
  cleanup_close int rfd = -1, fd = -1;
  cleanup_free char *text = NULL, *parent = NULL, *sb_parent = NULL, *record = NULL;
  cleanup_net_policy sbx_net_policy *pod = NULL;
  const char *dir = NULL, *joined = sbx_net_joined_netns (c);
  const oj_value *path;
  oj_value *rec;
  struct stat st;
  int level = 0;

  if (p == NULL || p->pod_id == NULL || cg == NULL || joined == NULL
      || (dir = sbx_cgroup_unified_dir (cg, &level)) == NULL || level < 2
      || (parent = sbx_net_pod_scope (dir)) == NULL)
    return 0;
  if (sbx_net_pod_load (sandbox_dirfd, p->pod_id, c, false, &pod, err) < 0)
    return -1;
  if (pod == NULL || pod->sandbox || pod->pod_cgroup2 == NULL
      || (sb_parent = sbx_net_pod_scope (pod->pod_cgroup2)) == NULL || strcmp (sb_parent, parent) != 0)
    return 0; /* not the infra's own scope, or not the same pod cgroup */
  /* the namespace: the one the member joins, checked by sbx_net_pod_load */
  fd = open (joined, O_RDONLY | O_CLOEXEC);
  rfd = openat (sandbox_dirfd, SBX_NET_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || fstat (fd, &st) < 0 || rfd < 0 || sbx_read_fd (rfd, SBX_NET_RECORD_MAX, &text, NULL, err) < 0)
    return sbx_error_sys (err, "pod \"%s\": its network namespace or net.json", p->pod_id);
  rec = oj_parse (text, strlen (text), NULL);
  path = rec ? oj_object_get (rec, "netnsPath") : NULL;
  pod->sandbox = true;
  free (steal_ptr (pod->pod_id)); /* the sandbox's own record names no pod */
  record
      = net_record (pod, p->pod_id, path && path->type == OJ_STRING ? path->text : NULL, &st, parent, true);
  oj_free (rec);
  pod->pod_id = xstrdup (p->pod_id);
  /* rules first (the wider scope covers the infra's cgroup too), then
     the record: a failure in between leaves a record the teardown reads
     the same way */
  if (sbx_net_policy_apply (pod, fd, p->pod_id, parent, level - 1, err) < 0)
    return sbx_error_wrap (err, "pod \"%s\": re-scope its egress policy to the pod's cgroup", p->pod_id);
  if (sbx_write_file_atomic (sandbox_dirfd, SBX_NET_STATE_FILE, record, strlen (record), 0600, err) < 0)
    return sbx_error_wrap (err, "pod \"%s\": save the egress policy record", p->pod_id);
  sbx_debug ("pod \"%s\": egress policy re-scoped to the pod's cgroup `%s`", p->pod_id, parent);
  free (p->pod_cgroup2);
  p->pod_cgroup2 = steal_ptr (parent);
  return 0;
}

struct sbx_net_teardown
{
  int fd;
  char *id;
  bool own;         /* a table of its own (not only covered by its pod's) */
  bool pod_sandbox; /* its table is its pod's (scope "pod") */
  char *pod;        /* a member: the sandbox whose table covers it */
  bool keep_own;    /* a pod sandbox whose members remain */
  bool remove_pod;  /* the last member of a pod whose sandbox is gone */
  struct stat st;   /* the namespace */
};

static int
open_if_same (const char *path, const oj_value *rec)
{
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (fstat (fd, &st) < 0 || !sbx_net_json_uint_is (oj_object_get (rec, "netnsDev"), st.st_dev)
      || !sbx_net_json_uint_is (oj_object_get (rec, "netnsIno"), st.st_ino))
    {
      close (fd);
      return -1;
    }
  return fd;
}

static oj_value *
read_record (int state_dirfd)
{
  cleanup_close int rfd = openat (state_dirfd, SBX_NET_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  cleanup_free char *text = NULL;
  oj_value *rec;
  if (rfd < 0 || sbx_read_fd (rfd, SBX_NET_RECORD_MAX, &text, NULL, NULL) < 0)
    return NULL;
  rec = oj_parse (text, strlen (text), NULL);
  if (rec && rec->type != OJ_OBJECT)
    {
      oj_free (rec);
      rec = NULL;
    }
  return rec;
}

static bool
json_is (const oj_value *v, const char *text)
{
  return v && v->type == OJ_STRING && strcmp (v->text, text) == 0;
}

sbx_net_teardown *
sbx_net_teardown_prepare (int state_dirfd, const char *id, pid_t live_pid)
{
  oj_value *rec = read_record (state_dirfd);
  const oj_value *table, *pod;
  sbx_net_teardown *t;
  int fd = -1;

  if (rec == NULL)
    return NULL;
  table = oj_object_get (rec, "table");
  pod = oj_object_get (rec, "pod");
  /* the joined path; a member's also the sandbox's own (its /proc path
     is gone with the sandbox); then the live init's namespace */
  for (int k = 0; k < 2 && fd < 0; k++)
    {
      const oj_value *v = oj_object_get (rec, k ? "podNetnsPath" : "netnsPath");
      if (v && v->type == OJ_STRING)
        fd = open_if_same (v->text, rec);
    }
  if (fd < 0 && live_pid > 0)
    {
      char p[64];
      snprintf (p, sizeof p, "/proc/%d/ns/net", live_pid);
      fd = open_if_same (p, rec);
    }
  if (fd < 0)
    {
      oj_free (rec);
      return NULL;
    }
  t = xmalloc0 (sizeof *t);
  t->fd = fd;
  t->id = xstrdup (id);
  t->own = table && table->type == OJ_STRING;
  t->pod_sandbox = json_is (oj_object_get (rec, "scope"), "pod");
  t->pod = pod && pod->type == OJ_STRING ? xstrdup (pod->text) : NULL;
  fstat (fd, &t->st);
  oj_free (rec);
  return t;
}

const char *
sbx_net_teardown_pod (const sbx_net_teardown *t, bool *sandbox)
{
  *sandbox = t && t->pod_sandbox;
  if (t == NULL)
    return NULL;
  return t->pod_sandbox ? t->id : t->pod;
}

/* Is dirfd's record for namespace st, and (pod not NULL) a member of
   pod?  A sandbox's record, whatever its scope (a podman infra's that
   no member re-scoped), holds the tables it installed.  */
static bool
record_of_pod (const struct stat *st, int dirfd, const char *pod)
{
  oj_value *rec = read_record (dirfd);
  bool yes = rec && sbx_net_json_uint_is (oj_object_get (rec, "netnsDev"), st->st_dev)
             && sbx_net_json_uint_is (oj_object_get (rec, "netnsIno"), st->st_ino)
             && (pod == NULL || json_is (oj_object_get (rec, "pod"), pod));
  oj_free (rec);
  return yes;
}

bool
sbx_net_teardown_member (const sbx_net_teardown *t, int dirfd)
{
  bool sandbox;
  const char *pod = sbx_net_teardown_pod (t, &sandbox);
  return pod && record_of_pod (&t->st, dirfd, pod);
}

bool
sbx_net_teardown_holder (const sbx_net_teardown *t, int dirfd)
{
  bool sandbox;
  return sbx_net_teardown_pod (t, &sandbox) && !sandbox && record_of_pod (&t->st, dirfd, NULL);
}

const char *
sbx_net_policy_pod (const sbx_net_policy *p)
{
  return p ? p->pod_id : NULL;
}

int
sbx_net_pod_held (const sbx_net_policy *p, int sandbox_dirfd, int netns_fd, sbx_error **err)
{
  struct stat st;
  if (p == NULL || p->pod_id == NULL)
    return 0;
  if (sandbox_dirfd >= 0 && fstat (netns_fd, &st) == 0 && record_of_pod (&st, sandbox_dirfd, NULL))
    return 0;
  return sbx_error_set (err, ENOENT,
                        "pod sandbox \"%s\" was deleted while this container was being created: the "
                        "pod's egress policy is gone with it",
                        p->pod_id);
}

void
sbx_net_teardown_pod_table (sbx_net_teardown *t, bool members_left)
{
  if (t == NULL)
    return;
  if (t->pod_sandbox)
    t->keep_own = members_left;
  else
    t->remove_pod = t->pod && !members_left;
}

void
sbx_net_record_drop (int state_dirfd)
{
  unlinkat (state_dirfd, SBX_NET_STATE_FILE, 0);
}

static void
teardown_free (sbx_net_teardown *t)
{
  close (t->fd);
  free (t->id);
  free (t->pod);
  free (t);
}

void
sbx_net_teardown_finish (sbx_net_teardown *t)
{
  cleanup_error sbx_error *e = NULL;
  if (t == NULL)
    return;
  if (t->own && !t->keep_own && sbx_net_policy_remove (t->fd, t->id, &e) < 0)
    sbx_warn ("container \"%s\": %s", t->id, e->msg);
  else if (t->keep_own)
    sbx_debug ("pod sandbox \"%s\": egress table kept for the pod's containers left", t->id);
  if (t->remove_pod)
    {
      sbx_error_freep (&e);
      if (sbx_net_policy_remove (t->fd, t->pod, &e) < 0)
        sbx_warn ("container \"%s\": the egress table of pod \"%s\": %s", t->id, t->pod, e->msg);
      else
        sbx_debug ("container \"%s\": the last of pod \"%s\", its egress table removed", t->id, t->pod);
    }
  teardown_free (t);
}

int
sbx_net_container_counters (int state_dirfd, const char *id, pid_t live_pid, uint64_t *packets,
                            uint64_t *bytes, sbx_error **err)
{
  sbx_net_teardown *t = sbx_net_teardown_prepare (state_dirfd, id, live_pid);
  int r;
  if (t && !t->own)
    teardown_free (t), t = NULL;
  if (t == NULL)
    return sbx_error_set (err, ENOENT, "container \"%s\" has no egress policy in place", id);
  r = sbx_net_policy_counters (t->fd, id, packets, bytes, err);
  teardown_free (t);
  return r;
}

char *
sbx_net_container_denied (int state_dirfd, const char *id, pid_t live_pid)
{
  sbx_net_teardown *t = sbx_net_teardown_prepare (state_dirfd, id, live_pid);
  cleanup_error sbx_error *e = NULL;
  char *json = NULL;
  if (t && !t->own)
    teardown_free (t), t = NULL;
  if (t == NULL)
    return NULL;
  if (sbx_net_policy_denied (t->fd, id, &json, &e) < 0)
    sbx_debug ("%s", e->msg);
  teardown_free (t);
  return json;
}
