/* sealed.c - see sealed.h.  */
#include <config.h>
#include "security/security.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/core.h"

#include <linux/prctl.h> /* struct prctl_mm_map */

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* Set for the re-executed image only, and removed by it at once: it tells
   "this is the copy" (for the O_TMPFILE fallback, which has no seals) and
   stops a loop should the copy somehow not count as sealed.  */
#define SEALED_ENV "_SBXRUN_SEALED_COPY"

#define WANT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* The new mount API (the values are the kernel's ABI).  */
#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define TREE_CLONE 1             /* OPEN_TREE_CLONE */
#define TREE_CLOEXEC O_CLOEXEC   /* OPEN_TREE_CLOEXEC */
#define ATTR_RO_NOSUID_NODEV 0x7 /* MOUNT_ATTR_RDONLY | NOSUID | NODEV */
#define OVL_MAGIC 0x794c7630     /* OVERLAYFS_SUPER_MAGIC */
#define FS_CLOEXEC 1             /* FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC */
#define FS_SET_STRING 1          /* FSCONFIG_SET_STRING */
#define FS_CMD_CREATE 6          /* FSCONFIG_CMD_CREATE */
#define FS_ATTR_NOSUID_NODEV 0x6 /* MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV */

extern char **environ;

static int marker = -1; /* the environment said we are the copy */
static uint64_t view_mnt; /* the mount id of bind_view's mount, once made */

/* FD is a file on bind_view's mount.  */
static bool
on_view_mount (int fd)
{
  uint64_t id;
  return view_mnt != 0 && sbx_mount_id (fd, "", AT_EMPTY_PATH, &id) == 0 && id == view_mnt;
}

/* A file on a read-only overlay: its superblock, not just the mount, is
   read-only (we never set the mount's flag, so ST_RDONLY is the
   superblock's), as an overlay without an upper layer always is.  */
static bool
on_readonly_overlay (int fd)
{
  struct statfs sfs;
  struct statvfs svfs;
  return fstatfs (fd, &sfs) == 0 && sfs.f_type == OVL_MAGIC && fstatvfs (fd, &svfs) == 0
         && (svfs.f_flag & ST_RDONLY);
}

static bool
fd_is_sealed_copy (int fd)
{
  int seals = fcntl (fd, F_GET_SEALS);
  struct stat st;
  if (seals >= 0 && (seals & WANT_SEALS) == WANT_SEALS)
    return true;
  /* The other kinds, and we made them: the overlay's view, bind_view's,
     or the fallback's copy with no name left (on tmpfs, which answers
     F_GET_SEALS for every file, with F_SEAL_SEAL alone).  */
  return marker == 1
         && (on_readonly_overlay (fd) || on_view_mount (fd) || (fstat (fd, &st) == 0 && st.st_nlink == 0));
}

/* The running binary's directory and name (split in PATH), from
   /proc/self/exe; false when it is no absolute path.  */
static bool
exe_path (char *path, size_t size, char **name)
{
  ssize_t n = readlink ("/proc/self/exe", path, size - 1);
  char *slash;
  if (n <= 1 || path[0] != '/')
    return false;
  path[n] = '\0';
  slash = strrchr (path, '/');
  *slash = '\0';
  *name = slash + 1;
  return true;
}

/* FD is the running binary still (not replaced since it started); on its
   own device unless through an overlay, which has its own.  */
static bool
same_file (int fd, const struct stat *self, bool same_dev)
{
  struct stat st;
  return fstat (fd, &st) == 0 && st.st_ino == self->st_ino && (!same_dev || st.st_dev == self->st_dev)
         && st.st_size == self->st_size && st.st_mtim.tv_sec == self->st_mtim.tv_sec
         && st.st_mtim.tv_nsec == self->st_mtim.tv_nsec && st.st_ctim.tv_sec == self->st_ctim.tv_sec
         && st.st_ctim.tv_nsec == self->st_ctim.tv_nsec;
}

/* The binary itself, seen through a private overlay mount of its
   directory with no upper layer: no copy (the page cache is the binary's),
   and nothing can make it writable -- an overlay without an upper layer is
   read-only in its superblock and refuses to be reconfigured read-write,
   and the mount is attached nowhere (no path leads to it; clearing its
   mount flags would not help).  The directory is its only visible layer;
   /dev is a data-only layer, there because an overlay needs two, never
   looked up.  Needs CAP_SYS_ADMIN and Linux 6.8 (datadir+): -1 otherwise,
   and when the file found is not the one running (replaced meanwhile).  */
