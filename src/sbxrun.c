/* sbxrun.c - entry point: global options, then dispatch to one subcommand.  */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "cli.h"
#include "container/container.h"
#include "core/core.h"
#include "security/security.h"

#define SBX_CMD_PTR(n) &sbx_cmd_##n,
static const sbx_command *commands[] = { SBX_COMMANDS (SBX_CMD_PTR) NULL };

static void
print_help (int fd)
{
  dprintf (fd, "Usage: sbxrun [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n\n"
               "sbxrun - an OCI container runtime with an nftables egress allowlist.\n\n"
               "Commands:\n");
  for (const sbx_command **c = commands; *c; c++)
    dprintf (fd, "  %-12s %s\n", (*c)->name, (*c)->summary);
  dprintf (fd, "\nGlobal options:\n"
               "  --root DIR             state directory root (default /run/sbxrun; as a user\n"
               "                         $XDG_RUNTIME_DIR/sbxrun)\n"
               "  --log FILE             write diagnostics to FILE\n"
               "  --log-format FORMAT    text (default) or json\n"
               "  --debug                verbose diagnostics\n"
               "  --systemd-cgroup       cgroups through systemd (cgroupsPath slice:prefix:name)\n"
               "  --rootless [VALUE]     auto (default: when not root or in a partial user\n"
               "                         namespace), true or false: run without host privileges\n"
               "  --criu PATH            the criu binary for checkpoint/restore (default criu)\n"
               "  -v, --version          print the version and features\n"
               "  -h, --help             show this help\n\n"
               "`sbxrun COMMAND --help` describes a command.  See sbxrun(1).\n");
}

static void
print_version (const sbx_globals *g)
{
  cleanup_free char *why = NULL;
  bool criu = sbx_criu_usable (g->criu, g->root, &why);
  printf ("sbxrun version %s\ncommit: %s\nspec: %s\n%s\ncriu: %s%s\n", PACKAGE_VERSION, GIT_COMMIT,
          OCI_VERSION, SBX_FEATURE_TAGS, criu ? "usable, " : "not usable: ", why);
}

int
main (int argc, char **argv)
{
  sbx_globals g = { .log_format = "text" };
  cleanup_free char *default_root = NULL;
  cleanup_error sbx_error *err = NULL;
  enum { O_ROOT = 256, O_LOG, O_LOG_FORMAT, O_DEBUG, O_SYSTEMD, O_ROOTLESS, O_CRIU };
  static const struct option opts[] = {
    { "root", required_argument, NULL, O_ROOT },
    { "log", required_argument, NULL, O_LOG },
    { "log-format", required_argument, NULL, O_LOG_FORMAT },
    { "debug", no_argument, NULL, O_DEBUG },
    { "systemd-cgroup", no_argument, NULL, O_SYSTEMD },
    { "rootless", optional_argument, NULL, O_ROOTLESS },
    { "criu", required_argument, NULL, O_CRIU },
    { "version", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { 0 },
  };
  const sbx_command *cmd = NULL;
  bool version = false;
  int c, r;

  /* A run lives milliseconds: memory freed (a large config's parse, the
     JSON written back) is kept for the next allocation instead of being
     unmapped, trimmed and faulted in again.  */
  mallopt (M_MMAP_THRESHOLD, 4 << 20);
  mallopt (M_TRIM_THRESHOLD, 8 << 20);
  /* Before anything of ours is opened: the fds a container may inherit.  */
  sbx_inherited_fds_snapshot ();
  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+vh", opts, NULL)) != -1)
    switch (c)
      {
      case O_ROOT: g.root = optarg; break;
      case O_LOG: g.log = optarg; break;
      case O_LOG_FORMAT: g.log_format = optarg; break;
      case O_DEBUG: g.debug = true; break;
      case O_SYSTEMD: g.systemd_cgroup = true; break;
      case O_ROOTLESS:
        /* runc takes `--rootless VALUE`; a bare `--rootless` means true.  */
        g.rootless = optarg ? optarg : "true";
        if (optarg == NULL && optind < argc
            && (strcmp (argv[optind], "true") == 0 || strcmp (argv[optind], "false") == 0
                || strcmp (argv[optind], "auto") == 0))
          g.rootless = argv[optind++];
        if (strcmp (g.rootless, "true") != 0 && strcmp (g.rootless, "false") != 0
            && strcmp (g.rootless, "auto") != 0)
          {
            fprintf (stderr, "sbxrun: --rootless `%s`: expected true, false or auto\n",
                     g.rootless);
            return 1;
          }
        break;
      case O_CRIU: g.criu = optarg; break;
      case 'v': version = true; break;
      case 'h': print_help (1); return 0;
      default:
        fprintf (stderr, "sbxrun: unknown global option `%s` (see `sbxrun --help`)\n",
                 argv[optind - 1]);
        return 1;
      }
  if (sbx_rootless_resolve (g.rootless, &g.rootless_on, &err) < 0)
    {
      sbx_log_error (err);
      return 1;
    }
  if (g.root == NULL)
    g.root = default_root = sbx_default_state_root (g.rootless_on);
  if (version) /* after the loop: --criu may follow -v */
    {
      print_version (&g);
      return 0;
    }
  if (sbx_log_init (g.log, g.log_format, g.debug, &err) < 0)
    {
      sbx_log_error (err);
      return 1;
    }
  if (optind >= argc)
    {
      print_help (2);
      return 1;
    }
  for (const sbx_command **p = commands; *p; p++)
    if (strcmp ((*p)->name, argv[optind]) == 0)
      cmd = *p;
  if (cmd == NULL)
    {
      sbx_error_set (&err, EINVAL, "unknown command `%s` (see `sbxrun --help`)", argv[optind]);
      sbx_log_error (err);
      return 1;
    }
  /* Nothing of ours is open yet but the log (close-on-exec, reopened).  */
  if (cmd->sealed && sbx_reexec_sealed (argv, &err) < 0)
    {
      sbx_log_error (err);
      return cmd == &sbx_cmd_exec ? 255 : 1; /* exec's own failure (SBX_CLI_FAILED_255) */
    }
  r = cmd->run (&g, argc - optind, argv + optind, &err);
  if (r == SBX_CLI_HELP)
    return 0;
  if (r < 0)
    {
      sbx_log_error (err);
      return r == SBX_CLI_FAILED_255 ? 255 : 1;
    }
  return r;
}
