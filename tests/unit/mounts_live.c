/* mounts_live.c - end-to-end test of sbx_fs_rootfs_prepare/sbx_fs_rootfs_finish.
 *
 * Needs root (exit 77 otherwise).  Builds a tiny rootfs under /tmp, then for
 * each scenario forks a child that enters a private mount namespace (and a
 * pid namespace, cgroup namespace or user namespace as the scenario says),
 * forks pid 1 of the new pid namespace, sets up the rootfs from a JSON
 * config and checks the result from inside.  The child's exit status is its
 * number of failed checks.  Afterwards the host's mountinfo must not show
 * anything under the test directory, and the symlink escape target must be
 * untouched.  Everything mounted lives in the children's namespaces.  */
#define _GNU_SOURCE
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "fs/fs.h"
#include "ocispec.h"

static char base[64];
static int failures;

#define CHECK(cond, ...)                                                                           \
  do                                                                                               \
    {                                                                                              \
      if (!(cond))                                                                                 \
        {                                                                                          \
          failures++;                                                                              \
          fprintf (stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                                  \
          fprintf (stderr, __VA_ARGS__);                                                           \
          fputc ('\n', stderr);                                                                    \
        }                                                                                          \
    }                                                                                              \
  while (0)

static void
die (const char *what)
{
  fprintf (stderr, "mounts_live: %s: %s\n", what, strerror (errno));
  exit (99);
}

static void
put_file (const char *path, const char *content, mode_t mode)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || sbx_write_all (fd, content, strlen (content)) < 0)
    die (path);
  close (fd);
}

static void
mkdirs (const char *path)
{
  if (sbx_mkdir_p (path, 0755, NULL) < 0)
    die (path);
}

/* mount_setattr (rro) exists?  Not under valgrind 3.19, which fails it
   with ENOSYS (as it does openat2 and open_tree, exercising the fallbacks).  */
static bool
have_setattr (void)
{
  return syscall (442 /* mount_setattr */, -1, "", 0, NULL, 0) < 0 && errno != ENOSYS;
}

/* In a template "@B@" stands for the test directory, "@RRO@" for the rro
   option when the kernel call behind it is available.  */
static char *
subst (const char *t)
{
  char *out = xstrdup ("");
  const char *p;
  while ((p = strchr (t, '@')))
    {
      const char *v = "@";
      size_t skip = 1;
      if (strncmp (p, "@B@", 3) == 0)
        v = base, skip = 3;
      else if (strncmp (p, "@RRO@", 5) == 0)
        v = have_setattr () ? "\"rro\"," : "", skip = 5;
      char *n = xasprintf ("%s%.*s%s", out, (int) (p - t), t, v);
      free (out);
      out = n;
      t = p + skip;
    }
  char *n = xasprintf ("%s%s", out, t);
  free (out);
  return n;
}

static void
copy_file (const char *from, const char *to)
{
  char *data = NULL;
  size_t len;
  int fd;
  if (sbx_read_file (from, 0, &data, &len, NULL) < 0)
    die (from);
  fd = open (to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (fd < 0 || sbx_write_all (fd, data, len) < 0)
    die (to);
  close (fd);
  free (data);
}

static void
build_tree (void)
{
  static const char *dirs[] = { "bundle/rootfs/bin", "bundle/rootfs/proc", "bundle/rootfs/sys",
                                "bundle/rootfs/dev", "bundle/rootfs/etc/maskdir",
                                "bundle/rootfs/tmp", "bundle/relsrc/locked", "hostdir",
                                "hostescape", "lockedsrc", NULL };
  char *p;
  for (size_t i = 0; dirs[i]; i++)
    {
      p = xasprintf ("%s/%s", base, dirs[i]);
      mkdirs (p);
      free (p);
    }
#define PUT(rel, content)                                                                          \
  do                                                                                               \
    {                                                                                              \
      p = xasprintf ("%s/%s", base, rel);                                                          \
      put_file (p, content, 0644);                                                                 \
      free (p);                                                                                    \
    }                                                                                              \
  while (0)
  PUT ("bundle/rootfs/etc/secret", "secret\n");
  PUT ("bundle/rootfs/etc/hostname", "image\n");
  PUT ("bundle/rootfs/etc/maskdir/file", "x");
  PUT ("hostdir/hello", "hi");
  PUT ("hostfile", "hostfile-content");
#undef PUT
  p = xasprintf ("%s/bundle/rootfs/bin/busybox", base);
  copy_file ("/bin/busybox", p);
  free (p);
  /* The escape attempt: an absolute symlink to a host directory.  */
  p = xasprintf ("%s/bundle/rootfs/escape", base);
  char *t = xasprintf ("%s/hostescape", base);
  if (symlink (t, p) < 0)
    die ("symlink");
  free (p);
  free (t);
}

static int
rm_cb (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void) sb;
  (void) flag;
  (void) ftw;
  remove (path);
  return 0;
}

