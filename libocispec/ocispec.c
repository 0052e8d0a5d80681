/* ocispec.c - the generic engine behind ocispec.h: walks descriptor tables
 * generated from spec.def to parse, write and free any runtime-spec type.  */
#include <config.h>
#include "ocispec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Pass 3: descriptor tables.  */
#define FLD_(kind, n, j, aux, len, sub, f) { j, kind, offsetof (struct T, n), aux, len, sub, f },
#define BEGIN static const ocispec_field OCISPEC_CAT (T, _fields)[] = {
#define END                                                                                        \
  }                                                                                                \
  ;                                                                                                \
  const ocispec_type OCISPEC_CAT (T, _type)                                                        \
      = { OCISPEC_STR (T), sizeof (struct T), OCISPEC_CAT (T, _fields),                                         \
          sizeof (OCISPEC_CAT (T, _fields)) / sizeof (ocispec_field), offsetof (struct T, _extra) };
#define SCALAR_(kind, n, j, f) FLD_ (kind, n, j, offsetof (struct T, has_##n), 0, NULL, f)
#define STRING(n, j, f) FLD_ (OF_STRING, n, j, 0, 0, NULL, f)
#define BOOL(n, j, f) SCALAR_ (OF_BOOL, n, j, f)
#define INT64(n, j, f) SCALAR_ (OF_INT64, n, j, f)
#define UINT64(n, j, f) SCALAR_ (OF_UINT64, n, j, f)
#define INT32(n, j, f) SCALAR_ (OF_INT32, n, j, f)
#define UINT32(n, j, f) SCALAR_ (OF_UINT32, n, j, f)
#define UINT16(n, j, f) SCALAR_ (OF_UINT16, n, j, f)
#define STRARR(n, j, f) FLD_ (OF_STRARR, n, j, offsetof (struct T, n##_len), 0, NULL, f)
#define U32ARR(n, j, f) FLD_ (OF_U32ARR, n, j, offsetof (struct T, n##_len), 0, NULL, f)
#define STRMAP(n, j, f)                                                                            \
  FLD_ (OF_STRMAP, n##_keys, j, offsetof (struct T, n##_values), offsetof (struct T, n##_len),     \
        NULL, f)
