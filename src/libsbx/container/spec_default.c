/* spec_default.c - the default config.json, kept as JSON text so it reads
 * like the file users get, then adjusted in C for --rootless.
 *
 * The seccomp profile is a deny-list written for sbxrun: everything is
 * allowed except what lets a process reach the kernel's administrative
 * surface (modules, kexec, mounts, namespaces, keyrings, bpf, perf, ptrace
 * and cross-process memory, clocks, swap, io_uring).  clone() with a
 * namespace flag is refused flag by flag; clone3() gets ENOSYS so that libc
 * falls back to the filtered clone().  */
#include <config.h>
#include "container/container.h"

#include <string.h>
#include <unistd.h>

#include "core/core.h"

static const char default_config[] =
  "{"
  "\"ociVersion\": \"" OCI_VERSION "\","
  "\"process\": {"
  "  \"terminal\": true,"
  "  \"user\": {\"uid\": 0, \"gid\": 0},"
  "  \"args\": [\"sh\"],"
  "  \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],"
  "  \"cwd\": \"/\","
  "  \"capabilities\": {"
#define CAPS "[\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_FOWNER\", \"CAP_FSETID\", \"CAP_KILL\"," \
             " \"CAP_NET_BIND_SERVICE\", \"CAP_SETFCAP\", \"CAP_SETGID\", \"CAP_SETPCAP\"," \
             " \"CAP_SETUID\", \"CAP_SYS_CHROOT\"]"
  "    \"bounding\": " CAPS ", \"effective\": " CAPS ", \"permitted\": " CAPS
  "  },"
  "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],"
  "  \"noNewPrivileges\": true"
  "},"
  "\"root\": {\"path\": \"rootfs\", \"readonly\": true},"
  "\"hostname\": \"sbxrun\","
  "\"mounts\": ["
  "  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
  "  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
  "   \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
  "  {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\","
  "   \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\"]},"
  "  {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\","
  "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},"
  "  {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\","
  "   \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},"
  "  {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\","
  "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]},"
  "  {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\","
  "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]}"
  "],"
  "\"linux\": {"
  "  \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},"
  "  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"},"
  "                 {\"type\": \"uts\"}, {\"type\": \"mount\"}, {\"type\": \"cgroup\"}],"
  "  \"seccomp\": {"
  "    \"defaultAction\": \"SCMP_ACT_ALLOW\","
  "    \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"],"
  "    \"syscalls\": ["
  "    {\"names\": ["
  "      \"acct\", \"add_key\", \"bpf\", \"clock_adjtime\", \"clock_settime\", \"create_module\","
  "      \"delete_module\", \"finit_module\", \"fsconfig\", \"fsmount\", \"fsopen\", \"fspick\","
  "      \"get_kernel_syms\", \"init_module\", \"io_uring_enter\", \"io_uring_register\", \"io_uring_setup\", \"ioperm\","
  "      \"iopl\", \"kcmp\", \"kexec_file_load\", \"kexec_load\", \"keyctl\", \"lookup_dcookie\","
  "      \"mount\", \"mount_setattr\", \"move_mount\", \"name_to_handle_at\", \"nfsservctl\", \"open_by_handle_at\","
  "      \"open_tree\", \"perf_event_open\", \"pivot_root\", \"process_vm_readv\", \"process_vm_writev\", \"ptrace\","
  "      \"query_module\", \"quotactl\", \"quotactl_fd\", \"reboot\", \"request_key\", \"setns\","
  "      \"settimeofday\", \"stime\", \"swapoff\", \"swapon\", \"syslog\", \"_sysctl\","
  "      \"sysfs\", \"umount\", \"umount2\", \"unshare\", \"uselib\", \"userfaultfd\","
  "      \"ustat\", \"vm86\", \"vm86old\""
  "     ], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1},"
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 131072, \"valueTwo\": 131072, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWNS */
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 33554432, \"valueTwo\": 33554432, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWCGROUP */
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 67108864, \"valueTwo\": 67108864, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWUTS */
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 134217728, \"valueTwo\": 134217728, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWIPC */
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 268435456, \"valueTwo\": 268435456, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWUSER */
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 536870912, \"valueTwo\": 536870912, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWPID */
  "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 1,"
  "     \"args\": [{\"index\": 0, \"value\": 1073741824, \"valueTwo\": 1073741824, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"  /* CLONE_NEWNET */
  "    {\"names\": [\"clone3\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38}"
  "    ]"
  "  },"
  "  \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\","
  "    \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\","
  "    \"/proc/scsi\", \"/sys/firmware\", \"/sys/devices/virtual/powercap\"],"
  "  \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\","
  "    \"/proc/sysrq-trigger\"]"
  "}"
  "}";