/* ---- inside the container ---- */

struct mnt
{
  char *mp, *opts, *fstype, *super, *tags; /* tags: optional fields (shared:N ...) */
};
static struct mnt mnts[256];
static size_t nmnts;
static char *mi_text; /* mnts points into it */

static void
load_mountinfo (void)
{
  char *text = NULL, *save = NULL;
  nmnts = 0;
  free (mi_text);
  if (sbx_read_file ("/proc/self/mountinfo", 0, &mi_text, NULL, NULL) < 0)
    {
      CHECK (0, "cannot read /proc/self/mountinfo");
      return;
    }
  text = mi_text;
  if (getenv ("MOUNTS_LIVE_DUMP"))
    fprintf (stderr, "%s", text);
  for (char *l = strtok_r (text, "\n", &save); l && nmnts < 256; l = strtok_r (NULL, "\n", &save))
    {
      char *f[40], *s2 = NULL;
      size_t n = 0;
      for (char *t = strtok_r (l, " ", &s2); t && n < 40; t = strtok_r (NULL, " ", &s2))
        f[n++] = t;
      for (size_t i = 6; i + 3 < n; i++)
        if (strcmp (f[i], "-") == 0)
          {
            mnts[nmnts++] = (struct mnt){ f[4], f[5], f[i + 1], f[i + 3], i > 6 ? f[6] : "" };
            break;
          }
    }
}

