/* caps.c - see caps.h.
 *
 * The five sets are handled as 64-bit masks (the kernel numbers capabilities
 * densely from 0, and no kernel has more than 64): names are resolved with
 * libcap once, then the masks are applied with prctl() and cap_set_proc().  */
#include <config.h>
#include "security/security.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "core/core.h"

#define MAX_CAPS 64

/* libcap's name for v as the runtime-spec spells it ("CAP_CHOWN"), or NULL
   when libcap does not know v (cap_to_name then returns the bare number).  */
static char *
cap_spec_name (cap_value_t v)
{
  char *s = cap_to_name (v);
  char *r;

  if (s == NULL)
    return NULL;
  if (!sbx_has_prefix (s, "cap_"))
    {
      cap_free (s);
      return NULL;
    }
  r = xstrdup (s);
  cap_free (s);
  for (char *p = r; *p; p++)
    *p = toupper ((unsigned char)*p);
  return r;
}

/* Resolve a runtime-spec name.  cap_from_name() is lenient (any case, no
   prefix, numbers), so the result is checked against the canonical spelling:
   the spec only allows "CAP_" + the upper-case name.  */
static int
lookup_cap (const char *name, cap_value_t *out)
{
  cleanup_free char *canon = NULL;
  cap_value_t v;

  if (name == NULL || !sbx_has_prefix (name, "CAP_"))
    return -1;
  if (cap_from_name (name, &v) < 0 || v < 0 || v >= MAX_CAPS)
    return -1;
  canon = cap_spec_name (v);
  if (canon == NULL || strcmp (canon, name) != 0)
    return -1;
  *out = v;
  return 0;
}

/* Highest capability number the running kernel supports.  libcap probes the
   bounding set at load time, which works without /proc (after pivot_root);
   /proc/sys/kernel/cap_last_cap is the fallback.  */
static int
kernel_last_cap (void)
{
  int bits = cap_max_bits ();
  if (bits <= 0)
    {
      cleanup_free char *s = NULL;
      long long n;
      if (sbx_read_file ("/proc/sys/kernel/cap_last_cap", 64, &s, NULL, NULL) == 0)
        {
          s[strcspn (s, "\n")] = '\0';
          if (sbx_parse_int64 (s, &n) == 0 && n >= 0)
            bits = (int)n + 1;
        }
    }
  if (bits <= 0)
    bits = CAP_LAST_CAP + 1;
  if (bits > MAX_CAPS)
    bits = MAX_CAPS;
  return bits - 1;
}

struct capset_desc
{
  const char *name;
  char **values;
  size_t len;
  uint64_t mask;
};

static void
describe_sets (const oci_capabilities *caps, struct capset_desc sets[5])
{
  static const char *names[5] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
  memset (sets, 0, 5 * sizeof sets[0]);
  for (int i = 0; i < 5; i++)
    sets[i].name = names[i];
  if (caps == NULL)
    return;
  sets[0].values = caps->bounding, sets[0].len = caps->bounding_len;
  sets[1].values = caps->effective, sets[1].len = caps->effective_len;
  sets[2].values = caps->inheritable, sets[2].len = caps->inheritable_len;
  sets[3].values = caps->permitted, sets[3].len = caps->permitted_len;
  sets[4].values = caps->ambient, sets[4].len = caps->ambient_len;
}

/* Fill every set's mask.  last_cap < 0: only validate.  Otherwise names the
   kernel does not support are left out, with one warning per name.  */
static int
resolve_sets (struct capset_desc sets[5], int last_cap, sbx_error **err)
{
  uint64_t warned = 0;

  for (int i = 0; i < 5; i++)
    for (size_t j = 0; j < sets[i].len; j++)
      {
        const char *name = sets[i].values[j];
        cap_value_t v;

        if (lookup_cap (name, &v) < 0)
          return sbx_error_set (err, EINVAL, "process.capabilities.%s: unknown capability \"%s\"",
                                sets[i].name, name ? name : "(null)");
        if (last_cap >= 0 && v > last_cap)
          {
            if (!(warned & (UINT64_C (1) << v)))
              sbx_warn ("capability %s is not supported by the running kernel (last is %d); "
                        "ignoring it",
                        name, last_cap);
            warned |= UINT64_C (1) << v;
            continue;
          }
        sets[i].mask |= UINT64_C (1) << v;
      }
  return 0;
}

int
sbx_caps_validate (const oci_capabilities *caps, sbx_error **err)
{
  struct capset_desc sets[5];
  describe_sets (caps, sets);
  return resolve_sets (sets, -1, err);
}

