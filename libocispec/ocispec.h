/* ocispec.h - typed C structs for the OCI runtime-spec documents (config.json,
 * state, features) with one generic parser, generator and destructor driven
 * by descriptor tables.  The types themselves are declared in spec.def.
 *
 * Errors are plain malloc'd strings naming the JSON path:
 *   "process.args[2]: expected string, got number".  */
#ifndef OCISPEC_H
#define OCISPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* gnu11 predefines `linux` as 1; we want it as a member name (c->linux).  */
#undef linux

typedef enum
{
  OF_STRING,
  OF_BOOL,
  OF_INT64,
  OF_UINT64,
  OF_INT32,
  OF_UINT32,
  OF_UINT16,
  OF_STRARR,
  OF_U32ARR,
  OF_STRMAP,
  OF_OBJ,
  OF_OBJARR,
  OF_OBJMAP,
} ocispec_kind;

#define REQ 1u

typedef struct ocispec_type ocispec_type;
typedef struct
{
  const char *json;
  ocispec_kind kind;
  size_t off;     /* the value, the array, or the map keys */
  size_t aux;     /* has_x for scalars, x_len for arrays, x_values for maps */
  size_t len;     /* maps: x_len */
  const ocispec_type *sub;
  unsigned flags;
} ocispec_field;

struct ocispec_type
{
  const char *name;
  size_t size;
  const ocispec_field *fields;
  size_t nfields;
  size_t extra_off;
};

#define OCISPEC_CAT_(a, b) a##b
#define OCISPEC_CAT(a, b) OCISPEC_CAT_ (a, b)
#define OCISPEC_STR_(a) #a
#define OCISPEC_STR(a) OCISPEC_STR_ (a)

/* Pass 1: forward declarations of structs and descriptors.  */
#define BEGIN                                                                                      \
  typedef struct T T;                                                                              \
  extern const ocispec_type OCISPEC_CAT (T, _type);
#define END
#define STRING(n, j, f)
#define BOOL(n, j, f)
#define INT64(n, j, f)
#define UINT64(n, j, f)
#define INT32(n, j, f)
#define UINT32(n, j, f)
#define UINT16(n, j, f)
#define STRARR(n, j, f)
#define U32ARR(n, j, f)
#define STRMAP(n, j, f)
#define OBJ(n, j, s, f)
#define OBJARR(n, j, s, f)
#define OBJMAP(n, j, s, f)
#include "spec.def"
#undef BEGIN
#undef END
#undef STRING
#undef BOOL
#undef INT64
#undef UINT64
#undef INT32
#undef UINT32
#undef UINT16
#undef STRARR
#undef U32ARR
#undef STRMAP
#undef OBJ
#undef OBJARR
#undef OBJMAP

/* Pass 2: the structs.  */
#define BEGIN struct T {
#define END                                                                                        \
  oj_value *_extra;                                                                                \
  };
#define SCALAR_(ct, n)                                                                             \
  ct n;                                                                                            \
  bool has_##n;
#define STRING(n, j, f) char *n;
#define BOOL(n, j, f) SCALAR_ (bool, n)
#define INT64(n, j, f) SCALAR_ (int64_t, n)
#define UINT64(n, j, f) SCALAR_ (uint64_t, n)
#define INT32(n, j, f) SCALAR_ (int32_t, n)
#define UINT32(n, j, f) SCALAR_ (uint32_t, n)
#define UINT16(n, j, f) SCALAR_ (uint16_t, n)
#define STRARR(n, j, f)                                                                            \
  char **n;                                                                                        \
  size_t n##_len;
#define U32ARR(n, j, f)                                                                            \
  uint32_t *n;                                                                                     \
  size_t n##_len;
#define STRMAP(n, j, f)                                                                            \
  char **n##_keys;                                                                                 \
  char **n##_values;                                                                               \
  size_t n##_len;
#define OBJ(n, j, s, f) s *n;
#define OBJARR(n, j, s, f)                                                                         \
  s **n;                                                                                           \
  size_t n##_len;
#define OBJMAP(n, j, s, f)                                                                         \
  char **n##_keys;                                                                                 \
  s **n##_values;                                                                                  \
  size_t n##_len;
#include "spec.def"
#undef BEGIN
#undef END
#undef SCALAR_
#undef STRING
#undef BOOL
#undef INT64
#undef UINT64
#undef INT32
#undef UINT32
#undef UINT16
#undef STRARR
#undef U32ARR
#undef STRMAP
#undef OBJ
#undef OBJARR
#undef OBJMAP

/* Parse a document of type t.  Returns the new object, or NULL with *errmsg
   set (malloc'd, caller frees).  */
void *ocispec_parse (const ocispec_type *t, const char *json, size_t len, char **errmsg);
/* Parse from an already parsed DOM value; path prefixes error messages.  */
void *ocispec_parse_value (const ocispec_type *t, const oj_value *v, const char *path,
                           char **errmsg);
/* Serialize; pretty uses tab indentation like runc's spec.  */
char *ocispec_generate (const ocispec_type *t, const void *obj, bool pretty, size_t *len);
void ocispec_write (const ocispec_type *t, const void *obj, oj_writer *w);
void ocispec_free (const ocispec_type *t, void *obj);
/* Deep copy through a serialize/parse round trip.  */
void *ocispec_dup (const ocispec_type *t, const void *obj);

/* Typed conveniences for the top-level documents.  */
oci_config *oci_config_parse_file (const char *path, char **errmsg);
void oci_config_free (oci_config *c);
void oci_state_free (oci_state *s);
void oci_features_free (oci_features *f);

/* Look up a string map: NULL when absent.  */
const char *ocispec_map_get (char *const *keys, char *const *values, size_t len, const char *key);

#endif
