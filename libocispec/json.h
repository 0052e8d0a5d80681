/* json.h - the only JSON interface the rest of sbxrun sees.
 *
 * A small DOM of our own (numbers kept as text so int64/uint64 round-trip
 * exactly) and a streaming writer.  yajl is used only in json.c, so the JSON
 * library can be swapped without touching anything else.  */
#ifndef OJ_JSON_H
#define OJ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deeper documents are refused: no runtime-spec document nests past ~10.  */
#define OJ_MAX_DEPTH 127

typedef enum
{
  OJ_NULL,
  OJ_BOOL,
  OJ_NUMBER,
  OJ_STRING,
  OJ_ARRAY,
  OJ_OBJECT
} oj_type;

typedef struct oj_value oj_value;
struct oj_value
{
  oj_type type;
  bool boolean;
  char *text; /* OJ_NUMBER: literal text; OJ_STRING: the string */
  size_t len; /* OJ_ARRAY / OJ_OBJECT: element count */
  oj_value **items;
  char **keys; /* OJ_OBJECT */
  struct oj_arena *arena; /* the root of a parsed document: all of it lives there */
};

/* Parse a document.  On failure returns NULL and *errmsg (malloc'd) says why
   and where.  The document is read-only: it is allocated in one arena, which
   oj_free of the root releases (no oj_append to it, no oj_free of a part).  */
oj_value *oj_parse (const char *text, size_t len, char **errmsg);
void oj_free (oj_value *v);
const char *oj_type_name (oj_type t);
oj_value *oj_object_get (const oj_value *obj, const char *key);
oj_value *oj_new (oj_type t);
/* Append to an array or object (key copied); takes ownership of v.  */
void oj_append (oj_value *container, const char *key, oj_value *v);

typedef struct oj_writer oj_writer;
oj_writer *oj_writer_new (bool pretty);
void oj_writer_free (oj_writer *w);
void oj_w_begin_object (oj_writer *w);
void oj_w_end_object (oj_writer *w);
void oj_w_begin_array (oj_writer *w);
void oj_w_end_array (oj_writer *w);
void oj_w_key (oj_writer *w, const char *key);
void oj_w_string (oj_writer *w, const char *s);
void oj_w_int (oj_writer *w, int64_t v);
void oj_w_uint (oj_writer *w, uint64_t v);
void oj_w_bool (oj_writer *w, bool v);
void oj_w_null (oj_writer *w);
void oj_w_value (oj_writer *w, const oj_value *v);
/* The text so far (NUL terminated), owned by the caller; frees the writer.  */
char *oj_writer_finish (oj_writer *w, size_t *len);

#endif