static bool
has_opt (const char *list, const char *opt)
{
  size_t n = strlen (opt);
  for (const char *p = list; (p = strstr (p, opt)); p += n)
    if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

/* The topmost mount at mp: fstype, per-mount options and superblock options
   (comma lists, each entry must be present).  */
static void
expect_mount (const char *mp, const char *fstype, const char *opts, const char *super)
{
  struct mnt *m = NULL;
  for (size_t i = 0; i < nmnts; i++)
    if (strcmp (mnts[i].mp, mp) == 0)
      m = &mnts[i];
  if (m == NULL)
    {
      CHECK (0, "no mount at %s", mp);
      return;
    }
  if (fstype)
    CHECK (strcmp (m->fstype, fstype) == 0, "%s: fstype %s, want %s", mp, m->fstype, fstype);
  for (int k = 0; k < 2; k++)
    {
      const char *want = k ? super : opts, *have = k ? m->super : m->opts;
      if (want == NULL)
        continue;
      char *w = xstrdup (want), *s = NULL;
      for (char *t = strtok_r (w, ",", &s); t; t = strtok_r (NULL, ",", &s))
        CHECK (has_opt (have, t), "%s: %s options `%s` lack %s", mp, k ? "super" : "mount", have, t);
      free (w);
    }
}

static const char *
tags_of (const char *mp)
{
  const char *t = NULL;
  for (size_t i = 0; i < nmnts; i++)
    if (strcmp (mnts[i].mp, mp) == 0)
      t = mnts[i].tags;
  return t ? t : "(no mount)";
}

static bool
mounted (const char *mp)
{
  for (size_t i = 0; i < nmnts; i++)
    if (strcmp (mnts[i].mp, mp) == 0)
      return true;
  return false;
}

static int
errno_of_create (const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return errno;
  close (fd);
  unlink (path);
  return 0;
}

static char *
slurp (const char *path)
{
  char *s = NULL;
  if (sbx_read_file (path, 1 << 20, &s, NULL, NULL) < 0)
    return NULL;
  return s;
}

static void
expect_chr (const char *path, unsigned maj, unsigned min)
{
  struct stat sb;
  CHECK (lstat (path, &sb) == 0, "%s missing", path);
  CHECK (S_ISCHR (sb.st_mode) && major (sb.st_rdev) == maj && minor (sb.st_rdev) == min,
         "%s is not char %u:%u", path, maj, min);
}

static void
expect_link (const char *path, const char *target)
{
  char buf[256];
  ssize_t n = readlink (path, buf, sizeof buf - 1);
  CHECK (n > 0, "%s is not a symlink", path);
  if (n > 0)
    {
      buf[n] = '\0';
      CHECK (strcmp (buf, target) == 0, "%s -> %s, want %s", path, buf, target);
    }
}

static void
check_devices (bool userns)
{
  char buf[8] = { 1, 1, 1, 1 };
  int fd;

  expect_chr ("/dev/null", 1, 3);
  expect_chr ("/dev/zero", 1, 5);
  expect_chr ("/dev/full", 1, 7);
  expect_chr ("/dev/random", 1, 8);
  expect_chr ("/dev/urandom", 1, 9);
  expect_chr ("/dev/tty", 5, 0);
  fd = open ("/dev/null", O_RDWR);
  CHECK (fd >= 0, "open /dev/null: %s", strerror (errno));
  if (fd >= 0)
    {
      CHECK (write (fd, "x", 1) == 1, "write /dev/null");
      CHECK (read (fd, buf, 1) == 0, "read /dev/null not empty");
      close (fd);
    }
  fd = open ("/dev/zero", O_RDONLY);
  CHECK (fd >= 0 && read (fd, buf, 4) == 4 && buf[0] == 0 && buf[3] == 0, "read /dev/zero");
  if (fd >= 0)
    close (fd);
  fd = open ("/dev/full", O_WRONLY);
  CHECK (fd >= 0 && write (fd, "x", 1) < 0 && errno == ENOSPC, "write /dev/full: want ENOSPC");
  if (fd >= 0)
    close (fd);
  expect_link ("/dev/fd", "/proc/self/fd");
  expect_link ("/dev/stdin", "/proc/self/fd/0");
  expect_link ("/dev/stdout", "/proc/self/fd/1");
  expect_link ("/dev/stderr", "/proc/self/fd/2");
  expect_link ("/dev/ptmx", "pts/ptmx");
  if (!userns)
    {
      struct stat sb;
      expect_chr ("/dev/custom/mynull", 1, 3);
      CHECK (stat ("/dev/custom/mynull", &sb) == 0 && (sb.st_mode & 07777) == 0660,
             "/dev/custom/mynull mode %o", sb.st_mode & 07777);
      CHECK (mounted ("/dev/null") == false, "/dev/null is a mount without userns");
    }
  else
    {
      CHECK (mounted ("/dev/null"), "userns: /dev/null is not a bind of the host's");
      CHECK (mounted ("/dev/full"), "userns: /dev/full is not a bind of the host's");
    }
  {
    struct stat sb;
    CHECK (lstat ("/dev/fifo0", &sb) == 0 && S_ISFIFO (sb.st_mode), "/dev/fifo0 is not a fifo");
  }
}

static void
check_masks (void)
{
  char *s = slurp ("/etc/secret");
  DIR *d;
  int entries = 0;
  struct dirent *de;

  CHECK (s && *s == '\0', "masked /etc/secret reads `%s`", s ? s : "(error)");
  free (s);
  d = opendir ("/etc/maskdir");
  CHECK (d != NULL, "opendir /etc/maskdir");
  while (d && (de = readdir (d)))
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      entries++;
  if (d)
    closedir (d);
  CHECK (entries == 0, "masked /etc/maskdir has %d entries", entries);
  CHECK (errno_of_create ("/etc/maskdir/new") == EROFS, "masked dir is writable");
  expect_mount ("/etc/maskdir", "tmpfs", "ro", NULL);
  expect_mount ("/etc/secret", NULL, NULL, NULL);
  s = slurp ("/proc/cmdline");
  CHECK (s && *s == '\0', "masked /proc/cmdline not empty: %s", s ? s : strerror (errno));
  free (s);
  CHECK (open ("/proc/sys/kernel/hostname", O_WRONLY) < 0 && errno == EROFS,
         "/proc/sys is writable");
  expect_mount ("/proc/sys", "proc", "ro,nosuid,nodev,noexec", NULL);
}

/* Scenario A: pivot_root, cgroup namespace, root.readonly.  */
static const char *config_a =
    "{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\",\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},"
    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\"]},"
    "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},"
    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"relatime\",\"ro\"]},"
    "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"@B@/hostdir\",\"options\":[\"rbind\",\"ro\"]},"
    "{\"destination\":\"/rel\",\"source\":\"relsrc\",\"options\":[\"bind\",\"nosuid\"]},"
    "{\"destination\":\"/scratch\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"mode=750\",\"size=1m\",\"noexec\"]},"
    "{\"destination\":\"/escape/sub\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
    "{\"destination\":\"/tmp/../../../dotdot\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
    "{\"destination\":\"/etc/hostname\",\"type\":\"bind\",\"source\":\"@B@/hostfile\",\"options\":[\"bind\",\"ro\"]},"
    "{\"destination\":\"/made/deep/f\",\"type\":\"none\",\"source\":\"@B@/hostfile\",\"options\":[\"bind\"]},"
    "{\"destination\":\"/cg2\",\"type\":\"cgroup2\",\"source\":\"cgroup2\",\"options\":[\"nosuid\"]}"
    "],\"linux\":{\"rootfsPropagation\":\"rshared\","
    "\"devices\":[{\"path\":\"/dev/custom/mynull\",\"type\":\"c\",\"major\":1,\"minor\":3,\"fileMode\":432,\"uid\":0,\"gid\":0},"
    "{\"path\":\"/dev/fifo0\",\"type\":\"p\"}],"
    "\"maskedPaths\":[\"/etc/secret\",\"/etc/maskdir\",\"/does/not/exist\",\"/proc/kcore\",\"/proc/cmdline\"],"
    "\"readonlyPaths\":[\"/rel/locked\",\"/proc/sys\",\"/missing/ro\"]}}";

static void
check_a (void)
{
  char *s, *p;
  struct stat sb;

  load_mountinfo ();
  CHECK (getpid () == 1, "not pid 1 of the new pid namespace");
  expect_mount ("/", NULL, "ro", NULL);
  expect_mount ("/proc", "proc", "nosuid,nodev,noexec", NULL);
  expect_mount ("/dev", "tmpfs", "nosuid", "size=65536k,mode=755");
  expect_mount ("/dev/pts", "devpts", "nosuid,noexec", "ptmxmode=666");
  expect_mount ("/dev/shm", "tmpfs", "nosuid,nodev,noexec", "size=65536k");
  expect_mount ("/sys", "sysfs", "ro,nosuid,nodev,noexec", NULL);
  expect_mount ("/sys/fs/cgroup", "tmpfs", "ro,nosuid,nodev,noexec", "mode=755");
  expect_mount ("/sys/fs/cgroup/unified", "cgroup2", "ro,nosuid,nodev,noexec", NULL);
  expect_mount ("/sys/fs/cgroup/memory", "cgroup", "ro,nosuid,nodev,noexec", "memory");
  expect_mount ("/sys/fs/cgroup/systemd", "cgroup", "ro", "name=systemd");
  CHECK (access ("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0,
         "cgroup memory hierarchy not usable");
  expect_mount ("/data", NULL, "ro", NULL);
  expect_mount ("/rel", NULL, "rw,nosuid", NULL);
  expect_mount ("/rel/locked", NULL, "ro,nosuid", NULL);
  expect_mount ("/scratch", "tmpfs", "noexec", "mode=750,size=1024k");
  expect_mount ("/dotdot", "tmpfs", NULL, NULL);
  p = xasprintf ("%s/hostescape/sub", base);
  expect_mount (p, "tmpfs", NULL, NULL);
  free (p);
  expect_mount ("/etc/hostname", NULL, "ro", NULL);
  expect_mount ("/made/deep/f", NULL, "rw", NULL);
  expect_mount ("/cg2", "cgroup2", "nosuid", NULL);
  CHECK (strncmp (tags_of ("/"), "shared:", 7) == 0, "rshared root has tags `%s`", tags_of ("/"));

  CHECK (errno_of_create ("/rootwrite") == EROFS, "/ is writable");
  CHECK (errno_of_create ("/data/new") == EROFS, "ro bind /data is writable");
  s = slurp ("/data/hello");
  CHECK (s && strcmp (s, "hi") == 0, "/data/hello reads `%s`", s ? s : "(error)");
  free (s);
  CHECK (errno_of_create ("/rel/new") == 0, "rw bind /rel not writable");
  CHECK (errno_of_create ("/rel/locked/new") == EROFS, "readonly path /rel/locked is writable");
  CHECK (errno_of_create ("/scratch/new") == 0, "tmpfs /scratch not writable");
  s = slurp ("/etc/hostname");
  CHECK (s && strcmp (s, "hostfile-content") == 0, "file bind /etc/hostname reads `%s`",
         s ? s : "(error)");
  free (s);
  CHECK (stat ("/made/deep/f", &sb) == 0 && S_ISREG (sb.st_mode), "file bind target not a file");
  check_devices (false);
  check_masks ();

  /* The image's busybox runs in the new root.  */
  pid_t pid = fork ();
  if (pid == 0)
    {
      execl ("/bin/busybox", "busybox", "true", (char *) NULL);
      _exit (127);
    }
  int st = 0;
  waitpid (pid, &st, 0);
  CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0, "busybox true failed: %d", st);
}

/* Scenario B: no pivot (MS_MOVE + chroot), no cgroup namespace (cgroup
   hierarchies are bound), host /dev bound in, rro over a submount.  */
static const char *config_b =
    "{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"rootfs\"},"
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/dev\",\"type\":\"bind\",\"source\":\"/dev\",\"options\":[\"rbind\",\"nosuid\"]},"
    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"ro\"]},"
    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"ro\",\"nosuid\"]},"
    "{\"destination\":\"/rro\",\"type\":\"bind\",\"source\":\"@B@/hostdir\",\"options\":[\"rbind\",\"ro\",@RRO@\"rprivate\"]}"
    "],\"linux\":{\"rootfsPropagation\":\"rslave\",\"maskedPaths\":[\"/etc/secret\"]}}";

static void
check_b (void)
{
  load_mountinfo ();
  expect_mount ("/dev", "devtmpfs", "nosuid", NULL);
  expect_mount ("/rro", NULL, "ro", NULL);
  if (have_setattr ())
    {
      expect_mount ("/rro/sub", "tmpfs", "ro", NULL);
      CHECK (errno_of_create ("/rro/sub/new") == EROFS, "rro did not reach the submount");
    }
  else
    fprintf (stderr, "  note: no mount_setattr, rro not tested\n");
  CHECK (errno_of_create ("/rro/new") == EROFS, "rro bind writable");
  CHECK (errno_of_create ("/tmp/rootwrite") == 0, "/ not writable without root.readonly");
  expect_mount ("/sys/fs/cgroup", "tmpfs", "ro,nosuid", NULL);
  expect_mount ("/sys/fs/cgroup/memory", "cgroup", "ro,nosuid", "memory");
  expect_mount ("/sys/fs/cgroup/unified", "cgroup2", "ro,nosuid", NULL);
  CHECK (access ("/sys/fs/cgroup/cpu/cpu.shares", F_OK) == 0, "bound cpu hierarchy not usable");
  char *s = slurp ("/etc/secret");
  CHECK (s && *s == '\0', "masked /etc/secret reads `%s`", s ? s : "(error)");
  free (s);
  expect_chr ("/dev/null", 1, 3);
}

/* Scenario C: user namespace (mapping 0 -> 0): devices are bound from the
   host, sysfs falls back to a bind (no network namespace of our own), and
   bind remounts keep flags the kernel locked (lockedsrc is a nosuid, nodev,
   noexec tmpfs mounted before the user namespace was created).  */
static const char *config_c =
    "{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\",\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},"
    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"mode=755\"]},"
    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"gid=5\"]},"
    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},"
    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"ro\"]},"
    "{\"destination\":\"/locked\",\"type\":\"bind\",\"source\":\"@B@/lockedsrc\",\"options\":[\"bind\",\"ro\"]},"
    "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"@B@/hostdir\",\"options\":[\"rbind\",\"ro\"]}"
    "],\"linux\":{\"rootfsPropagation\":\"unbindable\","
    "\"devices\":[{\"path\":\"/dev/full\",\"type\":\"c\",\"major\":1,\"minor\":7},{\"path\":\"/dev/fifo0\",\"type\":\"p\"}],"
    "\"maskedPaths\":[\"/etc/secret\",\"/etc/maskdir\",\"/proc/cmdline\"],"
    "\"readonlyPaths\":[\"/proc/sys\"]}}";

