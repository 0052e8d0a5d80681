/* cmd_spec.c - `sbxrun spec`: write a default config.json.  */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "container/container.h"
#include "core/core.h"

enum { OPT_BUNDLE, OPT_ROOTLESS };
static const sbx_opt opts[] = {
  [OPT_BUNDLE] = { "bundle", 'b', true, "DIR", "write config.json into DIR (default: .)" },
  [OPT_ROOTLESS] = { "rootless", 0, false, NULL, "a config for an unprivileged user" },
  { 0 },
};

struct args
{
  const char *bundle;
  bool rootless;
};

static int
on_opt (void *data, int key, const char *arg, sbx_error **err)
{
  struct args *a = data;
  if (key == OPT_BUNDLE)
    a->bundle = arg;
  else
    a->rootless = true;
  return 0;
}

static int
run (sbx_globals *g, int argc, char **argv, sbx_error **err)
{
  struct args a = { .bundle = "." };
  oci_config *c = NULL;
  cleanup_free char *json = NULL;
  cleanup_close int dirfd = -1;
  size_t len;
  int i = sbx_cli_parse (&sbx_cmd_spec, argc, argv, on_opt, &a, err);

  if (i < 0)
    return i;
  if (sbx_cli_nargs (&sbx_cmd_spec, argc - i, 0, 0, err) < 0)
    return -1;
  dirfd = open (a.bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return sbx_error_sys (err, "spec: bundle `%s`", a.bundle);
  if (faccessat (dirfd, "config.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return sbx_error_set (err, EEXIST, "spec: `%s/config.json` already exists", a.bundle);
  if (sbx_spec_default (a.rootless || (g->rootless && strcmp (g->rootless, "true") == 0), &c, err) < 0)
    return -1;
  json = ocispec_generate (&oci_config_type, c, true, &len);
  oci_config_free (c);
  /* yajl's beautifier already ends the text with a newline.  */
  if (sbx_write_file_atomic (dirfd, "config.json", json, len, 0644, err) < 0)
    return sbx_error_wrap (err, "spec");
  return 0;
}

const sbx_command sbx_cmd_spec = {
  .name = "spec",
  .summary = "write a default config.json into a bundle directory",
  .opts = opts,
  .run = run,
};
