/* ocifeatures.c - see ocifeatures.h.  */
#include <config.h>
#include "container/container.h"

#include <string.h>

#include "core/core.h"
#include "egress/egress.h"
#include "fs/fs.h"
#include "process/process.h"
#include "security/security.h"

static char **
strv_from (const char *const *list, size_t *len)
{
  size_t n = 0;
  char **v;
  while (list[n])
    n++;
  v = xmalloc0 ((n + 1) * sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = xstrdup (list[i]);
  *len = n;
  return v;
}

#define SET_LIST(obj, field, list) ((obj)->field = strv_from ((list), &(obj)->field##_len))

static const char *const hooks[]
    = { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL };

static oci_features_enabled *
enabled (bool on)
{
  oci_features_enabled *e = xmalloc0 (sizeof *e);
  e->enabled = on;
  e->has_enabled = true;
  return e;
}

/* value is consumed.  */
static void
add_annotation (oci_features *f, const char *key, char *value)
{
  size_t n = f->annotations_len;
  f->annotations_keys = xrealloc (f->annotations_keys, (n + 2) * sizeof (char *));
  f->annotations_values = xrealloc (f->annotations_values, (n + 2) * sizeof (char *));
  f->annotations_keys[n] = xstrdup (key);
  f->annotations_values[n] = value;
  f->annotations_keys[n + 1] = f->annotations_values[n + 1] = NULL;
  f->annotations_len = n + 1;
}

int
sbx_features (oci_features **out, sbx_error **err)
{
  oci_features *f = xmalloc0 (sizeof *f);
  oci_features_linux *l;
  oci_features_cgroup *cg;
  oci_features_seccomp *sc;

  f->oci_version_min = xstrdup ("1.0.0");
  f->oci_version_max = xstrdup (OCI_VERSION);
  SET_LIST (f, hooks, hooks);
  SET_LIST (f, mount_options, sbx_mount_option_names);
  l = f->linux = xmalloc0 (sizeof *l);
  SET_LIST (l, namespaces, sbx_ns_names);
  l->capabilities = sbx_caps_known_names ();
  l->capabilities_len = sbx_strv_len (l->capabilities);
  cg = l->cgroup = xmalloc0 (sizeof *cg);
  cg->v1 = cg->v2 = true;
  cg->has_v1 = cg->has_v2 = cg->has_systemd = cg->has_systemd_user = cg->has_rdma = true;
  cg->rdma = true;
#ifdef HAVE_SYSTEMD
  cg->systemd = true; /* --systemd-cgroup (cgroup/systemd.c) */
#endif
  sc = l->seccomp = xmalloc0 (sizeof *sc);
  sc->enabled = sc->has_enabled = true;
  SET_LIST (sc, actions, sbx_seccomp_actions);
  SET_LIST (sc, operators, sbx_seccomp_operators);
  sc->archs = sbx_seccomp_archs ();
  sc->archs_len = sbx_strv_len (sc->archs);
  SET_LIST (sc, known_flags, sbx_seccomp_flags);
  /* Probed: a kernel may lack a flag libseccomp knows.  */
  sc->supported_flags = sbx_seccomp_supported_flags ();
  sc->supported_flags_len = sbx_strv_len (sc->supported_flags);
  /* What this host can apply: labels for an absent LSM are refused at
     create by the same test (lsm.c).  */
  l->apparmor = enabled (sbx_apparmor_enabled ());
  l->selinux = enabled (sbx_selinux_enabled ());
  /* resctrl groups are not implemented: linux.intelRdt is refused.  */
  l->intel_rdt = enabled (false);
  l->mount_extensions = xmalloc0 (sizeof *l->mount_extensions);
  l->mount_extensions->idmap = enabled (true);
  l->net_devices = enabled (true);
  /* The annotations we act on: name -> what it does.  */
  for (const sbx_oci_annotation *a = sbx_oci_annotations; a->name; a++)
    add_annotation (f, a->name, xstrdup (a->description));
  for (const sbx_net_annotation *a = sbx_net_annotations; a->name; a++)
    add_annotation (f, a->name, xstrdup (a->description));
  add_annotation (f, SBX_LANDLOCK_PREFIX "fs",
                  xstrdup ("Landlock filesystem rules: RIGHTS:PATH[,PATH...] groups joined by ;"));
  add_annotation (f, SBX_LANDLOCK_PREFIX "net", xstrdup ("Landlock TCP rules: bind:PORTS; connect:PORTS"));
  add_annotation (f, SBX_LANDLOCK_PREFIX "mode", xstrdup ("best-effort (default) or strict"));
  add_annotation (f, SBX_OVERLAY_ANNOTATION,
                  xstrdup ("true: a writable overlay over the rootfs, changes in the state directory"));
  /* What this kernel enforces (0: no Landlock).  */
  add_annotation (f, SBX_LANDLOCK_PREFIX "abi", xasprintf ("%d", sbx_landlock_abi ()));
  add_annotation (f, SBX_LANDLOCK_PREFIX "rights", sbx_landlock_rights_supported ());
  (void) err;
  *out = f;
  return 0;
}