static int
overlay_view (const struct stat *self)
{
  char path[4096], *name;
  if (!exe_path (path, sizeof path, &name))
    return -1;
  cleanup_close int fs = (int)syscall (SYS_fsopen, "overlay", FS_CLOEXEC);
  if (fs < 0 || syscall (SYS_fsconfig, fs, FS_SET_STRING, "lowerdir+", *path ? path : "/", 0) < 0
      || syscall (SYS_fsconfig, fs, FS_SET_STRING, "datadir+", "/dev", 0) < 0
      || syscall (SYS_fsconfig, fs, FS_CMD_CREATE, NULL, NULL, 0) < 0)
    return -1;
  cleanup_close int mnt = (int)syscall (SYS_fsmount, fs, FS_CLOEXEC, FS_ATTR_NOSUID_NODEV);
  if (mnt < 0)
    return -1;
  cleanup_close int fd = openat (mnt, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || !same_file (fd, self, false) || !on_readonly_overlay (fd))
    return -1;
  return steal_fd (&fd);
}

/* Without the overlay view (before Linux 6.8, or no overlayfs): the
   binary through a read-only clone of its directory's mount.  No copy
   either, but only the mount's flag keeps writes out (the filesystem is
   the host's, writable), so that flag must be out of reach: the file is
   not the mount's root (no mount_setattr, fspick or remount takes it),
   nothing leads above it, and once the clone's fd is closed the mount
   belongs to no namespace, which the kernel refuses to clone again (a
   clone rooted at the file would take its holder's flags) -- tried here
   as root, which must fail EINVAL.  The mappings then show the binary's
   own device and inode, so they are told apart by mount id (view_mnt).  */
