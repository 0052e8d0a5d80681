/* cli.c - option parsing shared by all subcommands.  getopt_long_only also
 * accepts Go-style single-dash long options (`-bundle`), which runc users and
 * scripts written for runc rely on.  */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

void
sbx_cli_usage (const sbx_command *cmd, int fd)
{
  dprintf (fd, "Usage: sbxrun %s%s%s%s\n\n%s\n", cmd->name, cmd->opts ? " [OPTIONS]" : "",
           cmd->args ? " " : "", cmd->args ? cmd->args : "", cmd->summary);
  dprintf (fd, "\nOptions:\n");
  for (const sbx_opt *o = cmd->opts; o && o->name; o++)
    {
      char left[64];
      if (o->short_name)
        snprintf (left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->has_arg ? " " : "",
                  o->has_arg ? o->arg : "");
      else
        snprintf (left, sizeof left, "    --%s%s%s", o->name, o->has_arg ? " " : "",
                  o->has_arg ? o->arg : "");
      dprintf (fd, "  %-30s %s\n", left, o->help);
    }
  dprintf (fd, "  %-30s %s\n", "-h, --help", "show this help");
}

int
sbx_cli_set_flag (void *data, int key, const char *arg, sbx_error **err)
{
  (void)key, (void)arg, (void)err;
  *(bool *)data = true;
  return 0;
}

int
sbx_cli_parse (const sbx_command *cmd, int argc, char **argv, sbx_opt_cb cb, void *data,
               sbx_error **err)
{
  size_t n = 0;
  char shorts[128] = "+";
  struct option *longopts;
  int help_key;

  for (const sbx_opt *o = cmd->opts; o && o->name; o++)
    n++;
  help_key = (int) n;
  longopts = xmalloc0 ((n + 2) * sizeof *longopts);
  if (!cmd->stop_at_args)
    shorts[0] = '\0';
  for (size_t i = 0; i < n; i++)
    {
      const sbx_opt *o = &cmd->opts[i];
      longopts[i] = (struct option){ o->name, o->has_arg ? required_argument : no_argument, NULL,
                                     (int) i + 256 };
      if (o->short_name)
        {
          size_t l = strlen (shorts);
          shorts[l] = o->short_name;
          shorts[l + 1] = o->has_arg ? ':' : '\0';
          shorts[l + 2] = '\0';
        }
    }
  longopts[n] = (struct option){ "help", no_argument, NULL, help_key + 256 };
  strcat (shorts, "h");

  optind = 0; /* full reinitialisation of getopt */
  opterr = 0;
  for (;;)
    {
      int c = getopt_long_only (argc, argv, shorts, longopts, NULL), key = -1;
      if (c == -1)
        break;
      if (c == 'h' || c == help_key + 256)
        {
          free (longopts);
          sbx_cli_usage (cmd, 1);
          return SBX_CLI_HELP;
        }
      if (c == '?' || c == ':')
        {
          const char *bad = argv[optind - 1];
          free (longopts);
          if (optopt && c == ':')
            return sbx_error_set (err, EINVAL, "%s: option `-%c` needs an argument", cmd->name,
                                  optopt);
          return sbx_error_set (err, EINVAL, "%s: unknown option or missing argument `%s` (see `sbxrun %s --help`)",
                                cmd->name, bad, cmd->name);
        }
      if (c >= 256)
        key = c - 256;
      else
        for (size_t i = 0; i < n; i++)
          if (cmd->opts[i].short_name == c)
            key = (int) i;
      if (cb (data, key, optarg, err) < 0)
        {
          free (longopts);
          return sbx_error_wrap (err, "%s: --%s", cmd->name, cmd->opts[key].name);
        }
    }
  free (longopts);
  return optind;
}

int
sbx_cli_nargs (const sbx_command *cmd, int nargs, int min, int max, sbx_error **err)
{
  if (nargs < min)
    return sbx_error_set (err, EINVAL, "%s: expected %s%s (see `sbxrun %s --help`)", cmd->name,
                          cmd->args ? cmd->args : "arguments", "", cmd->name);
  if (max >= 0 && nargs > max)
    return sbx_error_set (err, EINVAL, "%s: too many arguments (see `sbxrun %s --help`)",
                          cmd->name, cmd->name);
  return 0;
}

int
sbx_no_opts (void *data, int key, const char *arg, sbx_error **err)
{
  return 0;
}