static void
check_c (void)
{
  load_mountinfo ();
  expect_mount ("/", NULL, "ro", NULL);
  CHECK (strcmp (tags_of ("/"), "unbindable") == 0, "unbindable root has tags `%s`", tags_of ("/"));
  expect_mount ("/sys", "sysfs", "ro", NULL);
  expect_mount ("/sys/fs/cgroup/memory", "cgroup", "ro", "memory");
  expect_mount ("/locked", "tmpfs", "ro,nosuid,nodev,noexec", NULL);
  expect_mount ("/data", NULL, "ro,relatime", NULL);
  CHECK (errno_of_create ("/locked/new") == EROFS, "/locked writable");
  CHECK (errno_of_create ("/rootwrite") == EROFS, "/ is writable");
  check_devices (true);
  check_masks ();
}

/* ---- driver ---- */

static int
setup_and_check (const char *tmpl, bool no_pivot, bool userns, bool cgroupns, void (*check) (void),
                 const char *want_error)
{
  char *json = subst (tmpl), *msg = NULL;
  oci_config *c = ocispec_parse (&oci_config_type, json, strlen (json), &msg);
  sbx_error *err = NULL;
  char *rootfs = xasprintf ("%s/bundle/rootfs", base), *bundle = xasprintf ("%s/bundle", base);
  sbx_rootfs_opts o = { .rootfs = rootfs, .bundle = bundle, .no_pivot = no_pivot,
                        .userns = userns, .cgroupns = cgroupns };
  int procfd = -1;

  if (c == NULL)
    {
      fprintf (stderr, "  config: %s\n", msg);
      failures++;
    }
  else if (sbx_fs_rootfs_prepare (c, &o, &procfd, &err) < 0 || sbx_fs_rootfs_finish (c, &o, &err) < 0)
    {
      char *t = sbx_error_text (err);
      if (want_error)
        CHECK (strstr (t, want_error) != NULL, "error `%s`, want `%s`", t, want_error);
      else
        {
          fprintf (stderr, "  setup: %s\n", t);
          failures++;
        }
      free (t);
    }
  else if (want_error)
    CHECK (0, "succeeded, want error `%s`", want_error);
  else
    check ();
  if (procfd >= 0)
    close (procfd);
  if (c)
    oci_config_free (c);
  sbx_error_free (err);
  free (msg);
  free (json);
  free (rootfs);
  free (bundle);
  free (mi_text);
  mi_text = NULL;
  return failures;
}

