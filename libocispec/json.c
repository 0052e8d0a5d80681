/* json.c - oj_value DOM built from yajl's event parser, and a writer on top
 * of yajl_gen.  The DOM is built iteratively with an explicit stack bounded
 * by OJ_MAX_DEPTH, so hostile nesting cannot exhaust the C stack.  */
#include <config.h>
#include "json.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

static void *
oj_xalloc (size_t n)
{
  void *p = calloc (1, n ? n : 1);
  if (p == NULL)
    abort ();
  return p;
}

static char *
oj_strndup (const char *s, size_t n)
{
  char *r = malloc (n + 1);
  if (r == NULL)
    abort ();
  memcpy (r, s, n);
  r[n] = '\0';
  return r;
}

/* A parsed document lives in one arena: a document of a few thousand values
   would otherwise cost as many mallocs and frees, the most of its parse.  */
struct oj_chunk
{
  struct oj_chunk *next;
  size_t used, cap;
  max_align_t data[];
};

struct oj_arena
{
  struct oj_chunk *head;
  size_t next_cap;
};

static void *
arena_alloc (struct oj_arena *a, size_t n)
{
  struct oj_chunk *c = a->head;
  void *p;

  /* the DOM holds pointers, sizes and chars only */
  n = (n + sizeof (void *) - 1) & ~(sizeof (void *) - 1);
  if (c == NULL || c->cap - c->used < n)
    {
      size_t cap = a->next_cap > n ? a->next_cap : n;
      c = malloc (sizeof *c + cap);
      if (c == NULL)
        abort ();
      c->used = 0;
      c->cap = cap;
      c->next = a->head;
      a->head = c;
      a->next_cap = cap * 2;
    }
  p = (char *) c->data + c->used;
  c->used += n;
  return p;
}

static void
arena_free (struct oj_arena *a)
{
  while (a->head)
    {
      struct oj_chunk *c = a->head;
      a->head = c->next;
      free (c);
    }
}

oj_value *
oj_new (oj_type t)
{
  oj_value *v = oj_xalloc (sizeof *v);
  v->type = t;
  return v;
}

void
oj_append (oj_value *c, const char *key, oj_value *v)
{
  /* Grow in powers of two to keep appends amortised O(1).  */
  if ((c->len & (c->len - 1)) == 0)
    {
      size_t cap = c->len ? c->len * 2 : 1;
      c->items = realloc (c->items, cap * sizeof *c->items);
      if (c->items == NULL)
        abort ();
      if (c->type == OJ_OBJECT)
        {
          c->keys = realloc (c->keys, cap * sizeof *c->keys);
          if (c->keys == NULL)
            abort ();
        }
    }
  if (c->type == OJ_OBJECT)
    c->keys[c->len] = oj_strndup (key, strlen (key));
  c->items[c->len++] = v;
}

void
oj_free (oj_value *v)
{
  /* Iterative to survive deep trees built by callers.  */
  oj_value **stack;
  size_t n = 0, cap = 16;

  if (v == NULL)
    return;
  if (v->arena)
    {
      struct oj_arena *a = v->arena;
      arena_free (a);
      free (a);
      return;
    }
  stack = oj_xalloc (cap * sizeof *stack);
  stack[n++] = v;
  while (n)
    {
      oj_value *cur = stack[--n];
      for (size_t i = 0; i < cur->len; i++)
        {
          if (n == cap)
            {
              cap *= 2;
              stack = realloc (stack, cap * sizeof *stack);
              if (stack == NULL)
                abort ();
            }
          stack[n++] = cur->items[i];
          if (cur->keys)
            free (cur->keys[i]);
        }
      free (cur->items);
      free (cur->keys);
      free (cur->text);
      free (cur);
    }
  free (stack);
}

const char *
oj_type_name (oj_type t)
{
  static const char *names[] = { "null", "boolean", "number", "string", "array", "object" };
  return names[t];
}

oj_value *
oj_object_get (const oj_value *obj, const char *key)
{
  if (obj == NULL || obj->type != OJ_OBJECT)
    return NULL;
  /* Last one wins, as with most JSON parsers.  */
  for (size_t i = obj->len; i > 0; i--)
    if (strcmp (obj->keys[i - 1], key) == 0)
      return obj->items[i - 1];
  return NULL;
}

struct builder
{
  oj_value *stack[OJ_MAX_DEPTH + 1];
  size_t depth;
  char *pending_key; /* in the arena */
  oj_value *root;
  struct oj_arena *arena;
  bool too_deep;
  bool nul_char;
};

