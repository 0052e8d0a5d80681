/* cli.h - the thin command-line layer: global options, the subcommand table
 * and a declarative option parser shared by every cmd_*.c file.  Each
 * subcommand parses its flags and calls into libsbx; nothing here does
 * runtime work.  */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <stdbool.h>

#include "core/core.h"

typedef struct
{
  const char *root;      /* state root (sbx_default_state_root) */
  const char *log;       /* --log FILE */
  const char *log_format;
  bool debug;
  bool systemd_cgroup;
  const char *rootless;   /* --rootless VALUE as given, NULL for auto */
  bool rootless_on;       /* what it resolved to (sbx_rootless_resolve) */
  const char *criu;      /* --criu PATH, default "criu" */
} sbx_globals;

typedef struct
{
  const char *name;  /* long name; a one-letter name is also the short one */
  char short_name;   /* 0 for none */
  bool has_arg;
  const char *arg;   /* placeholder shown in help */
  const char *help;
} sbx_opt;

/* Called for every option met; key is the index in the option table.  */
typedef int (*sbx_opt_cb) (void *data, int key, const char *arg, sbx_error **err);

typedef struct sbx_command
{
  const char *name;
  const char *args;    /* positional arguments, for help */
  const char *summary;
  const sbx_opt *opts; /* terminated by a zero entry */
  int (*run) (sbx_globals *g, int argc, char **argv, sbx_error **err);
  bool stop_at_args;   /* stop option parsing at the first argument (exec) */
  bool sealed;         /* makes processes a container can see: run from a
                          sealed copy of the binary (sealed.h) */
} sbx_command;

/* Parse argv (argv[0] is the command name).  Returns the index of the first
   positional argument, SBX_CLI_HELP if --help was printed, or <0 with err.  */
#define SBX_CLI_HELP (-1000)
/* What run returns (with err) for a failure that exits 255 (exec's, as
   runc's), not 1.  */
#define SBX_CLI_FAILED_255 (-1001)
int sbx_cli_parse (const sbx_command *cmd, int argc, char **argv, sbx_opt_cb cb, void *data,
                   sbx_error **err);
/* An sbx_opt_cb for a command whose only options are one boolean flag:
   data points to the bool to set.  */
int sbx_cli_set_flag (void *data, int key, const char *arg, sbx_error **err);
/* Check the number of positional arguments left.  */
int sbx_cli_nargs (const sbx_command *cmd, int nargs, int min, int max, sbx_error **err);
void sbx_cli_usage (const sbx_command *cmd, int fd);

/* The subcommands, in the order --help lists them.  */
#define SBX_COMMANDS(X)                                                                            \
  X (create) X (start) X (run) X (state) X (kill) X (delete) X (list) X (exec) X (ps) X (pause)   \
  X (resume) X (update) X (checkpoint) X (restore) X (events) X (spec) X (features) X (snapshot)

/* An option callback for commands without options.  */
int sbx_no_opts (void *data, int key, const char *arg, sbx_error **err);

/* create and run share their options.  */
enum
{
  SBX_CO_BUNDLE,
  SBX_CO_CONFIG,
  SBX_CO_PID_FILE,
  SBX_CO_CONSOLE_SOCKET,
  SBX_CO_PRESERVE_FDS,
  SBX_CO_NO_PIVOT,
  SBX_CO_NO_NEW_KEYRING,
  SBX_CO_OVERLAY,
  SBX_CO_FROM_SNAPSHOT,
  SBX_CO_DETACH,
  SBX_CO_KEEP,
};
extern const sbx_opt sbx_run_options[];
#include "container/container.h"
int sbx_create_parse (const sbx_command *cmd, sbx_globals *g, int argc, char **argv,
                      sbx_create_opts *o, sbx_error **err);

/* checkpoint and restore share CRIU's flags: their option tables start
   with SBX_CRIU_OPTIONS (keys 0 .. SBX_CRIU_O_N-1), and sbx_criu_flag sets
   the one of key in f (1), or says it is not one of them (0).  */
#include "checkpoint/checkpoint.h"
enum
{
  SBX_CRIU_O_IMAGE,
  SBX_CRIU_O_WORK,
  SBX_CRIU_O_TCP,
  SBX_CRIU_O_UNIX,
  SBX_CRIU_O_SHELL,
  SBX_CRIU_O_LOCKS,
  SBX_CRIU_O_CGMODE,
  SBX_CRIU_O_LAZY,
  SBX_CRIU_O_N
};
#define SBX_CRIU_OPTIONS                                                                                     \
  [SBX_CRIU_O_IMAGE] = { "image-path", 0, true, "DIR", "the images (default <root>/<id>/checkpoint)" },      \
  [SBX_CRIU_O_WORK]                                                                                          \
      = { "work-path", 0, true, "DIR", "CRIU's log and work files (default: the image path)" },              \
  [SBX_CRIU_O_TCP] = { "tcp-established", 0, false, NULL, "dump/restore established TCP connections" },      \
  [SBX_CRIU_O_UNIX] = { "ext-unix-sk", 0, false, NULL, "allow unix sockets connected outside" },             \
  [SBX_CRIU_O_SHELL] = { "shell-job", 0, false, NULL, "the container is a shell job (session outside)" },    \
  [SBX_CRIU_O_LOCKS] = { "file-locks", 0, false, NULL, "dump/restore file locks" },                          \
  [SBX_CRIU_O_CGMODE]                                                                                        \
      = { "manage-cgroups-mode", 0, true, "MODE", "soft (default), full, strict or ignore" },                \
  [SBX_CRIU_O_LAZY]                                                                                          \
      = { "lazy-pages", 0, false, NULL, "memory over userfaultfd, on demand (criu lazy-pages)" },
int sbx_criu_flag (sbx_criu_flags *f, int key, const char *arg);

#define SBX_DECLARE_CMD(n) extern const sbx_command sbx_cmd_##n;
SBX_COMMANDS (SBX_DECLARE_CMD)

#endif