struct scenario
{
  const char *name, *config;
  bool no_pivot, userns, cgroupns;
  void (*check) (void);
  const char *want_error;
};

static int
child_status (pid_t pid)
{
  int st;
  if (waitpid (pid, &st, 0) < 0)
    return 98;
  if (WIFSIGNALED (st))
    {
      fprintf (stderr, "  killed by signal %d\n", WTERMSIG (st));
      return 97;
    }
  return WEXITSTATUS (st);
}

/* The first child: namespaces, then pid 1 of the new pid namespace.  */
static int
scenario_child (const struct scenario *s, int ready, int go)
{
  pid_t pid;
  char c = 0;

  if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", "", MS_REC | MS_PRIVATE, NULL) < 0)
    die ("private mount namespace");
  /* A submount of the bind source (scenario B's rro) and a tmpfs whose
     flags become locked in a user namespace (scenario C).  */
  char *sub = xasprintf ("%s/hostdir/sub", base), *locked = xasprintf ("%s/lockedsrc", base);
  mkdir (sub, 0755);
  if (mount ("tmpfs", sub, "tmpfs", 0, NULL) < 0
      || mount ("tmpfs", locked, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    die ("test submounts");
  free (sub);
  free (locked);
  if (s->userns)
    {
      if (unshare (CLONE_NEWUSER | CLONE_NEWNS) < 0)
        die ("unshare user namespace");
      if (write (ready, &c, 1) != 1 || read (go, &c, 1) != 1)
        die ("sync");
    }
  if (unshare (CLONE_NEWPID | (s->cgroupns ? CLONE_NEWCGROUP : 0)) < 0)
    die ("unshare pid namespace");
  pid = fork ();
  if (pid < 0)
    die ("fork");
  if (pid == 0)
    _exit (setup_and_check (s->config, s->no_pivot, s->userns, s->cgroupns, s->check,
                            s->want_error));
  return child_status (pid);
}

static int
write_map (pid_t pid, const char *file)
{
  static const char map[] = "0 0 4294967295\n";
  char *p = xasprintf ("/proc/%d/%s", (int) pid, file);
  int fd = open (p, O_WRONLY | O_CLOEXEC);
  int r = fd >= 0 && write (fd, map, sizeof map - 1) == (ssize_t)(sizeof map - 1) ? 0 : -1;
  if (fd >= 0)
    close (fd);
  free (p);
  return r;
}

static int
run (const struct scenario *s)
{
  int ready[2], go[2], r;
  pid_t pid;
  char c = 0;

  if (pipe (ready) < 0 || pipe (go) < 0)
    die ("pipe");
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    die ("fork");
  if (pid == 0)
    _exit (scenario_child (s, ready[1], go[0]));
  if (s->userns)
    {
      if (read (ready[0], &c, 1) != 1 || write_map (pid, "uid_map") < 0
          || write_map (pid, "gid_map") < 0)
        fprintf (stderr, "  cannot set up the id mappings\n");
      if (write (go[1], &c, 1) != 1)
        die ("sync");
    }
  r = child_status (pid);
  close (ready[0]);
  close (ready[1]);
  close (go[0]);
  close (go[1]);
  printf ("%s - %s%s\n", r == 0 ? "ok" : "not ok", s->name, r ? "" : "");
  return r;
}

/* No mount under the test directory may be visible on the host, and the
   escape target must not have received anything.  */
static int
check_host (const char *before)
{
  char *after = NULL, *save = NULL, *p;
  struct stat sb;
  int bad = 0;

  if (sbx_read_file ("/proc/self/mountinfo", 0, &after, NULL, NULL) < 0)
    return 1;
  for (char *l = strtok_r (after, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
    {
      if (strstr (before, l))
        continue;
      if (strstr (l, base))
        {
          fprintf (stderr, "  leaked mount on the host: %s\n", l);
          bad++;
        }
      else
        fprintf (stderr, "  note: new host mount (not ours?): %s\n", l);
    }
  free (after);
  p = xasprintf ("%s/hostescape/sub", base);
  if (lstat (p, &sb) == 0)
    {
      fprintf (stderr, "  symlink escape: %s was created on the host\n", p);
      bad++;
    }
  free (p);
  p = xasprintf ("%s/bundle/rootfs%s/hostescape/sub", base, base);
  if (lstat (p, &sb) < 0)
    {
      fprintf (stderr, "  %s (the escape destination inside the rootfs) missing\n", p);
      bad++;
    }
  free (p);
  printf ("%s - host mount table unchanged, symlink escape contained\n", bad ? "not ok" : "ok");
  return bad;
}

int
main (void)
{
  static const struct scenario scenarios[] = {
    { "pivot_root, cgroupns, readonly root, devices, masks", NULL, false, false, true, check_a, NULL },
    { "no pivot, cgroup binds, host /dev, rro", NULL, true, false, false, check_b, NULL },
    { "user namespace: host device binds, locked flags", NULL, false, true, true, check_c, NULL },
    { "error names the mount", NULL, false, false, false, NULL,
      "mounts[1] (/data): bind /nonexistent/x: No such file or directory" },
    { "bind without a source fails", NULL, false, false, false, NULL,
      "mounts[0] (/data): bind mount without a source" },
    { "masking needs a real /dev/null", NULL, false, false, false, NULL,
      "the container's /dev/null is not the null device (char 1:3)" },
  };
  const char *configs[] = {
    config_a,
    config_b,
    config_c,
    "{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"rootfs\"},\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\"},"
    "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"/nonexistent/x\",\"options\":[\"bind\"]}]}",
    "{\"ociVersion\":\"1.2.0\",\"mounts\":["
    "{\"destination\":\"/data\",\"options\":[\"bind\",\"mode=755\"]}]}",
    "{\"ociVersion\":\"1.2.0\",\"mounts\":[{\"destination\":\"/dev\",\"type\":\"tmpfs\"}],"
    "\"linux\":{\"devices\":[{\"path\":\"/dev/null\",\"type\":\"c\",\"major\":1,\"minor\":5}],"
    "\"maskedPaths\":[\"/etc/secret\"]}}",
  };
  char *before = NULL;
  int bad = 0;

  if (geteuid () != 0)
    {
      printf ("SKIP: mounts_live needs root\n");
      return 77;
    }
  snprintf (base, sizeof base, "/tmp/sbx-mounts-XXXXXX");
  if (mkdtemp (base) == NULL)
    die ("mkdtemp");
  build_tree ();
  if (sbx_read_file ("/proc/self/mountinfo", 0, &before, NULL, NULL) < 0)
    die ("mountinfo");
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    {
      struct scenario s = scenarios[i];
      s.config = configs[i];
      if (run (&s) != 0)
        bad++;
    }
  bad += check_host (before);
  free (before);
  nftw (base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return bad ? 1 : 0;
}
