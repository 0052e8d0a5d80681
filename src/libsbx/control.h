/* control.h - operations on a running container's cgroup: pause, resume,
 * update, events.  Like container.h, each takes the state root and the
 * container ID; the cgroup comes from the description saved at create
 * (sbx_cgroup_load).  */
#ifndef SBX_CONTROL_H
#define SBX_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"
#include "error.h"
#include "ocispec.h"

/* Freeze every process of a running container (state "paused").  */
int sbx_container_pause (const char *root, const char *id, sbx_error **err);
/* Thaw a paused container; an error if it is not paused.  */
int sbx_container_resume (const char *root, const char *id, sbx_error **err);

/* Merge r into the container's linux.resources (what r sets replaces the
   saved values; devices, when given, replace the whole list), write the
   sections that changed to the cgroup, and save the merged config.json in
   the state directory.  The container must not be stopped.  */
int sbx_container_update (const char *root, const char *id, const oci_resources *r, sbx_error **err);

typedef struct
{
  bool stats_only;       /* print one stats event and return */
  long long interval_ms; /* between stats events; <= 0: none, only OOM events */
  int out_fd;            /* where the JSON lines go */
} sbx_events_opts;

/* runc-compatible event lines until the container stops:
   {"type":"stats","id":ID,"data":{cpu, memory, pids, blkio, hugetlb...}}
   every interval, {"type":"oom","id":ID} on each OOM.  */
int sbx_container_events (const char *root, const char *id, const sbx_events_opts *o, sbx_error **err);

/* The "data" object of a stats event (malloc'd compact JSON).  */
char *sbx_stats_json (const sbx_cgroup_stats *st);

/* A memory size as runc's update takes it: "1024", "512k", "1.5g", "64MiB",
   "2 GB" (binary units: k = 1024), or "-1" for unlimited.  */
int sbx_parse_size (const char *s, int64_t *out, sbx_error **err);
/* A Go duration ("5s", "250ms", "1m30s", "1.5h"); a bare number is seconds.  */
int sbx_parse_duration_ms (const char *s, long long *ms, sbx_error **err);

#endif
