/* init_internal.h - the container init process: what the child of `create` does
 * between clone3 and execve (see sync.h for the protocol with the parent).  */
#ifndef SBX_INIT_INTERNAL_H
#define SBX_INIT_INTERNAL_H

#include <stdbool.h>

#include "cgroup/cgroup.h"
#include "container/container.h"
#include "ocispec.h"
#include "process/process.h"
#include "security/security.h"
#include "state/state.h"

/* Everything both sides of create need; built by the parent before clone3
   (the child sees its copy).  */
typedef struct
{
  const sbx_create_opts *o;
  oci_config *c;
  char *bundle;        /* absolute */
  char *rootfs;        /* absolute */
  sbx_state *state;
  sbx_cgroup *cg;
  sbx_seccomp *sc;
  sbx_landlock *landlock; /* org.sbxrun.landlock.* (security.h) */
  sbx_ns_plan plan;
  int sync_parent;     /* parent's end */
  int sync_child;      /* child's end */
  int start_listen;    /* listening start.sock */
  bool foreground_tty; /* run in the foreground with a terminal: keep the pty */
  bool overlay;        /* the rootfs is an overlay (fs.h) ... */
  int overlay_fd;      /* ... built here, attached by the init (or -1) */
  int *bind_trees;     /* bind sources opened outside the user namespace (fs.h) */
  int *dev_trees;      /* device nodes made outside it (sbx_fs_dev_nodes_open), or NULL */
  bool host_root;      /* no new mount namespace, but mounts to make: the
                          rootfs is built below a private bind (fs.h) */
  bool fork_init;      /* a pid namespace joined by path: the setup runs in the
                          host's, and forks the init into it (init.c) */
  pid_t hooks_pid;     /* child: the init's host pid for the hooks' state */
  bool packet_guard;   /* under an egress policy (own or the pod's) */
  bool born_in_v2;     /* child: clone3 placed it in the v2 cgroup (CLONE_INTO_CGROUP) */
} sbx_creator;

/* create's first step (create_config.c): config.json read into cr->c,
   checked, and the namespaces and rootfs planned; nothing made yet.  */
int sbx_create_load_config (const sbx_create_opts *o, sbx_creator *cr, sbx_error **err);

/* The child's entry point; never returns.  */
_Noreturn void sbx_init_main (sbx_creator *cr);

#endif