static int
bind_view (const struct stat *self)
{
  char path[4096], *name;
  struct statvfs svfs;
  struct
  {
    uint64_t set, clr, propagation, userns_fd;
  } a = { ATTR_RO_NOSUID_NODEV, 0, 0, 0 };
  cleanup_close int fd = -1, again = -1;
  if (!exe_path (path, sizeof path, &name))
    return -1;
  {
    cleanup_close int mnt = (int)syscall (SYS_open_tree, AT_FDCWD, *path ? path : "/",
                                          TREE_CLONE | TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
    if (mnt < 0 || syscall (SYS_mount_setattr, mnt, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
      return -1;
    fd = openat (mnt, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0 || !same_file (fd, self, true) || fstatvfs (fd, &svfs) < 0 || !(svfs.f_flag & ST_RDONLY))
    return -1;
  again = (int)syscall (SYS_open_tree, fd, "", TREE_CLONE | TREE_CLOEXEC | AT_EMPTY_PATH);
  if (again >= 0 || errno != EINVAL)
    return -1;
  if (sbx_mount_id (fd, "", AT_EMPTY_PATH, &view_mnt) < 0)
    {
      view_mnt = 0;
      return -1;
    }
  return steal_fd (&fd);
}

static int
copy_all (int dst, int src, off_t size)
{
  off_t off = 0;
  while (off < size)
    {
      ssize_t n = sendfile (dst, src, &off, (size_t) (size - off));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          /* No sendfile into this file: plain reads and writes.  */
          char buf[65536];
          ssize_t r = pread (src, buf, sizeof buf, off);
          if (r <= 0 || sbx_write_all (dst, buf, (size_t) r) < 0)
            return -1;
          off += r;
          continue;
        }
      if (n == 0)
        break;
    }
  return off == size ? 0 : (errno = EIO, -1);
}

/* How much of the binary execution needs: up to the end of the last
   segment.  Debug sections and section headers, which make most of an
   unstripped build, stay behind (nothing at run time reads them).  The
   whole file when it does not parse as our kind of ELF.  */
static off_t
exec_extent (int exe, off_t size)
{
  ElfW (Ehdr) eh;
  off_t end;
  if (pread (exe, &eh, sizeof eh, 0) != (ssize_t) sizeof eh || memcmp (eh.e_ident, ELFMAG, SELFMAG) != 0
      || eh.e_ident[EI_CLASS] != (sizeof (void *) == 8 ? ELFCLASS64 : ELFCLASS32)
      || eh.e_phentsize != sizeof (ElfW (Phdr)) || eh.e_phnum == 0 || eh.e_phnum > 256)
    return size;
  ElfW (Phdr) ph[256];
  size_t n = (size_t) eh.e_phnum * sizeof ph[0];
  if (pread (exe, ph, n, (off_t) eh.e_phoff) != (ssize_t) n)
    return size;
  end = (off_t) (eh.e_phoff + n);
  for (int i = 0; i < eh.e_phnum; i++)
    if ((off_t) (ph[i].p_offset + ph[i].p_filesz) > end)
      end = (off_t) (ph[i].p_offset + ph[i].p_filesz);
  return end > 0 && end <= size ? end : size;
}

/* A memfd holding the binary, sealed against any change.  */
static int
sealed_memfd (int exe, off_t size)
{
  cleanup_close int fd = memfd_create ("sbxrun", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) /* a kernel before 6.3 knows no MFD_EXEC */
    fd = memfd_create ("sbxrun", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || copy_all (fd, exe, size) < 0)
    return -1;
  if (fcntl (fd, F_ADD_SEALS, WANT_SEALS) < 0)
    return -1;
  return steal_fd (&fd);
}

/* Without memfd: an unnamed file of our own, reopened read-only (a file
   open for writing cannot be executed).  Writing it later would change a
   copy that no name leads to and that dies with its last process.  */
static int
tmpfile_copy (int exe, off_t size)
{
  static const char *const dirs[] = { "/run", "/var/run", "/tmp", NULL };
  for (const char *const *d = dirs; *d; d++)
    {
      char path[64];
      cleanup_close int w = open (*d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0500);
      int r;
      if (w < 0)
        continue;
      if (copy_all (w, exe, size) < 0)
        return -1;
      snprintf (path, sizeof path, "/proc/self/fd/%d", w);
      r = open (path, O_RDONLY | O_CLOEXEC);
      if (r >= 0)
        return r;
    }
  return -1;
}

/* One mapping of the running image's file, from /proc/self/maps.  */
struct image_map
{
  uintptr_t start, end;
  off_t off;
  int prot;
};

#define MAX_IMAGE_MAPS 32

/* One field of a maps line: a number in BASE followed by SEP.  */
static bool
maps_field (char **p, int base, char sep, unsigned long *v)
{
  char *end;
  errno = 0;
  *v = strtoul (*p, &end, base);
  if (end == *p || errno || *end != sep)
    return false;
  *p = end + 1;
  return true;
}

/* Scan /proc/self/maps for the mappings of the file A (into m, at most
   max) and of the file B (counted into *nb when B is set): the number of
   A's, or -1 when there are more than max or maps cannot be read.  */
static int
scan_maps (const struct stat *a, struct image_map *m, int max, const struct stat *b, int *nb)
{
  cleanup_free char *buf = NULL;
  sbx_error *err = NULL;
  int n = 0;
  if (sbx_read_file ("/proc/self/maps", 0, &buf, NULL, &err) < 0)
    {
      sbx_error_free (err);
      return -1;
    }
  if (nb)
    *nb = 0;
  for (char *p = buf, *next; p && *p; p = next)
    {
      unsigned long s, e, off, maj, min, ino;
      char perms[4];
      next = strchr (p, '\n');
      if (next)
        *next++ = '\0';
      if (!maps_field (&p, 16, '-', &s) || !maps_field (&p, 16, ' ', &e) || strlen (p) < 5 || p[4] != ' ')
        return -1;
      memcpy (perms, p, 4);
      p += 5;
      if (!maps_field (&p, 16, ' ', &off) || !maps_field (&p, 16, ':', &maj)
          || !maps_field (&p, 16, ' ', &min))
        return -1;
      errno = 0;
      ino = strtoul (p, NULL, 10);
      if (errno)
        return -1;
      if (b && ino == b->st_ino && maj == major (b->st_dev) && min == minor (b->st_dev))
        (*nb)++;
      if (ino != a->st_ino || maj != major (a->st_dev) || min != minor (a->st_dev))
        continue;
      if (n == max)
        return -1;
      m[n].start = s;
      m[n].end = e;
      m[n].off = (off_t)off;
      m[n].prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0)
                  | (perms[2] == 'x' ? PROT_EXEC : 0);
      n++;
    }
  return n;
}

/* Each of the N mappings in M is of a file on bind_view's mount (seen
   through /proc/self/map_files, which needs the capabilities
   adopt_in_place needs).  */
static bool
maps_through_view (const struct image_map *m, int n)
{
  for (int i = 0; i < n; i++)
    {
      char p[80];
      snprintf (p, sizeof p, "/proc/self/map_files/%lx-%lx", (unsigned long)m[i].start,
                (unsigned long)m[i].end);
      cleanup_close int fd = open (p, O_PATH | O_CLOEXEC);
      if (fd < 0 || !on_view_mount (fd))
        return false;
    }
  return true;
}

/* What the main program's headers say (dl_iterate_phdr's first object):
   the page ranges of its writable segments, whose pages may differ from
   the file (relocations, data written since, RELRO), and whether a
   relocation wrote into its read-only ones (DT_TEXTREL).  */
#define MAX_WRITABLE 8

struct program_layout
{
  uintptr_t lo[MAX_WRITABLE], hi[MAX_WRITABLE];
  int nw;
  bool textrel, too_many;
};

static int
program_layout_cb (struct dl_phdr_info *info, size_t size, void *arg)
{
  struct program_layout *l = arg;
  uintptr_t page = (uintptr_t)sysconf (_SC_PAGESIZE);
  (void)size;
  for (int i = 0; i < info->dlpi_phnum; i++)
    {
      const ElfW (Phdr) *ph = &info->dlpi_phdr[i];
      uintptr_t start = info->dlpi_addr + ph->p_vaddr;
      if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
        {
          if (l->nw == MAX_WRITABLE)
            {
              l->too_many = true;
              continue;
            }
          l->lo[l->nw] = start & ~(page - 1);
          l->hi[l->nw++] = (start + ph->p_memsz + page - 1) & ~(page - 1);
        }
      else if (ph->p_type == PT_DYNAMIC)
        for (const ElfW (Dyn) *d = (const ElfW (Dyn) *)start; d->d_tag != DT_NULL; d++)
          if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL)))
            l->textrel = true;
    }
  return 1; /* the first object is the main program */
}

