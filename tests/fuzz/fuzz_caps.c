/* fuzz_caps.c - libFuzzer harness for process.capabilities: the config
 * parser, then sbx_caps_validate() on whatever parsed (never
 * sbx_caps_apply(), which would change the fuzzer's own capabilities).
 *
 * The input is tried as a config.json (process.capabilities), then as a
 * bare capabilities object.  Oracles besides the sanitizers: a name that
 * validation accepts must be one of sbx_caps_known_names() (and so
 * canonical: "CAP_" + upper case); a rejection names the set, and a
 * configuration made only of known names always validates.  */
#include <config.h>

#include "core/core.h"
#include "fuzz_common.h"
#include "ocispec.h"
#include "security/security.h"

static char **known;

static bool
is_known (const char *name)
{
  for (char **k = known; *k; k++)
    if (strcmp (*k, name) == 0)
      return true;
  return false;
}

static void
validate (const oci_capabilities *caps)
{
  const struct
  {
    const char *name;
    char **v;
    size_t n;
  } sets[] = {
    { "bounding", caps->bounding, caps->bounding_len },
    { "effective", caps->effective, caps->effective_len },
    { "inheritable", caps->inheritable, caps->inheritable_len },
    { "permitted", caps->permitted, caps->permitted_len },
    { "ambient", caps->ambient, caps->ambient_len },
  };
  bool all_known = true;
  sbx_error *err = NULL;
  int r;

  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
    for (size_t j = 0; j < sets[i].n; j++)
      if (!is_known (sets[i].v[j]))
        all_known = false;

  r = sbx_caps_validate (caps, &err);
  if (r == 0)
    {
      if (err != NULL || !all_known)
        {
          fprintf (stderr, "sbx_caps_validate accepted a name outside sbx_caps_known_names\n");
          abort ();
        }
      return;
    }
  if (all_known)
    {
      fprintf (stderr, "sbx_caps_validate refused known names: %s\n", err && err->msg ? err->msg : "");
      abort ();
    }
  if (err == NULL || err->msg == NULL || strstr (err->msg, "process.capabilities.") == NULL)
    {
      fprintf (stderr, "the error does not name the capability set: %s\n",
               err && err->msg ? err->msg : "(none)");
      abort ();
    }
  fuzz_consume_error (&err);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc, (void) argv;
  known = sbx_caps_known_names ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *msg = NULL;
  oci_config *c = ocispec_parse (&oci_config_type, (const char *) data, size, &msg);

  if (c != NULL)
    {
      if (c->process && c->process->capabilities)
        validate (c->process->capabilities);
      else
        {
          /* no capabilities: everything is dropped, which is valid */
          sbx_error *err = NULL;
          if (sbx_caps_validate (NULL, &err) != 0)
            abort ();
        }
      oci_config_free (c);
      return 0;
    }
  free (msg);
  msg = NULL;
  oci_capabilities *caps = ocispec_parse (&oci_capabilities_type, (const char *) data, size, &msg);
  if (caps == NULL)
    {
      free (msg);
      return 0;
    }
  validate (caps);
  ocispec_free (&oci_capabilities_type, caps);
  return 0;
}