static int
make_rootless (oci_config *c, sbx_error **err)
{
  oci_linux *l = c->linux;
  size_t w = 0;

  /* A user namespace replaces the network namespace an unprivileged user
     could not configure anyway.  */
  for (size_t i = 0; i < l->namespaces_len; i++)
    {
      if (strcmp (l->namespaces[i]->type, "network") == 0)
        {
          ocispec_free (&oci_namespace_type, l->namespaces[i]);
          continue;
        }
      l->namespaces[w++] = l->namespaces[i];
    }
  l->namespaces[w] = xmalloc0 (sizeof (oci_namespace));
  l->namespaces[w]->type = xstrdup ("user");
  l->namespaces_len = w + 1;

  uid_t ids[2] = { geteuid (), getegid () };
  oci_id_mapping ***maps[2] = { &l->uid_mappings, &l->gid_mappings };
  size_t *lens[2] = { &l->uid_mappings_len, &l->gid_mappings_len };
  for (int k = 0; k < 2; k++)
    {
      oci_id_mapping *m = xmalloc0 (sizeof *m);
      m->host_id = ids[k];
      m->size = 1;
      m->has_container_id = m->has_host_id = m->has_size = true;
      *maps[k] = xmalloc0 (2 * sizeof (oci_id_mapping *));
      (*maps[k])[0] = m;
      *lens[k] = 1;
    }

  /* No device cgroup rules and no gid=5 on devpts without privileges; /sys
     is bound from the host because sysfs needs a network namespace we own. */
  ocispec_free (&oci_resources_type, l->resources);
  l->resources = NULL;
  for (size_t i = 0; i < c->mounts_len; i++)
    {
      oci_mount *m = c->mounts[i];
      if (strcmp (m->destination, "/dev/pts") == 0)
        {
          size_t k = 0;
          for (size_t j = 0; j < m->options_len; j++)
            if (strcmp (m->options[j], "gid=5") != 0)
              m->options[k++] = m->options[j];
            else
              free (m->options[j]);
          m->options[k] = NULL;
          m->options_len = k;
        }
      else if (strcmp (m->destination, "/sys") == 0)
        {
          free (m->type);
          free (m->source);
          m->type = xstrdup ("none");
          m->source = xstrdup ("/sys");
          sbx_strv_free (m->options);
          m->options = xmalloc0 (6 * sizeof (char *));
          m->options[0] = xstrdup ("rbind");
          m->options[1] = xstrdup ("nosuid");
          m->options[2] = xstrdup ("noexec");
          m->options[3] = xstrdup ("nodev");
          m->options[4] = xstrdup ("ro");
          m->options_len = 5;
        }
    }
  (void) err;
  return 0;
}

int
sbx_spec_default (bool rootless, oci_config **out, sbx_error **err)
{
  cleanup_free char *msg = NULL;
  oci_config *c = ocispec_parse (&oci_config_type, default_config, sizeof default_config - 1, &msg);
  if (c == NULL)
    return sbx_error_set (err, EINVAL, "built-in default config: %s", msg);
  if (rootless && make_rootless (c, err) < 0)
    {
      oci_config_free (c);
      return -1;
    }
  *out = c;
  return 0;
}