static int
set_flag (cap_t c, cap_flag_t flag, cap_value_t v)
{
  return cap_set_flag (c, flag, 1, &v, CAP_SET);
}

int
sbx_caps_apply (const oci_capabilities *caps, sbx_error **err)
{
  struct capset_desc sets[5];
  int last = kernel_last_cap ();
  uint64_t bnd, eff, inh, prm, amb;
  cap_t cur, want;
  int r;

  describe_sets (caps, sets);
  if (resolve_sets (sets, last, err) < 0)
    return sbx_error_status (*err);
  bnd = sets[0].mask, eff = sets[1].mask, inh = sets[2].mask, prm = sets[3].mask;
  amb = sets[4].mask;

  /* Dropping from the bounding set needs CAP_SETPCAP in the effective set,
     which setuid() cleared even with KEEPCAPS: raise effective to the
     permitted set first.  */
  cur = cap_get_proc ();
  if (cur == NULL)
    return sbx_error_sys (err, "read process capabilities");
  r = cap_fill (cur, CAP_EFFECTIVE, CAP_PERMITTED);
  if (r == 0)
    r = cap_set_proc (cur);
  cap_free (cur);
  if (r < 0)
    return sbx_error_sys (err, "raise effective capabilities to the permitted set");

  for (int v = 0; v <= last; v++)
    {
      if (bnd & (UINT64_C (1) << v))
        continue;
      /* One call each; on EPERM see whether it is already gone: an
         unprivileged caller may still succeed when the bounding set is
         already small enough.  */
      if (prctl (PR_CAPBSET_DROP, v, 0, 0, 0) < 0)
        {
          cleanup_free char *n = NULL;
          int e = errno;
          if (e == EINVAL)
            continue; /* not supported after all */
          if (e == EPERM && prctl (PR_CAPBSET_READ, v, 0, 0, 0) == 0)
            continue;
          n = cap_spec_name (v);
          errno = e;
          return n ? sbx_error_sys (err, "drop %s from the bounding set", n)
                   : sbx_error_sys (err, "drop capability %d from the bounding set", v);
        }
    }

  want = cap_init ();
  if (want == NULL)
    return sbx_error_sys (err, "cap_init");
  for (int v = 0; v <= last; v++)
    {
      uint64_t bit = UINT64_C (1) << v;
      r = 0;
      if (eff & bit)
        r |= set_flag (want, CAP_EFFECTIVE, v);
      if (prm & bit)
        r |= set_flag (want, CAP_PERMITTED, v);
      if (inh & bit)
        r |= set_flag (want, CAP_INHERITABLE, v);
      if (r != 0)
        {
          cap_free (want);
          return sbx_error_sys (err, "cap_set_flag");
        }
    }
  r = cap_set_proc (want);
  cap_free (want);
  if (r < 0)
    return sbx_error_sys (err, "set the effective, permitted and inheritable capabilities");

  /* Ambient caps must be in permitted and inheritable, else the kernel
     refuses them.  `runc spec` lists ambient caps that are not inheritable
     in every config: like runc and crun, leave them out without a word
     (debug only) rather than widen the inheritable set nobody asked for.  */
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    {
      if (errno != EINVAL || amb != 0)
        return sbx_error_sys (err, "clear ambient capabilities");
      return 0; /* kernel without ambient capabilities, nothing asked */
    }
  for (int v = 0; v <= last; v++)
    {
      uint64_t bit = UINT64_C (1) << v;
      cleanup_free char *n = NULL;

      if (!(amb & bit))
        continue;
      n = cap_spec_name (v);
      if (!(prm & bit) || !(inh & bit))
        {
          sbx_debug ("process.capabilities.ambient: %s not raised: an ambient capability must also be "
                     "permitted and inheritable",
                     n ? n : "?");
          continue;
        }
      if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0) < 0)
        return sbx_error_sys (err, "raise ambient capability %s", n ? n : "?");
    }
  return 0;
}

char **
sbx_caps_known_names (void)
{
  char **names = xmalloc0 ((MAX_CAPS + 1) * sizeof *names);
  size_t n = 0;

  for (cap_value_t v = 0; v < MAX_CAPS; v++)
    {
      char *s = cap_spec_name (v);
      if (s)
        names[n++] = s;
    }
  names[n] = NULL;
  return names;
}

int
sbx_caps_keep (int on, sbx_error **err)
{
  if (prctl (PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) < 0)
    return sbx_error_sys (err, "prctl(PR_SET_KEEPCAPS, %d)", on ? 1 : 0);
  return 0;
}