static bool
in_writable_segment (const struct program_layout *l, uintptr_t s, uintptr_t e)
{
  for (int i = 0; i < l->nw; i++)
    if (s < l->hi[i] && e > l->lo[i])
      return true;
  return false;
}

/* The main program may be taken in place: it is the file whose mappings
   were found (its program headers lie in one of them; not so when the
   dynamic loader was run as the command), and no relocation wrote into
   its read-only segments.  */
static bool
main_program_in (const struct program_layout *l, const struct image_map *m, int n)
{
  uintptr_t phdr = (uintptr_t)getauxval (AT_PHDR);
  bool found = false;
  for (int i = 0; i < n; i++)
    found |= m[i].start <= phdr && phdr < m[i].end;
  return found && !l->textrel && !l->too_many;
}

/* The mm fields PR_SET_MM_MAP sets, as they are (/proc/self/stat's
   fields 26-28 and 45-51); brk is read again right before use.  */
static int
current_mm_map (struct prctl_mm_map *mm)
{
  unsigned long long v[52];
  if (sbx_proc_stat (0, v, 51) < 0)
    return -1;
  memset (mm, 0, sizeof *mm);
  mm->start_code = v[26];
  mm->end_code = v[27];
  mm->start_stack = v[28];
  mm->start_data = v[45];
  mm->end_data = v[46];
  mm->start_brk = v[47];
  mm->arg_start = v[48];
  mm->arg_end = v[49];
  mm->env_start = v[50];
  mm->env_end = v[51];
  mm->brk = (uint64_t)syscall (SYS_brk, 0);
  mm->exe_fd = (uint32_t)-1;
  return 0;
}

/* Make the running image the sealed file COPY without an exec: map every
   range of the binary afresh from COPY (same offsets, same bytes; the
   pages of its writable segment, which relocations and the program have
   changed, are copied over first), move each new mapping over the old one
   in one mremap, then point /proc/self/exe at COPY (PR_SET_MM_MAP's
   exe_fd, refused by the kernel while any mapping of the old file
   remains; the other fields are set to what they are).  Needs
   CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN; -1 when anything fails, and
   the caller re-executes instead (what was remapped already holds the
   same bytes).  Single-threaded, and nothing writes the program's data
   between a copy and its mremap.  */
