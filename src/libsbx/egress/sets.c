/* egress/sets.c - the allowed destinations as nftables sets (see nft.c
 * and the kinds in egress_internal.h): per family, one address (with
 * every protocol, or with one protocol and port) in the hash sets
 * `hostsN` and `hostportsN`, whose inserts cost the same at any size;
 * address ranges with every protocol in the one-field interval set
 * `netsN` (the kernel's rbtree); only ranges of several fields (a CIDR
 * with a protocol or port, a port range) in the interval sets with
 * concatenated keys `allowN` (address . protocol) and `portsN` (address .
 * protocol . port) -- the kernel's pipapo backend, whose inserts cost more
 * as the set grows.  A lookup costs about the same for ten entries or
 * 65,536 in any of them; only the sets that have elements are made, each
 * with its lookup rule, and an install is one element message per
 * thousand entries instead of one rule each. *
 * The kernel refuses an element that overlaps another one of the same
 * set, and lists overlap freely (10.0.0.0/8 and 10.1.2.3, a port range and
 * a port in it), so the entries are first turned into disjoint boxes: a
 * sweep over the address boundaries, merging the second dimension
 * (protocol, or protocol and port) of the entries covering each segment.
 * Two entries that only touch are merged when they can be.  Lists whose
 * entries share no address (hosts, CIDRs) skip the sweep.  */
#include <config.h>
#include "egress/egress_internal.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

/* A box: addresses lo..hi times values blo..bhi of the second dimension
   (a protocol, or protocol << 16 | port).  Values with different
   `block` (v >> block_shift) are never merged into one box.  */
typedef struct
{
  u128 lo, hi;
  uint32_t blo, bhi;
} box;

typedef struct
{
  box *v;
  size_t n, cap;
} boxes;

static void
boxes_push (boxes *b, box x)
{
  if (b->n == b->cap)
    {
      b->cap = b->cap ? 2 * b->cap : 64;
      b->v = xrealloc (b->v, b->cap * sizeof *b->v);
    }
  b->v[b->n++] = x;
}