#define OBJ(n, j, s, f) FLD_ (OF_OBJ, n, j, 0, 0, &s##_type, f)
#define OBJARR(n, j, s, f) FLD_ (OF_OBJARR, n, j, offsetof (struct T, n##_len), 0, &s##_type, f)
#define OBJMAP(n, j, s, f)                                                                         \
  FLD_ (OF_OBJMAP, n##_keys, j, offsetof (struct T, n##_values), offsetof (struct T, n##_len),     \
        &s##_type, f)
#include "spec.def"

#define AT(obj, off, type) ((type *) ((char *) (obj) + (off)))
#define CAT_(obj, off, type) ((const type *) ((const char *) (obj) + (off)))

static void *
xalloc (size_t n)
{
  void *p = calloc (1, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

static char *
xdup (const char *s)
{
  char *r = strdup (s);
  if (r == NULL)
    abort ();
  return r;
}

/* Where a value sits in the document, for error messages: a chain on the
   stack from the value up to the root, rendered only when an error is
   reported (a config with a 300-rule seccomp profile has a thousand).  */
typedef struct jpath
{
  const struct jpath *up;
  char kind; /* 'r' the caller's prefix, '.' a key, '[' an index, '"' a map key */
  const char *s;
  size_t i;
} jpath;

#define JPATH(name, parent, k, str, idx) const jpath name = { (parent), (k), (str), (idx) }

static void
path_print (FILE *f, const jpath *p)
{
  if (p->up)
    path_print (f, p->up);
  switch (p->kind)
    {
    case 'r':
      fputs (p->s, f);
      break;
    case '.':
      if (ftell (f) > 0)
        fputc ('.', f);
      fputs (p->s, f);
      break;
    case '[':
      fprintf (f, "[%zu]", p->i);
      break;
    default:
      fprintf (f, "[\"%s\"]", p->s);
    }
}

static void
set_err (char **errmsg, const jpath *path, const char *fmt, ...)
{
  va_list ap;
  char *msg, *where = NULL;
  size_t wlen = 0;
  FILE *f;
  if (errmsg == NULL || *errmsg)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    abort ();
  va_end (ap);
  f = open_memstream (&where, &wlen);
  if (f == NULL)
    abort ();
  path_print (f, path);
  if (fclose (f) != 0)
    abort ();
  if (asprintf (errmsg, "%s: %s", *where ? where : "(document)", msg) < 0)
    abort ();
  free (where);
  free (msg);
}

static bool
expect (const oj_value *v, oj_type t, const jpath *path, const char *what, char **errmsg)
{
  if (v->type == t)
    return true;
  set_err (errmsg, path, "expected %s, got %s", what, oj_type_name (v->type));
  return false;
}

/* Integers: reject fractions/exponents, check the range of the C type.  */
static bool
parse_integer (const oj_value *v, bool is_signed, int64_t min, uint64_t max, void *out, int width,
               const jpath *path, char **errmsg)
{
  char *end;
  const char *t;
  if (!expect (v, OJ_NUMBER, path, "integer", errmsg))
    return false;
  t = v->text;
  if (strpbrk (t, ".eE"))
    {
      set_err (errmsg, path, "expected integer, got %s", t);
      return false;
    }
  errno = 0;
  if (is_signed)
    {
      long long x = strtoll (t, &end, 10);
      if (errno || *end || x < min || (x > 0 && (uint64_t) x > max))
        goto range;
      if (width == 64)
        *(int64_t *) out = x;
      else
        *(int32_t *) out = (int32_t) x;
    }
  else
    {
      unsigned long long x;
      if (*t == '-')
        goto range;
      x = strtoull (t, &end, 10);
      if (errno || *end || x > max)
        goto range;
      if (width == 64)
        *(uint64_t *) out = x;
      else if (width == 32)
        *(uint32_t *) out = (uint32_t) x;
      else
        *(uint16_t *) out = (uint16_t) x;
    }
  return true;
range:
  set_err (errmsg, path, "value %s out of range", t);
  return false;
}

static void free_field (const ocispec_field *f, void *obj);
static void *parse_value (const ocispec_type *t, const oj_value *v, const jpath *path,
                          char **errmsg);

static bool
parse_strarr (const oj_value *v, char ***out, size_t *len, const jpath *path, char **errmsg)
{
  char **arr;
  if (!expect (v, OJ_ARRAY, path, "array", errmsg))
    return false;
  arr = xalloc ((v->len + 1) * sizeof *arr);
  *out = arr;
  *len = v->len;
  for (size_t i = 0; i < v->len; i++)
    {
      if (v->items[i]->type != OJ_STRING)
        {
          JPATH (p, path, '[', NULL, i);
          set_err (errmsg, &p, "expected string, got %s", oj_type_name (v->items[i]->type));
          *len = i;
          return false;
        }
      arr[i] = xdup (v->items[i]->text);
    }
  return true;
}

static bool
parse_field (const ocispec_field *f, void *obj, const oj_value *v, const jpath *path,
             char **errmsg)
{
  void *dst = AT (obj, f->off, void);
  bool ok = true;

  free_field (f, obj); /* a duplicate key replaces the earlier value */
  switch (f->kind)
    {
    case OF_STRING:
      if (!expect (v, OJ_STRING, path, "string", errmsg))
        return false;
      *(char **) dst = xdup (v->text);
      return true;
    case OF_BOOL:
      if (!expect (v, OJ_BOOL, path, "boolean", errmsg))
        return false;
      *(bool *) dst = v->boolean;
      break;
    case OF_INT64:
      ok = parse_integer (v, true, INT64_MIN, INT64_MAX, dst, 64, path, errmsg);
      break;
    case OF_UINT64:
      ok = parse_integer (v, false, 0, UINT64_MAX, dst, 64, path, errmsg);
      break;
    case OF_INT32:
      ok = parse_integer (v, true, INT32_MIN, INT32_MAX, dst, 32, path, errmsg);
      break;
    case OF_UINT32:
      ok = parse_integer (v, false, 0, UINT32_MAX, dst, 32, path, errmsg);
      break;
    case OF_UINT16:
      ok = parse_integer (v, false, 0, UINT16_MAX, dst, 16, path, errmsg);
      break;
    case OF_STRARR:
      return parse_strarr (v, (char ***) dst, AT (obj, f->aux, size_t), path, errmsg);
    case OF_U32ARR:
      {
        uint32_t *arr;
        if (!expect (v, OJ_ARRAY, path, "array", errmsg))
          return false;
        arr = xalloc ((v->len + 1) * sizeof *arr);
        *(uint32_t **) dst = arr;
        *AT (obj, f->aux, size_t) = v->len;
        for (size_t i = 0; i < v->len; i++)
          {
            JPATH (p, path, '[', NULL, i);
            ok = parse_integer (v->items[i], false, 0, UINT32_MAX, &arr[i], 32, &p, errmsg);
            if (!ok)
              return false;
          }
        return true;
      }
    case OF_STRMAP:
    case OF_OBJMAP:
      {
        char **keys;
        void **vals;
        size_t *len = AT (obj, f->len, size_t);
        if (!expect (v, OJ_OBJECT, path, "object", errmsg))
          return false;
        keys = xalloc ((v->len + 1) * sizeof *keys);
        vals = xalloc ((v->len + 1) * sizeof *vals);
        *(char ***) dst = keys;
        *AT (obj, f->aux, void **) = vals;
        *len = 0;
        for (size_t i = 0; i < v->len; i++)
          {
            JPATH (p, path, '"', v->keys[i], 0);
            if (f->kind == OF_STRMAP)
              {
                if (v->items[i]->type == OJ_STRING)
                  vals[i] = xdup (v->items[i]->text);
                else
                  set_err (errmsg, &p, "expected string, got %s",
                           oj_type_name (v->items[i]->type));
              }
            else
              vals[i] = parse_value (f->sub, v->items[i], &p, errmsg);
            if (vals[i] == NULL)
              return false;
            keys[i] = xdup (v->keys[i]);
            *len = i + 1;
          }
        return true;
      }
    case OF_OBJ:
      *(void **) dst = parse_value (f->sub, v, path, errmsg);
      return *(void **) dst != NULL;
    case OF_OBJARR:
      {
        void **arr;
        size_t *len = AT (obj, f->aux, size_t);
        if (!expect (v, OJ_ARRAY, path, "array", errmsg))
          return false;
        arr = xalloc ((v->len + 1) * sizeof *arr);
        *(void ***) dst = arr;
        *len = 0;
        for (size_t i = 0; i < v->len; i++)
          {
            JPATH (p, path, '[', NULL, i);
            arr[i] = parse_value (f->sub, v->items[i], &p, errmsg);
            if (arr[i] == NULL)
              return false;
            *len = i + 1;
          }
        return true;
      }
    }
  if (ok)
    *AT (obj, f->aux, bool) = true;
  return ok;
}

static oj_value *
copy_value (const oj_value *v)
{
  oj_value *c = oj_new (v->type);
  c->boolean = v->boolean;
  if (v->text)
    c->text = xdup (v->text);
  for (size_t i = 0; i < v->len; i++)
    oj_append (c, v->keys ? v->keys[i] : NULL, copy_value (v->items[i]));
  return c;
}

void *
ocispec_parse_value (const ocispec_type *t, const oj_value *v, const char *path, char **errmsg)
{
  JPATH (root, NULL, 'r', path, 0);
  if (errmsg)
    *errmsg = NULL;
  return parse_value (t, v, &root, errmsg);
}

static void *
parse_value (const ocispec_type *t, const oj_value *v, const jpath *path, char **errmsg)
{
  void *obj;
  if (!expect (v, OJ_OBJECT, path, "object", errmsg))
    return NULL;
  obj = xalloc (t->size);
  for (size_t k = 0; k < v->len; k++)
    {
      const ocispec_field *f = NULL;
      for (size_t i = 0; i < t->nfields; i++)
        if (strcmp (t->fields[i].json, v->keys[k]) == 0)
          {
            f = &t->fields[i];
            break;
          }
      if (f == NULL)
        {
          /* Unknown properties are ignored by the spec, kept for writing.  */
          oj_value **extra = AT (obj, t->extra_off, oj_value *);
          if (*extra == NULL)
            *extra = oj_new (OJ_OBJECT);
          oj_append (*extra, v->keys[k], copy_value (v->items[k]));
          continue;
        }
      if (v->items[k]->type == OJ_NULL)
        continue; /* null reads as absent, as Go's decoder does */
      JPATH (p, path, '.', f->json, 0);
      bool ok = parse_field (f, obj, v->items[k], &p, errmsg);
      if (!ok)
        goto fail;
    }
  for (size_t i = 0; i < t->nfields; i++)
    {
      const ocispec_field *f = &t->fields[i];
      bool present;
      if (!(f->flags & REQ))
        continue;
      switch (f->kind)
        {
        case OF_BOOL:
        case OF_INT64:
        case OF_UINT64:
        case OF_INT32:
        case OF_UINT32:
        case OF_UINT16:
          present = *AT (obj, f->aux, bool);
          break;
        default:
          present = *AT (obj, f->off, void *) != NULL;
        }
      if (!present)
        {
          JPATH (p, path, '.', f->json, 0);
          set_err (errmsg, &p, "required property is missing");
          goto fail;
        }
    }
  return obj;
fail:
  ocispec_free (t, obj);
  return NULL;
}

void *
ocispec_parse (const ocispec_type *t, const char *json, size_t len, char **errmsg)
{
  oj_value *v;
  void *r;
  if (errmsg)
    *errmsg = NULL;
  v = oj_parse (json, len, errmsg);
  if (v == NULL)
    return NULL;
  {
    JPATH (root, NULL, 'r', "", 0);
    r = parse_value (t, v, &root, errmsg);
  }
  oj_free (v);
  return r;
}

static void
free_field (const ocispec_field *f, void *obj)
{
  void **dst = AT (obj, f->off, void *);
  switch (f->kind)
    {
    case OF_STRING:
    case OF_U32ARR:
      free (*dst);
      break;
    case OF_STRARR:
      for (size_t i = 0; *dst && i < *AT (obj, f->aux, size_t); i++)
        free (((char **) *dst)[i]);
      free (*dst);
      break;
    case OF_STRMAP:
    case OF_OBJMAP:
      {
        void **vals = *AT (obj, f->aux, void **);
        size_t *len = AT (obj, f->len, size_t);
        for (size_t i = 0; i < *len; i++)
          {
            free (((char **) *dst)[i]);
            if (f->kind == OF_STRMAP)
              free (vals[i]);
            else
              ocispec_free (f->sub, vals[i]);
          }
        free (vals);
        free (*dst);
        *AT (obj, f->aux, void **) = NULL;
        *len = 0;
        break;
      }
    case OF_OBJ:
      ocispec_free (f->sub, *dst);
      break;
    case OF_OBJARR:
      for (size_t i = 0; *dst && i < *AT (obj, f->aux, size_t); i++)
        ocispec_free (f->sub, ((void **) *dst)[i]);
      free (*dst);
      break;
    default:
      return; /* scalars own nothing */
    }
  *dst = NULL;
  if (f->kind == OF_STRARR || f->kind == OF_U32ARR || f->kind == OF_OBJARR)
    *AT (obj, f->aux, size_t) = 0;
}

void
ocispec_free (const ocispec_type *t, void *obj)
{
  if (obj == NULL)
    return;
  for (size_t i = 0; i < t->nfields; i++)
    free_field (&t->fields[i], obj);
  oj_free (*AT (obj, t->extra_off, oj_value *));
  free (obj);
}

void
ocispec_write (const ocispec_type *t, const void *obj, oj_writer *w)
{
  const oj_value *extra = *CAT_ (obj, t->extra_off, oj_value *);
  oj_w_begin_object (w);
  for (size_t i = 0; i < t->nfields; i++)
    {
      const ocispec_field *f = &t->fields[i];
      const void *src = CAT_ (obj, f->off, void);
      if (f->kind >= OF_BOOL && f->kind <= OF_UINT16 && !*CAT_ (obj, f->aux, bool))
        continue;
      if (f->kind < OF_BOOL || f->kind > OF_UINT16)
        if (*(void *const *) src == NULL)
          continue;
      oj_w_key (w, f->json);
      switch (f->kind)
        {
        case OF_STRING: oj_w_string (w, *(char *const *) src); break;
        case OF_BOOL: oj_w_bool (w, *(const bool *) src); break;
        case OF_INT64: oj_w_int (w, *(const int64_t *) src); break;
        case OF_UINT64: oj_w_uint (w, *(const uint64_t *) src); break;
        case OF_INT32: oj_w_int (w, *(const int32_t *) src); break;
        case OF_UINT32: oj_w_uint (w, *(const uint32_t *) src); break;
        case OF_UINT16: oj_w_uint (w, *(const uint16_t *) src); break;
        case OF_STRARR:
        case OF_U32ARR:
        case OF_OBJARR:
          {
            size_t len = *CAT_ (obj, f->aux, size_t);
            oj_w_begin_array (w);
            for (size_t k = 0; k < len; k++)
              if (f->kind == OF_STRARR)
                oj_w_string (w, (*(char **const *) src)[k]);
              else if (f->kind == OF_U32ARR)
                oj_w_uint (w, (*(uint32_t *const *) src)[k]);
              else
                ocispec_write (f->sub, (*(void **const *) src)[k], w);
            oj_w_end_array (w);
            break;
          }
        case OF_STRMAP:
        case OF_OBJMAP:
          {
            char **keys = *(char **const *) src;
            void *const *vals = *(void *const *const *) ((const char *) obj + f->aux);
            size_t len = *CAT_ (obj, f->len, size_t);
            oj_w_begin_object (w);
            for (size_t k = 0; k < len; k++)
              {
                oj_w_key (w, keys[k]);
                if (f->kind == OF_STRMAP)
                  oj_w_string (w, vals[k]);
                else
                  ocispec_write (f->sub, vals[k], w);
              }
            oj_w_end_object (w);
            break;
          }
        case OF_OBJ: ocispec_write (f->sub, *(void *const *) src, w); break;
        }
    }
  for (size_t i = 0; extra && i < extra->len; i++)
    {
      oj_w_key (w, extra->keys[i]);
      oj_w_value (w, extra->items[i]);
    }
  oj_w_end_object (w);
}

char *
ocispec_generate (const ocispec_type *t, const void *obj, bool pretty, size_t *len)
{
  oj_writer *w = oj_writer_new (pretty);
  ocispec_write (t, obj, w);
  return oj_writer_finish (w, len);
}

void *
ocispec_dup (const ocispec_type *t, const void *obj)
{
  size_t len;
  char *err = NULL;
  char *s = ocispec_generate (t, obj, false, &len);
  void *r = ocispec_parse (t, s, len, &err);
  free (s);
  free (err);
  return r;
}

/* Documents larger than this are refused before parsing.  */
#define MAX_DOC_SIZE (64u << 20)

oci_config *
oci_config_parse_file (const char *path, char **errmsg)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  size_t cap = 65536, n = 0;
  char *buf;
  oci_config *c;

  if (fd < 0)
    {
      if (asprintf (errmsg, "open `%s`: %s", path, strerror (errno)) < 0)
        abort ();
      return NULL;
    }
  buf = xalloc (cap);
  for (;;)
    {
      ssize_t r;
      if (n == cap)
        {
          cap *= 2;
          if (cap > MAX_DOC_SIZE)
            {
              close (fd);
              free (buf);
              if (asprintf (errmsg, "%s: larger than %u bytes", path, MAX_DOC_SIZE) < 0)
                abort ();
              return NULL;
            }
          buf = realloc (buf, cap);
          if (buf == NULL)
            abort ();
        }
      r = read (fd, buf + n, cap - n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          if (r < 0 && asprintf (errmsg, "read `%s`: %s", path, strerror (errno)) < 0)
            abort ();
          if (r < 0)
            {
              close (fd);
              free (buf);
              return NULL;
            }
          break;
        }
      n += r;
    }
  close (fd);
  c = ocispec_parse (&oci_config_type, buf, n, errmsg);
  free (buf);
  return c;
}

void oci_config_free (oci_config *c) { ocispec_free (&oci_config_type, c); }
void oci_state_free (oci_state *s) { ocispec_free (&oci_state_type, s); }
void oci_features_free (oci_features *f) { ocispec_free (&oci_features_type, f); }

const char *
ocispec_map_get (char *const *keys, char *const *values, size_t len, const char *key)
{
  for (size_t i = len; i > 0; i--)
    if (strcmp (keys[i - 1], key) == 0)
      return values[i - 1];
  return NULL;
}
