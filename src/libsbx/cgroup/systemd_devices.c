/* cgroup/systemd_devices.c - linux.resources.devices as systemd's
 * DevicePolicy= and DeviceAllow= for the container's unit.
 *
 * Under --systemd-cgroup two device filters sit on the unit's cgroup: the
 * one systemd makes from the unit's properties (on v2 an eBPF program it
 * names "sd_devices", on v1 the devices.allow list it writes) and ours
 * (devices_bpf.c / v1.c), which is exact.  systemd's must never deny what
 * ours allows, and should say as much as it can, because systemd applies it
 * again whenever it re-realizes the unit (daemon-reload, SetUnitProperties):
 * on v1 its list is then the only one, and without properties systemd would
 * widen it to "a" (everything).
 *
 * systemd only has allow lists, so the translation is a superset of the
 * rules: rules before the last "deny everything" rule are overridden by it,
 * and each allow rule after it becomes one DeviceAllow entry (later deny
 * rules only narrow, which our filter does).  Without such a deny-all rule,
 * or with an allow rule for every device, the rules are a block list that
 * systemd cannot say: the policy is then "auto" with no entries (systemd
 * filters nothing and ours does all).
 *
 * DeviceAllow takes /dev/char/MAJ:MIN and /dev/block/MAJ:MIN (parsed, the
 * node need not exist), "char-NAME"/"block-NAME" for a major by its name in
 * /proc/devices (all its minors), and "char-*"/"block-*" for every device of
 * the type.  A rule with a wildcard minor uses the major's name (or the
 * type's "*" when /proc/devices has no such major); one with a wildcard
 * major the type's "*".  Entries with the same path have their access
 * merged.  */
#include <config.h>
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* The name /proc/devices gives major in the section of type ('c' or 'b');
   NULL if none.  */
static char *
major_name (const char *proc_devices, char type, int64_t major)
{
  const char *want = type == 'c' ? "Character devices:" : "Block devices:";
  bool in = false;

  for (const char *l = proc_devices; l && *l;)
    {
      const char *nl = strchr (l, '\n');
      size_t len = nl ? (size_t)(nl - l) : strlen (l);
      long long m;
      char name[64];

      if (len && l[len - 1] == ':')
        in = strncmp (l, want, len) == 0;
      else if (in && sscanf (l, " %lld %63s", &m, name) == 2 && m == major)
        return xstrdup (name);
      l = nl ? nl + 1 : l + len;
    }
  return NULL;
}

static void
add_entry (sbx_cg_sd_device **v, size_t *n, char *path, const char *acc)
{
  size_t i;
  for (i = 0; i < *n; i++)
    if (strcmp ((*v)[i].path, path) == 0)
      break;
  if (i == *n)
    {
      *v = xrealloc (*v, (*n + 1) * sizeof **v);
      (*v)[i] = (sbx_cg_sd_device){ path, "" };
      (*n)++;
    }
  else
    free (path);
  /* the union, in the order systemd prints it: r, w, m */
  {
    char merged[4];
    size_t k = 0;
    for (const char *c = "rwm"; *c; c++)
      if (strchr (acc, *c) || strchr ((*v)[i].access, *c))
        merged[k++] = *c;
    merged[k] = '\0';
    memcpy ((*v)[i].access, merged, sizeof merged);
  }
}

void
sbx_cg_sd_devices_free (sbx_cg_sd_device *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (v[i].path);
  free (v);
}

static bool
is_all (const oci_device_cgroup *d)
{
  return d->type == NULL || *d->type == '\0' || d->type[0] == 'a';
}

bool
sbx_cg_systemd_devices (oci_device_cgroup *const *rules, size_t n, const char *proc_devices,
                        sbx_cg_sd_device **out, size_t *nout)
{
  cleanup_free char *own = NULL;
  sbx_cg_sd_device *v = NULL;
  size_t nv = 0, from = 0;
  bool deny_all = false;

  *out = NULL;
  *nout = 0;
  for (size_t i = n; i-- > 0 && !deny_all;)
    if (is_all (rules[i]) && !rules[i]->allow)
      {
        from = i + 1;
        deny_all = true;
      }
  if (!deny_all)
    return false; /* a block list */
  if (proc_devices == NULL)
    {
      size_t len;
      if (sbx_read_file ("/proc/devices", 1 << 16, &own, &len, NULL) < 0)
        own = NULL;
      proc_devices = own;
    }
  for (size_t i = from; i < n; i++)
    {
      const oci_device_cgroup *d = rules[i];
      const char *acc = d->access && *d->access ? d->access : "rwm";
      const char *kind;
      char t;
      int64_t maj, min;

      if (!d->allow)
        continue;
      if (is_all (d))
        {
          sbx_cg_sd_devices_free (v, nv);
          return false;
        }
      t = d->type[0] == 'c' ? 'c' : 'b';
      kind = t == 'c' ? "char" : "block";
      maj = d->has_major ? d->major : -1;
      min = d->has_minor ? d->minor : -1;
      if (maj >= 0 && min >= 0)
        add_entry (&v, &nv, xasprintf ("/dev/%s/%lld:%lld", kind, (long long)maj, (long long)min), acc);
      else
        {
          cleanup_free char *name = maj >= 0 ? major_name (proc_devices, t, maj) : NULL;
          add_entry (&v, &nv, xasprintf ("%s-%s", kind, name ? name : "*"), acc);
        }
    }
  *out = v;
  *nout = nv;
  return true;
}