static int
by_lo (const void *a, const void *b)
{
  const box *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int
u128_cmp (const void *a, const void *b)
{
  u128 x = *(const u128 *)a, y = *(const u128 *)b;
  return x < y ? -1 : x > y;
}

typedef struct
{
  uint32_t lo, hi;
} span;

static int
by_span (const void *a, const void *b)
{
  const span *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The common case, boxes sorted by address that share no address (a list
   of hosts or of CIDRs): each is its own element, merged only with a
   neighbour that touches it and has the same second dimension -- what the
   sweep below makes of them, without its cost.  False, and nothing in
   out, when two boxes share an address.  */
static bool
disjoint_addresses (const boxes *in, boxes *out)
{
  for (size_t i = 1; i < in->n; i++)
    if (in->v[i].lo <= in->v[i - 1].hi)
      return false;
  for (size_t i = 0; i < in->n; i++)
    {
      box *t = out->n ? &out->v[out->n - 1] : NULL;
      const box *b = &in->v[i];
      if (t && t->hi + 1 == b->lo && t->blo == b->blo && t->bhi == b->bhi)
        t->hi = b->hi;
      else
        boxes_push (out, *b);
    }
  return true;
}

/* The union of `in` as disjoint boxes; in->v is sorted.  */
static void
disjoint (boxes *in, u128 max, int block_shift, boxes *out)
{
  size_t nb = 0, next = 0, nact = 0, nsp;
  u128 *bound;
  size_t *act;
  span *sp;
  size_t prev_first = 0, prev_n = 0;

  qsort (in->v, in->n, sizeof *in->v, by_lo);
  if (disjoint_addresses (in, out))
    return;
  bound = xmalloc0 ((2 * in->n + 1) * sizeof *bound);
  act = xmalloc0 ((in->n + 1) * sizeof *act);
  sp = xmalloc0 ((in->n + 1) * sizeof *sp);
  for (size_t i = 0; i < in->n; i++)
    {
      bound[nb++] = in->v[i].lo;
      if (in->v[i].hi != max)
        bound[nb++] = in->v[i].hi + 1;
    }
  qsort (bound, nb, sizeof *bound, u128_cmp);
  for (size_t k = 0; k < nb; k++)
    {
      u128 lo = bound[k], hi;
      size_t keep = 0, first = out->n;
      if (k + 1 < nb && bound[k + 1] == lo)
        continue;
      hi = k + 1 < nb ? bound[k + 1] - 1 : max;
      while (next < in->n && in->v[next].lo <= lo)
        act[nact++] = next++;
      for (size_t i = 0; i < nact; i++)
        if (in->v[act[i]].hi >= lo)
          act[keep++] = act[i];
      nact = keep;
      if (nact == 0)
        {
          prev_n = 0;
          continue;
        }
      for (size_t i = 0; i < nact; i++)
        sp[i] = (span){ in->v[act[i]].blo, in->v[act[i]].bhi };
      qsort (sp, nact, sizeof *sp, by_span);
      nsp = 0;
      for (size_t i = 0; i < nact; i++)
        {
          span *t = nsp ? &sp[nsp - 1] : NULL;
          if (t
              && (sp[i].lo <= t->hi
                  || (sp[i].lo == t->hi + 1
                      && ((uint64_t)sp[i].lo >> block_shift) == ((uint64_t)t->hi >> block_shift))))
            {
              if (sp[i].hi > t->hi)
                t->hi = sp[i].hi;
            }
          else
            sp[nsp++] = sp[i];
        }
      /* The same spans as the segment just before: widen those boxes.  */
      if (prev_n == nsp && out->v[prev_first].hi + 1 == lo)
        {
          bool same = true;
          for (size_t i = 0; i < nsp && same; i++)
            same = out->v[prev_first + i].blo == sp[i].lo && out->v[prev_first + i].bhi == sp[i].hi;
          if (same)
            {
              for (size_t i = 0; i < nsp; i++)
                out->v[prev_first + i].hi = hi;
              continue;
            }
        }
      for (size_t i = 0; i < nsp; i++)
        boxes_push (out, (box){ lo, hi, sp[i].lo, sp[i].hi });
      prev_first = first;
      prev_n = nsp;
    }
  free (bound);
  free (act);
  free (sp);
}

static u128
addr_num (const uint8_t *a, int len)
{
  u128 v = 0;
  for (int i = 0; i < len; i++)
    v = (v << 8) | a[i];
  return v;
}

static void
num_addr (u128 v, uint8_t *a, int len)
{
  for (int i = len - 1; i >= 0; i--, v >>= 8)
    a[i] = (uint8_t)v;
}

/* Does r's address range meet the family's multicast range
   (224.0.0.0/4, ff00::/8)?  */
static bool
meets_multicast (const sbx_net_rule *r)
{
  int mbits = r->family == AF_INET ? 4 : 8;
  uint8_t first = r->family == AF_INET ? 0xe0 : 0xff;
  int bits = r->prefix < mbits ? r->prefix : mbits;
  uint8_t mask = (uint8_t)(0xff << (8 - bits));
  return bits == 0 || (r->addr[0] & mask) == (first & mask);
}

static void
add_rule (egr_sets *s, const sbx_net_rule *r)
{
  int v6 = r->family == AF_INET6, len = v6 ? 16 : 4, host = (v6 ? 128 : 32) - r->prefix;
  u128 lo = addr_num (r->addr, len);
  u128 hostmask = host >= 128 ? ~(u128)0 : (((u128)1 << host) - 1);
  box b = { lo & ~hostmask, lo | hostmask, 0, 0 };

  if (meets_multicast (r))
    s->multicast[v6] = true;
  if (r->proto == 0 || r->port_min == 0)
    {
      b.blo = r->proto ? r->proto : 0;
      b.bhi = r->proto ? r->proto : 255;
      boxes_push ((boxes *)s->raw[v6][0], b);
    }
  else
    {
      b.blo = (uint32_t)r->proto << 16 | r->port_min;
      b.bhi = (uint32_t)r->proto << 16 | r->port_max;
      boxes_push ((boxes *)s->raw[v6][1], b);
    }
}

/* Host bits of the largest CIDR block starting at lo within lo..hi
   (lo <= hi, both below 2^bits).  */
static int
block_host_bits (u128 lo, u128 hi, int bits)
{
  uint64_t l = (uint64_t)lo, h = (uint64_t)(lo >> 64);
  int align = lo == 0 ? bits : l ? __builtin_ctzll (l) : 64 + __builtin_ctzll (h);
  u128 size = hi - lo; /* the block's size less one, then the size */
  int fit;
  if (size == ~(u128)0)
    return 128; /* all of IPv6 */
  size++;
  l = (uint64_t)size, h = (uint64_t)(size >> 64);
  fit = h ? 127 - __builtin_clzll (h) : 63 - __builtin_clzll (l); /* floor (log2 (size)) */
  return align < fit ? align : fit;
}

/* A prefix length needs this many blocks for a hash set of its own.  */
#define PFX_MIN 32

/* The ranges of netsN as CIDR blocks: the prefix lengths shared by at
   least PFX_MIN blocks, the most common EGR_PFX_MAX of them, go to hash
   sets of their own (whole addresses to hostsN); the other blocks stay in
   netsN, adjacent ones merged again.  A list of CIDRs is its own blocks
   (siblings merged), so this adds no elements to a list of CIDRs.  */
static void
split_nets (egr_sets *s, int f)
{
  boxes *nets = s->elems[f][EGR_NETS], rest = { 0 };
  int bits = f ? 128 : 32, kind_of[129], npfx = 0;
  size_t count[129] = { 0 };

  if (nets->n < PFX_MIN)
    return;
  for (size_t i = 0; i < nets->n; i++)
    for (u128 lo = nets->v[i].lo, hi = nets->v[i].hi;;)
      {
        int k = block_host_bits (lo, hi, bits);
        u128 last = k >= 128 ? ~(u128)0 : lo + (((u128)1 << k) - 1);
        count[bits - k]++;
        if (last == hi)
          break;
        lo = last + 1;
      }
  for (int len = 0; len <= bits; len++)
    kind_of[len] = -1;
  if (count[bits] >= PFX_MIN)
    kind_of[bits] = EGR_HOSTS;
  while (npfx < EGR_PFX_MAX)
    {
      int best = -1;
      for (int len = 1; len < bits; len++)
        if (kind_of[len] < 0 && count[len] >= PFX_MIN && (best < 0 || count[len] > count[best]))
          best = len;
      if (best < 0)
        break;
      kind_of[best] = EGR_PFX + npfx;
      s->prefix[f][EGR_PFX + npfx] = (uint8_t)best;
      snprintf (s->names[f][EGR_PFX + npfx], sizeof s->names[f][0], "nets%d_%d", f ? 6 : 4, best);
      npfx++;
    }
  if (npfx == 0 && kind_of[bits] < 0)
    return;
  for (size_t i = 0; i < nets->n; i++)
    for (u128 lo = nets->v[i].lo, hi = nets->v[i].hi;;)
      {
        int k = block_host_bits (lo, hi, bits);
        u128 last = k >= 128 ? ~(u128)0 : lo + (((u128)1 << k) - 1);
        box b = { lo, last, 0, 255 };
        box *t = rest.n ? &rest.v[rest.n - 1] : NULL;
        if (kind_of[bits - k] >= 0)
          boxes_push (s->elems[f][kind_of[bits - k]], b);
        else if (t && t->hi + 1 == lo)
          t->hi = last;
        else
          boxes_push (&rest, b);
        if (last == hi)
          break;
        lo = last + 1;
      }
  free (nets->v);
  *nets = rest;
}

void
egr_sets_build (egr_sets *s, const sbx_net_policy *p)
{
  size_t n;
  const sbx_net_rule *v;

  memset (s, 0, sizeof *s);
  for (int f = 0; f < 2; f++)
    {
      for (int k = 0; k < 2; k++)
        s->raw[f][k] = xmalloc0 (sizeof (boxes));
      for (int k = 0; k < EGR_KINDS; k++)
        s->elems[f][k] = xmalloc0 (sizeof (boxes));
    }
  v = sbx_net_policy_rules (p, &n);
  for (size_t i = 0; i < n; i++)
    add_rule (s, &v[i]);
  v = sbx_net_policy_resolvers (p, &n);
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 2; k++)
      {
        sbx_net_rule d = v[i];
        d.proto = k ? IPPROTO_TCP : IPPROTO_UDP;
        d.port_min = d.port_max = 53;
        add_rule (s, &d);
      }
  for (int f = 0; f < 2; f++)
    for (int k = 0; k < 2; k++)
      {
        boxes all = { 0 };
        disjoint (s->raw[f][k], f ? ~(u128)0 : 0xffffffffu, k ? 16 : 31, &all);
        for (size_t i = 0; i < all.n; i++)
          {
            const box *b = &all.v[i];
            int kind = k;
            if (k == EGR_ALLOW && b->blo == 0 && b->bhi == 255)
              kind = b->lo == b->hi ? EGR_HOSTS : EGR_NETS; /* every protocol */
            else if (k == EGR_PORTS && b->lo == b->hi && b->blo == b->bhi)
              kind = EGR_HOSTPORTS;
            boxes_push (s->elems[f][kind], *b);
          }
        free (all.v);
      }
  for (int f = 0; f < 2; f++)
    {
      for (int k = 0; k < EGR_PFX; k++)
        {
          static const char *names[EGR_PFX] = { "allow", "ports", "hosts", "hostports", "nets" };
          snprintf (s->names[f][k], sizeof s->names[f][k], "%s%d", names[k], f ? 6 : 4);
        }
      split_nets (s, f);
      for (int k = 0; k < EGR_KINDS; k++)
        s->n[f][k] = ((boxes *)s->elems[f][k])->n;
    }
}

size_t
egr_sets_count (const egr_sets *s)
{
  size_t n = 0;
  for (int f = 0; f < 2; f++)
    for (int k = 0; k < EGR_KINDS; k++)
      n += s->n[f][k];
  return n;
}

void
egr_sets_free (egr_sets *s)
{
  for (int f = 0; f < 2; f++)
    for (int k = 0; k < EGR_KINDS; k++)
      {
        boxes *a = k < 2 ? s->raw[f][k] : NULL, *b = s->elems[f][k];
        if (a)
          free (a->v);
        if (b)
          free (b->v);
        free (a);
        free (b);
      }
}

const char *
egr_set_name (const egr_sets *s, int v6, int kind)
{
  return s->names[v6][kind];
}

int
egr_set_fields (int kind)
{
  static const int fields[EGR_PFX] = { 2, 3, 1, 3, 1 };
  return kind < EGR_PFX ? fields[kind] : 1;
}

/* The concatenation's type as nft shows it (datatype ids: ipv4_addr 7,
   ipv6_addr 8, inet_proto 12, inet_service 13; 6 bits each).  */
static uint32_t
concat_type (int v6, int fields)
{
  uint32_t t = v6 ? 8u : 7u;
  if (fields >= 2)
    t = (t << 6) | 12;
  if (fields >= 3)
    t = (t << 6) | 13;
  return t;
}

uint32_t
egr_key_len (int v6, int fields)
{
  return (v6 ? 16 : 4) + 4 * (uint32_t)(fields - 1);
}

void
egr_set_msg (nl_ctx *x, const char *table, const char *name, int v6, int fields, uint32_t flags,
             uint32_t size, uint64_t timeout_ms, struct nftnl_expr *expr)
{
  struct nftnl_set *s = nftnl_set_alloc ();
  uint8_t lens[3] = { v6 ? 16 : 4, 1, 2 };
  struct nlmsghdr *nlh;
  if (s == NULL)
    abort ();
  nftnl_set_set_u32 (s, NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_str (s, NFTNL_SET_TABLE, table);
  nftnl_set_set_str (s, NFTNL_SET_NAME, name);
  nftnl_set_set_u32 (s, NFTNL_SET_FLAGS, flags);
  nftnl_set_set_u32 (s, NFTNL_SET_KEY_TYPE, concat_type (v6, fields));
  nftnl_set_set_u32 (s, NFTNL_SET_KEY_LEN, egr_key_len (v6, fields));
  if (flags & NFT_SET_CONCAT)
    nftnl_set_set_data (s, NFTNL_SET_DESC_CONCAT, lens, (uint32_t)fields);
  nftnl_set_set_u32 (s, NFTNL_SET_ID, ++x->set_ids);
  if (size)
    nftnl_set_set_u32 (s, NFTNL_SET_DESC_SIZE, size);
  if (timeout_ms)
    nftnl_set_set_u64 (s, NFTNL_SET_TIMEOUT, timeout_ms);
  if (expr)
    nftnl_set_add_expr (s, expr);
  nlh = egr_batch_msg (x, NFT_MSG_NEWSET, NLM_F_CREATE, xasprintf ("nftables set `%s`", name));
  nftnl_set_nlmsg_build_payload (nlh, s);
  nftnl_set_free (s);
  egr_batch_done_msg (x);
}

#define ELEMS_PER_MSG 1024

static void
key_bytes (uint8_t *k, int v6, int fields, u128 addr, uint32_t second)
{
  int alen = v6 ? 16 : 4;
  memset (k, 0, 20 + 4 + 4);
  num_addr (addr, k, alen);
  if (fields == 3)
    {
      k[alen] = (uint8_t)(second >> 16);
      k[alen + 4] = (uint8_t)(second >> 8);
      k[alen + 5] = (uint8_t)second;
    }
  else if (fields == 2)
    k[alen] = (uint8_t)second;
}

void
egr_sets_msgs (nl_ctx *x, const char *table, const egr_sets *s)
{
  for (int f = 0; f < 2; f++)
    for (int k = 0; k < EGR_KINDS; k++)
      {
        const boxes *b = s->elems[f][k];
        int fields = egr_set_fields (k);
        bool concat = k == EGR_ALLOW || k == EGR_PORTS, nets = k == EGR_NETS;
        u128 max = f ? ~(u128)0 : 0xffffffffu;
        uint32_t klen = egr_key_len (f, fields);
        if (b->n == 0)
          continue;
        /* The hash sets are sized for their elements: the kernel then
           picks a fixed-size table (no resizing while inserting).  */
        egr_set_msg (x, table, egr_set_name (s, f, k), f, fields,
                     concat ? NFT_SET_INTERVAL | NFT_SET_CONCAT
                     : nets ? NFT_SET_INTERVAL
                            : 0,
                     concat || nets ? 0 : (uint32_t)b->n, 0, NULL);
        /* The element list is one attribute, whose length is 16 bits: a
           range of netsN is two elements.  */
        size_t per = nets ? ELEMS_PER_MSG / 2 : ELEMS_PER_MSG;
        for (size_t i = 0; i < b->n; i += per)
          {
            size_t end = i + per < b->n ? i + per : b->n;
            struct nlmsghdr *nlh = egr_batch_msg (
                x, NFT_MSG_NEWSETELEM, NLM_F_CREATE,
                xasprintf ("nftables set `%s`: elements %zu to %zu", egr_set_name (s, f, k), i + 1, end));
            struct nlattr *list;
            /* written directly, not through libnftnl's element objects
               (two allocations per element) */
            mnl_attr_put_strz (nlh, NFTA_SET_ELEM_LIST_TABLE, table);
            mnl_attr_put_strz (nlh, NFTA_SET_ELEM_LIST_SET, egr_set_name (s, f, k));
            list = mnl_attr_nest_start (nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
            for (size_t j = i; j < end; j++)
              {
                struct nlattr *el = mnl_attr_nest_start (nlh, NFTA_LIST_ELEM), *kn;
                uint8_t key[28];
                key_bytes (key, f, fields, b->v[j].lo, b->v[j].blo);
                kn = mnl_attr_nest_start (nlh, NFTA_SET_ELEM_KEY);
                mnl_attr_put (nlh, NFTA_DATA_VALUE, klen, key);
                mnl_attr_nest_end (nlh, kn);
                if (concat)
                  {
                    key_bytes (key, f, fields, b->v[j].hi, b->v[j].bhi);
                    kn = mnl_attr_nest_start (nlh, NFTA_SET_ELEM_KEY_END);
                    mnl_attr_put (nlh, NFTA_DATA_VALUE, klen, key);
                    mnl_attr_nest_end (nlh, kn);
                  }
                mnl_attr_nest_end (nlh, el);
                /* A one-field interval set takes a range as two elements:
                   its start, and the first address after it flagged as an
                   end (none when the range reaches the last address).
                   Ranges never touch (disjoint merges them), so no end
                   falls on another's start.  */
                if (nets && b->v[j].hi != max)
                  {
                    el = mnl_attr_nest_start (nlh, NFTA_LIST_ELEM);
                    key_bytes (key, f, fields, b->v[j].hi + 1, 0);
                    mnl_attr_put_u32 (nlh, NFTA_SET_ELEM_FLAGS, htonl (NFT_SET_ELEM_INTERVAL_END));
                    kn = mnl_attr_nest_start (nlh, NFTA_SET_ELEM_KEY);
                    mnl_attr_put (nlh, NFTA_DATA_VALUE, klen, key);
                    mnl_attr_nest_end (nlh, kn);
                    mnl_attr_nest_end (nlh, el);
                  }
              }
            mnl_attr_nest_end (nlh, list);
            egr_batch_done_msg (x);
          }
      }
}

size_t
egr_sets_batch_bytes (const egr_sets *s)
{
  size_t n = egr_sets_count (s);
  /* an element: two nested keys of at most 24 bytes, and their headers;
     a set's own message */
  return n * 96 + (2 * n / ELEMS_PER_MSG + 2 * EGR_KINDS) * 512;
}
