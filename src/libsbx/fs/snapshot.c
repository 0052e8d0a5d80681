/* snapshot.c - filesystem snapshots of a container (see fs.h): create, list,
 * delete, verify, reset (restore --from-snapshot) and fork (create
 * --from-snapshot).
 *
 * <root>/<id>/snapshots/<name>/manifest.json + tree/ (+ process/, the CRIU
 * image of create --with-process, made through the hook of fs.h by
 * checkpoint/snapshot.c).  A snapshot is built
 * in snapshots/.tmp-<name>-XXXXXX and renamed into place only when the tree
 * and its manifest are complete, so a create killed half-way leaves nothing
 * that list, restore or a fork would take (the next create, under the same
 * lock, removes the leftover).  Every use re-checks the tree against the
 * manifest first.  */
#include <config.h>
#include "fs/fs.h"
#include "fs/fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "state/state.h"

#define SNAP_DIR "snapshots"
#define SNAP_PROCESS "process"
/* 2: files, the content digests; 3: xattrs by policy, an optional process
   image.  */
#define SNAP_VERSION 3
#define MANIFEST_MAX (256 << 20)

static void
state_freep (sbx_state **s)
{
  sbx_state_free (*s);
}
#define cleanup_state __attribute__ ((cleanup (state_freep)))

static void
manifest_freep (sbx_snapshot_manifest **m)
{
  ocispec_free (&sbx_snapshot_manifest_type, *m);
}
#define cleanup_manifest __attribute__ ((cleanup (manifest_freep)))

int
sbx_fs_snapshot_name_validate (const char *name, sbx_error **err)
{
  return sbx_name_validate ("snapshot name", name, err);
}

int
sbx_fs_snapshot_manifest_parse (const char *text, size_t len, const char *name, sbx_snapshot_manifest **out,
                                sbx_error **err)
{
  cleanup_free char *msg = NULL;
  sbx_snapshot_manifest *m = ocispec_parse (&sbx_snapshot_manifest_type, text, len, &msg);
  const char *bad = NULL;

  if (m == NULL)
    return sbx_error_set (err, EINVAL, "snapshot \"%s\": manifest is corrupt: %s", name, msg);
  if (m->version == 1 || m->version == 2)
    {
      int v = m->version;
      ocispec_free (&sbx_snapshot_manifest_type, m);
      return sbx_error_set (err, EINVAL,
                            "snapshot \"%s\": manifest version %d (an older sbxrun: %s): refused; take the "
                            "snapshot again",
                            name, v, v == 1 ? "no content digests" : "xattrs copied without the policy");
    }
  if (m->version != SNAP_VERSION)
    bad = "version";
  else if (strcmp (m->kind, SBX_SNAPSHOT_OVERLAY) && strcmp (m->kind, SBX_SNAPSHOT_FULL))
    bad = "kind";
  else if (strlen (m->tree_digest) != 64 || strspn (m->tree_digest, "0123456789abcdef") != 64)
    bad = "treeDigest";
  else if (!sbx_has_prefix (m->config_digest, "sha256:"))
    bad = "configDigest";
  else if (strcmp (m->kind, SBX_SNAPSHOT_OVERLAY) == 0 && (m->lower == NULL || m->lower[0] != '/'))
    bad = "lower";
  else if (m->process
           && (strlen (m->process->tree_digest) != 64
               || strspn (m->process->tree_digest, "0123456789abcdef") != 64))
    bad = "process.treeDigest";
  if (bad)
    {
      ocispec_free (&sbx_snapshot_manifest_type, m);
      return sbx_error_set (err, EINVAL, "snapshot \"%s\": manifest is corrupt: bad `%s`", name, bad);
    }
  *out = m;
  return 0;
}

char *
sbx_fs_snapshot_manifest_json (const sbx_snapshot_manifest *m, size_t *len)
{
  return ocispec_generate (&sbx_snapshot_manifest_type, m, true, len);
}

/* What a walk found against what the manifest says of a part (tree,
   process image).  */
static int
sums_match (const sbx_tree_sum *sum, const char *name, const char *part, unsigned long long entries,
            unsigned long long bytes, const char *digest, sbx_error **err)
{
  if (strcmp (sum->digest, digest) == 0 && sum->entries == entries && sum->bytes == bytes)
    return 0;
  return sbx_error_set (err, EBADMSG,
                        "snapshot \"%s\": %s does not match its manifest (%llu entries, %llu bytes, digest "
                        "%.12s; manifest says %llu, %llu, %.12s): truncated or tampered, refused",
                        name, part, sum->entries, sum->bytes, sum->digest, entries, bytes, digest);
}

