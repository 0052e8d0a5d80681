/* fuzz_seccomp.c - libFuzzer harness for linux.seccomp: the config parser,
 * then sbx_seccomp_prepare() (validation and libseccomp compilation, no
 * cache) on whatever parsed.
 *
 * The input is tried as a whole config.json first (seccomp taken from
 * linux.seccomp); if that does not parse, as a bare seccomp section.
 * Oracles besides the sanitizers:
 *  - prepare either succeeds with a program of 1..4096 instructions ending
 *    in a return, or fails with a non-empty message;
 *  - the section serializes to JSON that parses back and serializes to the
 *    same text, and the parsed copy compiles to the same program (the
 *    compile cache is keyed by that text, so serializing must not lose
 *    anything that matters to the filter).  */
#include <config.h>

#include <linux/filter.h>

#include "fuzz_common.h"
#include "ocispec.h"
#include "security/security.h"
#include "security/security_internal.h"

/* Serialize s, parse the text back and check that serializing again gives
   the same text.  Returns the parsed copy.  */
static oci_seccomp *
round_trip (const oci_seccomp *s)
{
  size_t len1 = 0, len2 = 0;
  char *msg = NULL;
  char *j1 = ocispec_generate (&oci_seccomp_type, s, false, &len1);
  oci_seccomp *again;
  char *j2;

  if (j1 == NULL)
    abort ();
  again = ocispec_parse (&oci_seccomp_type, j1, len1, &msg);
  if (again == NULL)
    {
      fprintf (stderr, "generated seccomp JSON does not parse back: %s\n%s\n", msg, j1);
      abort ();
    }
  j2 = ocispec_generate (&oci_seccomp_type, again, false, &len2);
  if (j2 == NULL || len1 != len2 || memcmp (j1, j2, len1) != 0)
    {
      fprintf (stderr, "seccomp JSON round trip differs:\n%s\n%s\n", j1, j2 ? j2 : "(null)");
      abort ();
    }
  free (j2);
  free (j1);
  return again;
}

/* Compile; NULL with the error consumed when prepare refuses s.  */
static sbx_seccomp *
compile (const oci_seccomp *s)
{
  sbx_error *err = NULL;
  sbx_seccomp *sc = NULL;
  const struct sock_filter *insns = NULL;
  size_t n;

  if (sbx_seccomp_prepare (s, NULL, &sc, &err) < 0)
    {
      if (sc != NULL)
        abort ();
      fuzz_consume_error (&err);
      return NULL;
    }
  if (err != NULL || sc == NULL || sc->cached)
    abort ();
  n = sc->len;
  insns = sc->insns;
  if (n == 0 || n > BPF_MAXINSNS || insns == NULL)
    abort ();
  /* the last instruction of a seccomp program must return */
  if (BPF_CLASS (insns[n - 1].code) != BPF_RET)
    abort ();
  return sc;
}

/* The compile cache is keyed by the serialized section: what serializing
   drops must not change the program, or two different profiles would
   share a cache entry.  */
static void
prepare (const oci_seccomp *s)
{
  oci_seccomp *again = round_trip (s);
  sbx_seccomp *a = compile (s);
  sbx_seccomp *b = compile (again);
  const struct sock_filter *pa = a ? a->insns : NULL, *pb = b ? b->insns : NULL;
  size_t na = a ? a->len : 0, nb = b ? b->len : 0;

  if ((a == NULL) != (b == NULL) || na != nb
      || (na && memcmp (pa, pb, na * sizeof *pa) != 0)
      || sbx_seccomp_uses_notify (a) != sbx_seccomp_uses_notify (b))
    {
      fprintf (stderr, "the serialized profile compiles differently (%zu vs %zu instructions)\n",
               na, nb);
      abort ();
    }
  sbx_seccomp_free (a);
  sbx_seccomp_free (b);
  ocispec_free (&oci_seccomp_type, again);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *msg = NULL;
  oci_config *c = ocispec_parse (&oci_config_type, (const char *) data, size, &msg);

  if (c != NULL)
    {
      if (c->linux && c->linux->seccomp)
        prepare (c->linux->seccomp);
      oci_config_free (c);
      return 0;
    }
  free (msg);
  msg = NULL;
  oci_seccomp *s = ocispec_parse (&oci_seccomp_type, (const char *) data, size, &msg);
  if (s == NULL)
    {
      if (msg == NULL || msg[0] == '\0')
        abort (); /* a parse failure must say why */
      free (msg);
      return 0;
    }
  prepare (s);
  ocispec_free (&oci_seccomp_type, s);
  return 0;
}