static oj_value *
b_new (struct builder *b, oj_type t)
{
  oj_value *v = arena_alloc (b->arena, sizeof *v);
  memset (v, 0, sizeof *v);
  v->type = t;
  return v;
}

static char *
b_strndup (struct builder *b, const char *s, size_t n)
{
  char *r = arena_alloc (b->arena, n + 1);
  memcpy (r, s, n);
  r[n] = '\0';
  return r;
}

/* As oj_append, in the arena: the arrays double, the old ones stay there.  */
static int
b_add (struct builder *b, oj_value *v)
{
  oj_value *top;

  if (b->depth == 0)
    {
      b->root = v;
      return 1;
    }
  top = b->stack[b->depth - 1];
  if (top->len >= 4 && (top->len & (top->len - 1)) == 0)
    {
      oj_value **items = arena_alloc (b->arena, 2 * top->len * sizeof *items);
      memcpy (items, top->items, top->len * sizeof *items);
      top->items = items;
      if (top->type == OJ_OBJECT)
        {
          char **keys = arena_alloc (b->arena, 2 * top->len * sizeof *keys);
          memcpy (keys, top->keys, top->len * sizeof *keys);
          top->keys = keys;
        }
    }
  else if (top->len == 0)
    {
      top->items = arena_alloc (b->arena, 4 * sizeof *top->items);
      if (top->type == OJ_OBJECT)
        top->keys = arena_alloc (b->arena, 4 * sizeof *top->keys);
    }
  if (top->type == OJ_OBJECT)
    top->keys[top->len] = b->pending_key;
  top->items[top->len++] = v;
  b->pending_key = NULL;
  return 1;
}

static int
b_push (struct builder *b, oj_type t)
{
  oj_value *v;
  if (b->depth >= OJ_MAX_DEPTH)
    {
      b->too_deep = true;
      return 0;
    }
  v = b_new (b, t);
  b_add (b, v);
  b->stack[b->depth++] = v;
  return 1;
}

static int
cb_null (void *ctx)
{
  return b_add (ctx, b_new (ctx, OJ_NULL));
}

static int
cb_bool (void *ctx, int val)
{
  oj_value *v = b_new (ctx, OJ_BOOL);
  v->boolean = val;
  return b_add (ctx, v);
}

static int
cb_number (void *ctx, const char *s, size_t l)
{
  oj_value *v = b_new (ctx, OJ_NUMBER);
  v->text = b_strndup (ctx, s, l);
  return b_add (ctx, v);
}

static int
cb_string (void *ctx, const unsigned char *s, size_t l)
{
  if (memchr (s, '\0', l))
    {
      ((struct builder *) ctx)->nul_char = true;
      return 0;
    }
  oj_value *v = b_new (ctx, OJ_STRING);
  v->text = b_strndup (ctx, (const char *) s, l);
  return b_add (ctx, v);
}

static int
cb_start_map (void *ctx)
{
  return b_push (ctx, OJ_OBJECT);
}

static int
cb_map_key (void *ctx, const unsigned char *s, size_t l)
{
  struct builder *b = ctx;
  if (memchr (s, '\0', l))
    {
      b->nul_char = true;
      return 0;
    }
  b->pending_key = b_strndup (b, (const char *) s, l);
  return 1;
}

static int
cb_end (void *ctx)
{
  struct builder *b = ctx;
  b->depth--;
  return 1;
}

static int
cb_start_array (void *ctx)
{
  return b_push (ctx, OJ_ARRAY);
}

static const yajl_callbacks callbacks = {
  .yajl_null = cb_null,
  .yajl_boolean = cb_bool,
  .yajl_number = cb_number,
  .yajl_string = cb_string,
  .yajl_start_map = cb_start_map,
  .yajl_map_key = cb_map_key,
  .yajl_end_map = cb_end,
  .yajl_start_array = cb_start_array,
  .yajl_end_array = cb_end,
};