/* CRIU writes a flat directory of regular files.  Anything else (a
   symlink where CRIU would open its log, a directory) is not its.  */
static int
process_flat (int pfd, const char *name, sbx_error **err)
{
  cleanup_strv char **names = NULL;
  size_t n;
  if (sbx_fs_dir_names (pfd, &names, &n, err) < 0)
    return sbx_error_wrap (err, "snapshot \"%s\": process image", name);
  for (size_t i = 0; i < n; i++)
    {
      struct stat st;
      if (fstatat (pfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG (st.st_mode))
        return sbx_error_set (err, EBADMSG,
                              "snapshot \"%s\": process image: `%s` is not a regular file: tampered, refused",
                              name, names[i]);
    }
  return 0;
}

/* The process image against the manifest, content included (it is small),
   copied into the empty directory copy_to when >= 0.  process/ without a
   manifest entry, or the other way round, is refused.  */
static int
process_check (int snapfd, const char *name, const sbx_snapshot_manifest *m, int copy_to, sbx_error **err)
{
  cleanup_close int pfd = openat (snapfd, SNAP_PROCESS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  const sbx_snapshot_process *p = m->process;
  sbx_snapshot_manifest view = { 0 };
  sbx_tree_sum sum = { 0 };
  int r;

  if (p == NULL)
    {
      if (pfd >= 0 || errno != ENOENT)
        return sbx_error_set (
            err, EBADMSG, "snapshot \"%s\": a process image its manifest does not list: tampered, refused",
            name);
      return 0;
    }
  if (pfd < 0)
    return sbx_error_set (err, EBADMSG, "snapshot \"%s\": its process image (process/) is missing: refused",
                          name);
  if (process_flat (pfd, name, err) < 0)
    return -1;
  /* What the walk checks the files against.  */
  view.files_keys = p->files_keys;
  view.files_values = p->files_values;
  view.files_len = p->files_len;
  r = copy_to >= 0 ? sbx_fs_tree_copy (pfd, copy_to, &view, 0, &sum, err)
                   : sbx_fs_tree_sum_of (pfd, &view, &sum, err);
  sbx_tree_sum_clear (&sum);
  if (r < 0)
    return sbx_error_wrap (err, "snapshot \"%s\": process image", name);
  return sums_match (&sum, name, "process image", p->entries, p->bytes, p->tree_digest, err);
}

int
sbx_fs_snapshot_verify_dir (int snapfd, const char *name, bool content, sbx_snapshot_manifest **out,
                            sbx_error **err)
{
  cleanup_free char *text = NULL;
  cleanup_close int mfd = -1, tfd = -1;
  cleanup_manifest sbx_snapshot_manifest *m = NULL;
  sbx_tree_sum sum = { 0 };
  size_t len;

  mfd = openat (snapfd, "manifest.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (mfd < 0)
    return sbx_error_sys (err, "snapshot \"%s\": manifest", name);
  if (sbx_read_fd (mfd, MANIFEST_MAX, &text, &len, err) < 0)
    return sbx_error_wrap (err, "snapshot \"%s\": manifest", name);
  if (sbx_fs_snapshot_manifest_parse (text, len, name, &m, err) < 0)
    return -1;
  tfd = openat (snapfd, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    return sbx_error_sys (err, "snapshot \"%s\": tree", name);
  if (sbx_fs_tree_sum_of (tfd, content ? m : NULL, &sum, err) < 0)
    return sbx_error_wrap (err, "snapshot \"%s\"", name);
  if (sums_match (&sum, name, "tree", m->entries, m->bytes, m->tree_digest, err) < 0)
    return -1;
  if (process_check (snapfd, name, m, -1, err) < 0)
    return -1;
  if (out)
    *out = steal_ptr (m);
  return 0;
}

/* snapshots/<name> of an open state, verified; the fd of the snapshot's
   directory.  */
static int
open_snapshot (sbx_state *s, const char *name, sbx_snapshot_manifest **m, sbx_error **err)
{
  cleanup_close int fd = -1;
  if (sbx_fs_snapshot_name_validate (name, err) < 0)
    return -1;
  fd = openat (s->dir_fd, SNAP_DIR "/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0)
    {
      int sub = openat (fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = sub;
    }
  if (fd < 0)
    {
      if (errno == ENOENT)
        return sbx_error_set (err, ENOENT, "container \"%s\" has no snapshot \"%s\"", s->id, name);
      return sbx_error_sys (err, "snapshot \"%s\" of container \"%s\"", name, s->id);
    }
  /* The content is checked by the copy that follows (fs.h).  */
  if (sbx_fs_snapshot_verify_dir (fd, name, false, m, err) < 0)
    return sbx_error_wrap (err, "container \"%s\"", s->id);
  return steal_fd (&fd);
}

/* sha256:<hex> of the saved config.json of state dir dirfd.  */
static int
config_digest (int dirfd, char **out, sbx_error **err)
{
  cleanup_free char *text = NULL;
  cleanup_close int fd = openat (dirfd, "config.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  unsigned char d[32];
  char hex[65];
  size_t len;
  if (fd < 0 || sbx_read_fd (fd, 64 << 20, &text, &len, err) < 0)
    return fd < 0 ? sbx_error_sys (err, "saved config") : -1;
  sbx_sha256 (text, len, d);
  sbx_sha256_hex (d, hex);
  *out = xasprintf ("sha256:%s", hex);
  return 0;
}

/* Is the container an overlay one (upper/ in its state dir)?  */
static bool
has_overlay (sbx_state *s)
{
  struct stat st;
  return fstatat (s->dir_fd, SBX_OVERLAY_UPPER, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode);
}

/* The leftovers of snapshot creates that died (we hold the lock: no
   create is running).  */
static void
remove_stale (int snapsfd)
{
  cleanup_strv char **names = NULL;
  cleanup_error sbx_error *e = NULL;
  size_t n = 0;
  if (sbx_fs_dir_names (snapsfd, &names, &n, &e) < 0)
    return;
  for (size_t i = 0; i < n; i++)
    if (sbx_has_prefix (names[i], ".tmp-"))
      sbx_remove_tree_at (snapsfd, names[i]);
}

/* A fresh unpredictable directory name under dirfd: prefix + 6 chars.  */
int
sbx_fs_mkdtemp_at (int dirfd, const char *prefix, char **out, sbx_error **err)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (int tries = 0; tries < 100; tries++)
    {
      unsigned char rnd[6];
      char sfx[7];
      char *n;
      if (getentropy (rnd, sizeof rnd) < 0)
        return sbx_error_sys (err, "getentropy");
      for (int i = 0; i < 6; i++)
        sfx[i] = chars[rnd[i] % (sizeof chars - 1)];
      sfx[6] = '\0';
      n = xasprintf ("%s%s", prefix, sfx);
      if (mkdirat (dirfd, n, 0700) == 0)
        {
          *out = n;
          return 0;
        }
      free (n);
      if (errno != EEXIST)
        return sbx_error_sys (err, "create temporary directory");
    }
  return sbx_error_set (err, EEXIST, "create temporary directory: no free name");
}

int
sbx_fs_snapshot_commit (int snapsfd, const char *tmp, const char *name, sbx_error **err)
{
  cleanup_close int tfd = openat (snapsfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  /* On disk before it is visible: a crash (power cut included) after the
     rename finds a whole snapshot, before it a leftover .tmp-.  One
     syncfs(2) of the filesystem, not an fsync (a journal commit) per
     file.  */
  if (tfd < 0 || syncfs (tfd) < 0)
    return sbx_error_sys (err, "snapshot \"%s\": %s", name, tfd < 0 ? "open" : "sync to disk");
  if (renameat2 (snapsfd, tmp, snapsfd, name, RENAME_NOREPLACE) < 0)
    {
      if (errno == EEXIST)
        return sbx_error_set (err, EEXIST, "snapshot \"%s\" already exists", name);
      return sbx_error_sys (err, "snapshot \"%s\": rename into place", name);
    }
  if (fsync (snapsfd) < 0)
    return sbx_error_sys (err, "snapshot \"%s\": sync snapshots/", name);
  return 0;
}

int
sbx_fs_snapshot_open_store (int state_dirfd, bool create, sbx_error **err)
{
  int fd;
  if (create && mkdirat (state_dirfd, SNAP_DIR, 0700) < 0 && errno != EEXIST)
    return sbx_error_sys (err, "create " SNAP_DIR "/");
  fd = openat (state_dirfd, SNAP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sbx_error_sys (err, SNAP_DIR "/");
  return fd;
}

/* The hook's process image, into snapsfd/tmp/process; its sums in *p.  */
static int
build_process (sbx_state *s, int tfd, const char *tmp, const sbx_snapshot_hook *hook, sbx_snapshot_process *p,
               sbx_tree_sum *sum, sbx_error **err)
{
  cleanup_free char *dir = xasprintf ("%s/" SNAP_DIR "/%s/" SNAP_PROCESS, s->dir, tmp);
  cleanup_close int pfd = -1;
  if (mkdirat (tfd, SNAP_PROCESS, 0700) < 0)
    return sbx_error_sys (err, "create the snapshot's process/");
  if (hook->frozen (hook->data, s, dir, err) < 0)
    return -1;
  pfd = openat (tfd, SNAP_PROCESS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (pfd < 0 || sbx_fs_tree_sum_record (pfd, sum, err) < 0)
    return pfd < 0 ? sbx_error_sys (err, "open the snapshot's process/")
                   : sbx_error_wrap (err, "process image");
  p->entries = sum->entries;
  p->has_entries = true;
  p->bytes = sum->bytes;
  p->has_bytes = true;
  p->tree_digest = sum->digest;
  p->files_keys = sum->files_keys;
  p->files_values = sum->files_values;
  p->files_len = sum->files_len;
  return 0;
}

/* Copy the container's tree (frozen if it runs) into snapsfd/tmp, and with
   a hook its process image first, in the same frozen moment.  */
static int
build (sbx_state *s, int snapsfd, const char *tmp, const char *name, const sbx_snapshot_hook *hook,
       sbx_error **err)
{
  cleanup_close int tfd = -1, srcfd = -1;
  cleanup_free char *cdigest = NULL, *json = NULL;
  sbx_snapshot_manifest m = { .version = SNAP_VERSION, .has_version = true };
  sbx_snapshot_process proc = { 0 };
  bool overlay = has_overlay (s);
  sbx_tree_sum sum = { 0 }, psum = { 0 };
  size_t len;
  int r;

  if (config_digest (s->dir_fd, &cdigest, err) < 0)
    return -1;
  srcfd = overlay ? openat (s->dir_fd, SBX_OVERLAY_UPPER, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                  : open (s->st->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (srcfd < 0)
    return sbx_error_sys (err, "open %s", overlay ? "the overlay's upper dir" : s->st->rootfs);
  tfd = openat (snapsfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tfd < 0)
    return sbx_error_sys (err, "open the snapshot's directory");
  if (hook && build_process (s, tfd, tmp, hook, &proc, &psum, err) < 0)
    {
      sbx_tree_sum_clear (&psum);
      return -1;
    }
  if (mkdirat (tfd, "tree", 0700) < 0)
    {
      sbx_tree_sum_clear (&psum);
      return sbx_error_sys (err, "create snapshot tree");
    }
  {
    cleanup_close int dst = openat (tfd, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0)
      return sbx_error_sys (err, "open snapshot tree");
    /* The rename that publishes it follows a sync of every file and
       directory (sbx_fs_snapshot_commit).  */
    if (sbx_fs_tree_copy (srcfd, dst, NULL, SBX_TREE_FILE_CAPS, &sum, err) < 0)
      {
        sbx_tree_sum_clear (&psum);
        return sbx_error_wrap (err, "copy");
      }
  }
  m.name = (char *)name;
  m.kind = (char *)(overlay ? SBX_SNAPSHOT_OVERLAY : SBX_SNAPSHOT_FULL);
  m.source = s->id;
  m.created = sbx_now_rfc3339 ();
  m.lower = overlay ? s->st->rootfs : NULL;
  m.config_digest = cdigest;
  m.entries = sum.entries;
  m.has_entries = true;
  m.bytes = sum.bytes;
  m.has_bytes = true;
  m.tree_digest = sum.digest;
  m.files_keys = sum.files_keys;
  m.files_values = sum.files_values;
  m.files_len = sum.files_len;
  m.process = hook ? &proc : NULL;
  json = sbx_fs_snapshot_manifest_json (&m, &len);
  free (m.created);
  sbx_tree_sum_clear (&sum);
  sbx_tree_sum_clear (&psum);
  r = sbx_write_file_atomic (tfd, "manifest.json", json, len, 0600, err);
  return r;
}

static char *
default_name (int snapsfd)
{
  char buf[64];
  time_t t = time (NULL);
  struct tm tm;
  struct stat st;
  gmtime_r (&t, &tm);
  strftime (buf, sizeof buf, "snap-%Y%m%dT%H%M%SZ", &tm);
  for (int i = 1;; i++)
    {
      char *n = i == 1 ? xstrdup (buf) : xasprintf ("%s-%d", buf, i);
      if (fstatat (snapsfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return n;
      free (n);
    }
}

int
sbx_fs_snapshot_create (const char *root, const char *id, const char *name, const sbx_snapshot_hook *hook,
                        char **name_out, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  cleanup_close int snapsfd = -1;
  cleanup_free char *tmp = NULL, *prefix = NULL, *nm = NULL;
  sbx_cgroup *cg = NULL;
  const char *status;
  bool thaw = false;
  int r;

  if (name && sbx_fs_snapshot_name_validate (name, err) < 0)
    return -1;
  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  status = sbx_state_status (s);
  if (hook)
    {
      /* The processes and the tree of one frozen moment: a cgroup to
         freeze them by.  Refused before anything is made.  */
      if (strcmp (status, "running") != 0 && strcmp (status, "paused") != 0)
        return sbx_error_set (err, EINVAL,
                              "snapshot create --with-process: container \"%s\" is %s: only a running or "
                              "paused one has processes to checkpoint",
                              id, status);
      if (s->st->cgroup == NULL)
        return sbx_error_set (err, ENOTSUP,
                              "snapshot create --with-process: container \"%s\" has no cgroup to freeze "
                              "for the copy",
                              id);
      if (hook->check (hook->data, s, err) < 0)
        return sbx_error_wrap (err, "container \"%s\"", id);
    }
  snapsfd = sbx_fs_snapshot_open_store (s->dir_fd, true, err);
  if (snapsfd < 0)
    return sbx_error_wrap (err, "container \"%s\"", id);
  remove_stale (snapsfd);
  nm = name ? xstrdup (name) : default_name (snapsfd);
  {
    struct stat st;
    if (fstatat (snapsfd, nm, &st, AT_SYMLINK_NOFOLLOW) == 0)
      return sbx_error_set (err, EEXIST, "container \"%s\": snapshot \"%s\" already exists", id, nm);
  }
  status = sbx_state_status (s);
  if (strcmp (status, "running") == 0 && s->st->cgroup == NULL)
    /* Its processes could change the tree while it is copied (swap a
       file for a FIFO, rewrite what was hashed): one moment's copy needs
       them frozen, and without a cgroup there is no freezer.  */
    return sbx_error_set (err, EBUSY,
                          "container \"%s\": snapshot \"%s\": the container is running and has no cgroup "
                          "(created without a writable cgroup, e.g. rootless without delegation), so it "
                          "cannot be frozen for a consistent copy; stop it first",
                          id, nm);
  prefix = xasprintf (".tmp-%.200s-", nm);
  if (sbx_fs_mkdtemp_at (snapsfd, prefix, &tmp, err) < 0)
    return -1;
  if (strcmp (status, "running") == 0)
    {
      /* Frozen for the copy, so that the tree is one moment's.  */
      if (sbx_cgroup_load (s->st->cgroup, &cg, err) < 0 || sbx_cgroup_freeze (cg, true, err) < 0)
        {
          sbx_cgroup_free (cg);
          sbx_remove_tree_at (snapsfd, tmp);
          return sbx_error_wrap (err, "container \"%s\": freeze for the snapshot", id);
        }
      thaw = true;
    }
  r = build (s, snapsfd, tmp, nm, hook, err);
  if (thaw)
    {
      cleanup_error sbx_error *e = NULL;
      if (sbx_cgroup_freeze (cg, false, &e) < 0 && r == 0)
        {
          *err = steal_ptr (e);
          r = sbx_error_wrap (err, "container \"%s\": thaw after the snapshot", id);
        }
    }
  sbx_cgroup_free (cg);
  if (r == 0)
    r = sbx_fs_snapshot_commit (snapsfd, tmp, nm, err);
  if (r < 0)
    {
      sbx_remove_tree_at (snapsfd, tmp);
      return sbx_error_wrap (err, "container \"%s\": snapshot \"%s\"", id, nm);
    }
  if (name_out)
    *name_out = steal_ptr (nm);
  return 0;
}

int
sbx_fs_snapshot_list (const char *root, const char *id, char **text, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  cleanup_close int snapsfd = -1;
  cleanup_strv char **names = NULL;
  size_t cap = 256, len = 0;
  char *out;
  size_t n = 0;

  if (sbx_state_open (root, id, &s, err) < 0)
    return -1;
  out = xmalloc0 (cap);
  len = snprintf (out, cap, "%-32s %-8s %-7s %-30s %12s\n", "NAME", "KIND", "PROCESS", "CREATED", "BYTES");
  snapsfd = openat (s->dir_fd, SNAP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (snapsfd < 0)
    {
      *text = out;
      return 0;
    }
  if (sbx_fs_dir_names (snapsfd, &names, &n, err) < 0)
    {
      free (out);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    {
      if (names[i][0] == '.') /* .tmp-* of a create under way */
        continue;
      cleanup_close int fd = openat (snapsfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      cleanup_free char *mt = NULL, *line = NULL;
      cleanup_manifest sbx_snapshot_manifest *m = NULL;
      cleanup_error sbx_error *e = NULL;
      cleanup_close int mfd = fd >= 0 ? openat (fd, "manifest.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
      size_t ml;
      if (mfd >= 0 && sbx_read_fd (mfd, MANIFEST_MAX, &mt, &ml, &e) == 0
          && sbx_fs_snapshot_manifest_parse (mt, ml, names[i], &m, &e) == 0)
        line = xasprintf ("%-32s %-8s %-7s %-30s %12llu\n", names[i], m->kind, m->process ? "yes" : "no",
                          m->created ? m->created : "-", (unsigned long long)m->bytes);
      else
        line = xasprintf ("%-32s %-8s %-7s %-30s %12s\n", names[i], "corrupt", "-", "-", "-");
      if (len + strlen (line) + 1 > cap)
        {
          cap = 2 * (len + strlen (line) + 1);
          out = xrealloc (out, cap);
        }
      memcpy (out + len, line, strlen (line) + 1);
      len += strlen (line);
    }
  *text = out;
  return 0;
}

int
sbx_fs_snapshot_delete (const char *root, const char *id, const char *name, sbx_error **err)
{
  cleanup_state sbx_state *s = NULL;
  cleanup_close int snapsfd = -1;
  cleanup_free char *tmp = NULL;
  struct stat st;

  if (sbx_fs_snapshot_name_validate (name, err) < 0 || sbx_state_open (root, id, &s, err) < 0)
    return -1;
  snapsfd = openat (s->dir_fd, SNAP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (snapsfd < 0 || fstatat (snapsfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return sbx_error_set (err, ENOENT, "container \"%s\" has no snapshot \"%s\"", id, name);
  /* Out of sight first, then removed: a delete cut short leaves a
     leftover, never a damaged snapshot under its name.  */
  tmp = xasprintf (".tmp-del-%.200s", name);
  sbx_remove_tree_at (snapsfd, tmp);
  if (renameat (snapsfd, name, snapsfd, tmp) < 0)
    return sbx_error_sys (err, "container \"%s\": delete snapshot \"%s\"", id, name);
  if (sbx_remove_tree_at (snapsfd, tmp) < 0)
    return sbx_error_sys (err, "container \"%s\": delete snapshot \"%s\"", id, name);
  return 0;
}

/* A copy of tree fd srcfd as parentfd/final, built beside it and swapped in
   (the old one removed), so the target is never half-written.  */
static int
replace_tree (int srcfd, const sbx_snapshot_manifest *m, unsigned flags, int parentfd, const char *final,
              sbx_error **err)
{
  cleanup_free char *tmp = NULL, *prefix = xasprintf (".%.200s.sbxrun-", final);
  cleanup_close int dst = -1;
  sbx_tree_sum sum = { 0 };
  int r;

  if (sbx_fs_mkdtemp_at (parentfd, prefix, &tmp, err) < 0)
    return -1;
  dst = openat (parentfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  r = dst < 0 ? sbx_error_sys (err, "open copy") : sbx_fs_tree_copy (srcfd, dst, m, flags, &sum, err);
  if (r < 0 && dst >= 0)
    sbx_error_wrap (err, "snapshot \"%s\"", m->name);
  /* The reset tree on disk before it is swapped in.  */
  if (r == 0 && syncfs (dst) < 0)
    r = sbx_error_sys (err, "sync the copy to disk");
  if (r == 0 && renameat2 (parentfd, tmp, parentfd, final, RENAME_EXCHANGE) < 0)
    {
      if (errno != ENOENT || renameat (parentfd, tmp, parentfd, final) < 0)
        r = sbx_error_sys (err, "swap in `%s`", final);
    }
  sbx_remove_tree_at (parentfd, tmp);
  return r;
}

static int
tree_of (int snapfd)
{
  return openat (snapfd, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The copy flags for restoring snapshot m into the container whose state
   dir is dirfd: file capabilities come back only into the configuration
   they were taken under (the same saved config.json), never into another
   one where they could grant what that config does not mean to give.  */
static int
restore_flags (const sbx_snapshot_manifest *m, int dirfd, unsigned *flags, sbx_error **err)
{
  cleanup_free char *digest = NULL;
  if (config_digest (dirfd, &digest, err) < 0)
    return -1;
  *flags = strcmp (digest, m->config_digest) == 0 ? SBX_TREE_FILE_CAPS : 0;
  return 0;
}

static int reset_tree (sbx_state *s, const char *name, const sbx_snapshot_manifest *m, int tfd,
                       sbx_error **err);

/* The snapshot's process image, checked, as the state dir's `to`.  */
static int
copy_process (sbx_state *s, int snapfd, const char *name, const sbx_snapshot_manifest *m, const char *to,
              sbx_error **err)
{
  cleanup_close int dst = -1;
  sbx_remove_tree_at (s->dir_fd, to);
  if (mkdirat (s->dir_fd, to, 0700) < 0
      || (dst = openat (s->dir_fd, to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return sbx_error_sys (err, "create `%s/%s`", s->dir, to);
  if (process_check (snapfd, name, m, dst, err) < 0)
    {
      sbx_remove_tree_at (s->dir_fd, to);
      return -1;
    }
  return 0;
}

int
sbx_fs_snapshot_has_process (sbx_state *s, const char *name, bool *out, sbx_error **err)
{
  cleanup_manifest sbx_snapshot_manifest *m = NULL;
  cleanup_free char *text = NULL, *path = NULL;
  cleanup_close int mfd = -1;
  size_t len;

  if (sbx_fs_snapshot_name_validate (name, err) < 0)
    return -1;
  path = xasprintf (SNAP_DIR "/%s/manifest.json", name);
  mfd = openat (s->dir_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (mfd < 0 && errno == ENOENT)
    {
      /* Not there (or no manifest): the reset names what is wrong.  */
      *out = false;
      return 0;
    }
  if (mfd < 0 || sbx_read_fd (mfd, MANIFEST_MAX, &text, &len, err) < 0)
    return mfd < 0 ? sbx_error_sys (err, "snapshot \"%s\": manifest", name)
                   : sbx_error_wrap (err, "snapshot \"%s\": manifest", name);
  if (sbx_fs_snapshot_manifest_parse (text, len, name, &m, err) < 0)
    return sbx_error_wrap (err, "container \"%s\"", s->id);
  *out = m->process != NULL;
  return 0;
}

int
sbx_fs_snapshot_reset (sbx_state *s, const char *name, const char *process_to, sbx_error **err)
{
  cleanup_manifest sbx_snapshot_manifest *m = NULL;
  cleanup_close int snapfd = -1, tfd = -1;
  const char *status = sbx_state_status (s);
  const char *id = s->id;
  int r;

  if (sbx_fs_snapshot_name_validate (name, err) < 0)
    return -1;
  if (strcmp (status, "stopped") != 0)
    return sbx_error_set (err, EBUSY,
                          "restore --from-snapshot: container \"%s\" is %s; its filesystem is reset only "
                          "when it is stopped",
                          id, status);
  snapfd = open_snapshot (s, name, &m, err);
  if (snapfd < 0)
    return -1;
  tfd = tree_of (snapfd);
  if (tfd < 0)
    return sbx_error_sys (err, "snapshot \"%s\": tree", name);
  if (process_to && m->process && copy_process (s, snapfd, name, m, process_to, err) < 0)
    return sbx_error_wrap (err, "container \"%s\"", id);
  r = reset_tree (s, name, m, tfd, err);
  if (r < 0 && process_to)
    sbx_remove_tree_at (s->dir_fd, process_to);
  return r;
}

/* The tree of checked snapshot m swapped in.  */
static int
reset_tree (sbx_state *s, const char *name, const sbx_snapshot_manifest *m, int tfd, sbx_error **err)
{
  const char *id = s->id;
  unsigned flags = 0;

  if (restore_flags (m, s->dir_fd, &flags, err) < 0)
    return sbx_error_wrap (err, "container \"%s\"", id);
  if (strcmp (m->kind, SBX_SNAPSHOT_OVERLAY) == 0)
    {
      if (!has_overlay (s) || strcmp (m->lower, s->st->rootfs) != 0)
        return sbx_error_set (err, EINVAL,
                              "snapshot \"%s\": an overlay change set over `%s`, but container \"%s\" %s%s",
                              name, m->lower, id, has_overlay (s) ? "has the lower " : "has no overlay",
                              has_overlay (s) ? s->st->rootfs : "");
      if (replace_tree (tfd, m, flags, s->dir_fd, SBX_OVERLAY_UPPER, err) < 0)
        return sbx_error_wrap (err, "container \"%s\": reset to snapshot \"%s\"", id, name);
      /* The work dir holds nothing between mounts; start it empty.  */
      sbx_remove_tree_at (s->dir_fd, SBX_OVERLAY_WORK);
      if (mkdirat (s->dir_fd, SBX_OVERLAY_WORK, 0700) < 0)
        return sbx_error_sys (err, "recreate the overlay's work dir");
      return 0;
    }
  if (has_overlay (s))
    return sbx_error_set (err, EINVAL, "snapshot \"%s\": a whole rootfs, but container \"%s\" has an overlay",
                          name, id);
  {
    cleanup_free char *dir = xstrdup (s->st->rootfs);
    char *slash = strrchr (dir, '/');
    cleanup_close int pfd = -1;
    if (slash == NULL || slash[1] == '\0')
      return sbx_error_set (err, EINVAL, "rootfs `%s`: cannot be replaced", s->st->rootfs);
    *slash = '\0';
    pfd = open (*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
      return sbx_error_sys (err, "rootfs parent `%s`", dir);
    if (replace_tree (tfd, m, flags, pfd, slash + 1, err) < 0)
      return sbx_error_wrap (err, "container \"%s\": reset to snapshot \"%s\"", id, name);
  }
  return 0;
}

int
sbx_fs_snapshot_fork (const char *root, const char *spec, int dst_dirfd, const char *dst_dir,
                      const char *rootfs, bool *overlay, char **rootfs_out, sbx_error **err)
{
  cleanup_free char *src = xstrdup (spec);
  cleanup_state sbx_state *s = NULL;
  cleanup_manifest sbx_snapshot_manifest *m = NULL;
  cleanup_close int snapfd = -1, tfd = -1, dst = -1;
  char *name = strchr (src, ':');
  sbx_tree_sum sum = { 0 };
  unsigned flags = 0;

  if (name == NULL)
    return sbx_error_set (err, EINVAL, "--from-snapshot `%s`: expected SRCID:NAME", spec);
  *name++ = '\0';
  if (sbx_fs_snapshot_name_validate (name, err) < 0 || sbx_state_open (root, src, &s, err) < 0)
    return sbx_error_wrap (err, "--from-snapshot `%s`", spec);
  snapfd = open_snapshot (s, name, &m, err);
  if (snapfd < 0)
    return sbx_error_wrap (err, "--from-snapshot");
  if (m->process)
    return sbx_error_set (
        err, ENOTSUP,
        "--from-snapshot `%s`: snapshot \"%s\" has a process image (create --with-process), "
        "which only `restore --from-snapshot %s %s` brings back into that container: a fork "
        "would need the processes under a new ID, cgroup and namespaces; fork from a "
        "snapshot taken without --with-process",
        spec, name, name, src);
  tfd = tree_of (snapfd);
  if (tfd < 0)
    return sbx_error_sys (err, "snapshot \"%s\": tree", name);
  if (restore_flags (m, dst_dirfd, &flags, err) < 0)
    return sbx_error_wrap (err, "--from-snapshot `%s`: the new container's saved config", spec);
  if (strcmp (m->kind, SBX_SNAPSHOT_OVERLAY) == 0)
    {
      /* A change set only means something over the lower it was made on. */
      if (strcmp (m->lower, rootfs) != 0)
        return sbx_error_set (err, EINVAL,
                              "--from-snapshot `%s`: the snapshot is a change set over `%s`, but the "
                              "bundle's root.path is `%s`",
                              spec, m->lower, rootfs);
      if (sbx_fs_overlay_dirs (dst_dirfd, rootfs, err) < 0)
        return -1;
      dst = openat (dst_dirfd, SBX_OVERLAY_UPPER, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      *overlay = true;
    }
  else
    {
      if (mkdirat (dst_dirfd, "rootfs", 0700) < 0)
        return sbx_error_sys (err, "create the fork's rootfs");
      dst = openat (dst_dirfd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      *rootfs_out = xasprintf ("%s/rootfs", dst_dir);
    }
  if (dst < 0)
    return sbx_error_sys (err, "open the fork's tree");
  if (sbx_fs_tree_copy (tfd, dst, m, flags, &sum, err) < 0)
    return sbx_error_wrap (err, "--from-snapshot `%s`: snapshot \"%s\"", spec, name);
  return 0;
}