static int
adopt_in_place (int copy, const struct stat *self)
{
  struct image_map m[MAX_IMAGE_MAPS];
  struct program_layout l = { .nw = 0 };
  struct prctl_mm_map mm;
  struct stat cst;
  long page = sysconf (_SC_PAGESIZE);
  int n, ncopy;

  /* Probe the permission: with an fd that cannot be open, the kernel
     fails EBADF only after its capability check.  */
  if (current_mm_map (&mm) < 0)
    return -1;
  mm.exe_fd = (uint32_t)INT32_MAX;
  if (prctl (PR_SET_MM, PR_SET_MM_MAP, &mm, sizeof mm, 0) == 0 || errno != EBADF)
    return -1;
  if (fstat (copy, &cst) < 0)
    return -1;
  n = scan_maps (self, m, MAX_IMAGE_MAPS, NULL, NULL);
  dl_iterate_phdr (program_layout_cb, &l);
  if (n <= 0 || !main_program_in (&l, m, n))
    return -1;
  for (int i = 0; i < n; i++)
    {
      size_t len = m[i].end - m[i].start;
      bool dirty = in_writable_segment (&l, m[i].start, m[i].end);
      void *t;
      /* Every page must exist in the copy (a mapping past its end would
         fault with SIGBUS): the copy ends inside the last page at most.  */
      if (m[i].off + (off_t)len > ((cst.st_size + page - 1) / page) * page)
        return -1;
      if (dirty && !(m[i].prot & PROT_READ))
        return -1;
      t = mmap (NULL, len, dirty ? PROT_READ | PROT_WRITE : m[i].prot, MAP_PRIVATE, copy, m[i].off);
      if (t == MAP_FAILED)
        return -1;
      if (dirty)
        {
          memcpy (t, (void *)m[i].start, len);
          if (m[i].prot != (PROT_READ | PROT_WRITE) && mprotect (t, len, m[i].prot) < 0)
            {
              munmap (t, len);
              return -1;
            }
        }
      if (mremap (t, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)m[i].start) == MAP_FAILED)
        {
          munmap (t, len);
          return -1;
        }
    }
  /* Nothing of the old file is mapped any more (the kernel only compares
     paths, which would miss the file reached another way), and COPY is;
     for bind_view's, the same file, each mapping is through its mount.  */
  if (cst.st_ino == self->st_ino && cst.st_dev == self->st_dev)
    {
      if (scan_maps (self, m, MAX_IMAGE_MAPS, NULL, NULL) != n || !maps_through_view (m, n))
        return -1;
    }
  else if (scan_maps (self, m, MAX_IMAGE_MAPS, &cst, &ncopy) != 0 || ncopy != n)
    return -1;
  mm.brk = (uint64_t)syscall (SYS_brk, 0); /* nothing allocates from here on */
  mm.exe_fd = (uint32_t)copy;
  return prctl (PR_SET_MM, PR_SET_MM_MAP, &mm, sizeof mm, 0);
}

/* After adopt_in_place: /proc/self/exe is the view or copy.  */
static int
adopted (sbx_error **err)
{
  cleanup_close int now = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  marker = 1; /* the view or copy is ours */
  if (now >= 0 && fd_is_sealed_copy (now))
    return 0;
  return sbx_error_set (err, EPERM, "ran from a sealed copy of the binary in place, but it is not sealed");
}

int
sbx_reexec_sealed (char **argv, sbx_error **err)
{
  cleanup_close int exe = -1, copy = -1;
  struct stat st;

  if (marker < 0)
    {
      const char *m = getenv (SEALED_ENV);
      marker = m && strcmp (m, "1") == 0;
      unsetenv (SEALED_ENV); /* never reaches hooks or containers */
    }
  exe = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (exe < 0)
    return sbx_error_sys (err, "open /proc/self/exe (to run from a sealed copy)");
  if (fd_is_sealed_copy (exe))
    {
      /* An exec by fd names the process after the fd (its number):
         keep the name ps and pgrep know.  */
      if (marker == 1 && argv[0])
        {
          const char *base = strrchr (argv[0], '/');
          prctl (PR_SET_NAME, base ? base + 1 : argv[0], 0, 0, 0);
        }
      return 0;
    }
  if (marker == 1)
    return sbx_error_set (err, EPERM, "re-executed from a sealed copy of the binary, but it is not sealed");
  if (fstat (exe, &st) < 0)
    return sbx_error_sys (err, "stat /proc/self/exe");
  copy = overlay_view (&st);
  if (copy < 0 && (copy = bind_view (&st)) >= 0)
    {
      /* only in place: a re-executed image could not tell the mount */
      if (adopt_in_place (copy, &st) == 0)
        return adopted (err);
      close (copy);
      copy = -1;
      view_mnt = 0;
    }
  if (copy < 0)
    {
      off_t len = exec_extent (exe, st.st_size);
      copy = sealed_memfd (exe, len);
      if (copy < 0)
        copy = tmpfile_copy (exe, len);
    }
  if (copy < 0)
    return sbx_error_sys (err,
                          "make a sealed copy of the sbxrun binary (a read-only overlay, memfd_create and "
                          "O_TMPFILE all failed): refusing to let containers reach the binary itself");
  if (adopt_in_place (copy, &st) == 0)
    return adopted (err);
  if (setenv (SEALED_ENV, "1", 1) < 0)
    return sbx_error_sys (err, "setenv");
  syscall (SYS_execveat, copy, "", argv, environ, AT_EMPTY_PATH);
  int saved = errno;
  unsetenv (SEALED_ENV);
  errno = saved;
  return sbx_error_sys (err, "execute the sealed copy of the sbxrun binary");
}