oj_value *
oj_parse (const char *text, size_t len, char **errmsg)
{
  struct oj_arena *arena = oj_xalloc (sizeof *arena);
  struct builder b = { .arena = arena };
  yajl_handle h = yajl_alloc (&callbacks, NULL, &b);
  yajl_status st;
  bool at_end = false, blank = true;

  if (h == NULL)
    abort ();
  /* about what a configuration's values and strings take: one chunk */
  arena->next_cap = 4096 + 7 * len;
  for (size_t i = 0; blank && i < len; i++)
    blank = text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n';
  st = yajl_parse (h, (const unsigned char *) text, len);
  if (st == yajl_status_ok)
    {
      at_end = true;
      st = yajl_complete_parse (h);
    }
  if (st != yajl_status_ok || b.root == NULL)
    {
      if (errmsg)
        {
          if (b.too_deep)
            {
              if (asprintf (errmsg, "nesting deeper than %d levels", OJ_MAX_DEPTH) < 0)
                abort ();
            }
          else if (b.nul_char)
            {
              if (asprintf (errmsg, "invalid JSON at byte %zu: string contains \\u0000",
                            yajl_get_bytes_consumed (h)) < 0)
                abort ();
            }
          else if (st == yajl_status_ok || blank)
            *errmsg = strdup ("empty document");
          else
            {
              unsigned char *e = yajl_get_error (h, 0, NULL, 0);
              size_t off = at_end ? len : yajl_get_bytes_consumed (h);
              char *nl;
              if (asprintf (errmsg, "invalid JSON at byte %zu: %s", off, (char *) e) < 0)
                abort ();
              yajl_free_error (h, e);
              while ((nl = strchr (*errmsg, '\n')))
                *nl = ' ';
              for (size_t i = strlen (*errmsg); i > 0 && (*errmsg)[i - 1] == ' '; i--)
                (*errmsg)[i - 1] = '\0';
            }
        }
      yajl_free (h);
      arena_free (arena);
      free (arena);
      return NULL;
    }
  yajl_free (h);
  b.root->arena = arena;
  return b.root;
}

struct oj_writer
{
  yajl_gen g;
};

oj_writer *
oj_writer_new (bool pretty)
{
  oj_writer *w = oj_xalloc (sizeof *w);
  w->g = yajl_gen_alloc (NULL);
  if (w->g == NULL)
    abort ();
  yajl_gen_config (w->g, yajl_gen_validate_utf8, 0);
  if (pretty)
    {
      yajl_gen_config (w->g, yajl_gen_beautify, 1);
      yajl_gen_config (w->g, yajl_gen_indent_string, "\t");
    }
  return w;
}

void
oj_writer_free (oj_writer *w)
{
  if (w == NULL)
    return;
  yajl_gen_free (w->g);
  free (w);
}

void oj_w_begin_object (oj_writer *w) { yajl_gen_map_open (w->g); }
void oj_w_end_object (oj_writer *w) { yajl_gen_map_close (w->g); }
void oj_w_begin_array (oj_writer *w) { yajl_gen_array_open (w->g); }
void oj_w_end_array (oj_writer *w) { yajl_gen_array_close (w->g); }
void oj_w_bool (oj_writer *w, bool v) { yajl_gen_bool (w->g, v); }
void oj_w_null (oj_writer *w) { yajl_gen_null (w->g); }

void
oj_w_key (oj_writer *w, const char *key)
{
  yajl_gen_string (w->g, (const unsigned char *) key, strlen (key));
}

void
oj_w_string (oj_writer *w, const char *s)
{
  yajl_gen_string (w->g, (const unsigned char *) s, strlen (s));
}

void
oj_w_int (oj_writer *w, int64_t v)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%lld", (long long) v);
  yajl_gen_number (w->g, buf, n);
}

void
oj_w_uint (oj_writer *w, uint64_t v)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%llu", (unsigned long long) v);
  yajl_gen_number (w->g, buf, n);
}

void
oj_w_value (oj_writer *w, const oj_value *v)
{
  switch (v->type)
    {
    case OJ_NULL: oj_w_null (w); break;
    case OJ_BOOL: oj_w_bool (w, v->boolean); break;
    case OJ_NUMBER: yajl_gen_number (w->g, v->text, strlen (v->text)); break;
    case OJ_STRING: oj_w_string (w, v->text); break;
    case OJ_ARRAY:
      oj_w_begin_array (w);
      for (size_t i = 0; i < v->len; i++)
        oj_w_value (w, v->items[i]);
      oj_w_end_array (w);
      break;
    case OJ_OBJECT:
      oj_w_begin_object (w);
      for (size_t i = 0; i < v->len; i++)
        {
          oj_w_key (w, v->keys[i]);
          oj_w_value (w, v->items[i]);
        }
      oj_w_end_object (w);
      break;
    }
}

char *
oj_writer_finish (oj_writer *w, size_t *len)
{
  const unsigned char *buf;
  size_t l;
  char *r;
  yajl_gen_get_buf (w->g, &buf, &l);
  r = oj_strndup ((const char *) buf, l);
  if (len)
    *len = l;
  oj_writer_free (w);
  return r;
}
