/* cmd_features.c - `sbxrun features`: print the OCI features document.  */
#include <config.h>

#include <stdio.h>

#include "checkpoint/checkpoint.h"
#include "cli.h"
#include "container/container.h"
#include "core/core.h"

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  oci_features *f = NULL;
  cleanup_free char *json = NULL;
  int i = sbx_cli_parse (&sbx_cmd_features, argc, argv, on_opt, NULL, err);

  if (i < 0)
    return i;
  if (sbx_cli_nargs (&sbx_cmd_features, argc - i, 0, 0, err) < 0)
    return -1;
  if (sbx_features (&f, err) < 0)
    return -1;
  {
    /* Whether checkpoint/restore can work here (criu check, cached).  */
    cleanup_free char *why = NULL;
    bool ok = sbx_criu_usable (g->criu, g->root, &why);
    size_t n = f->annotations_len;
    f->annotations_keys = xrealloc (f->annotations_keys, (n + 2) * sizeof (char *));
    f->annotations_values = xrealloc (f->annotations_values, (n + 2) * sizeof (char *));
    f->annotations_keys[n] = xstrdup ("org.sbxrun.criu");
    f->annotations_values[n] = xasprintf ("%s: %s", ok ? "usable" : "not usable", why);
    f->annotations_keys[n + 1] = f->annotations_values[n + 1] = NULL;
    f->annotations_len = n + 1;
  }
  json = ocispec_generate (&oci_features_type, f, true, NULL);
  oci_features_free (f);
  printf ("%s\n", json);
  return 0;
}

const sbx_command sbx_cmd_features = {
  .name = "features",
  .summary = "print the features this runtime implements (JSON)",
  .run = run,
};
