/* sha256.c - SHA-256 (FIPS 180-4): the seccomp cache key, snapshot digests.  */
#include <config.h>
#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const uint32_t sha256_k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_block (sbx_sha256_ctx *c, const uint8_t *p)
{
  uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8
           | p[4 * i + 3];
  for (int i = 16; i < 64; i++)
    {
      uint32_t s0 = ROR32 (w[i - 15], 7) ^ ROR32 (w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = ROR32 (w[i - 2], 17) ^ ROR32 (w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
  a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
  e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++)
    {
      t1 = h + (ROR32 (e, 6) ^ ROR32 (e, 11) ^ ROR32 (e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
      t2 = (ROR32 (a, 2) ^ ROR32 (a, 13) ^ ROR32 (a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
      h = g, g = f, f = e, e = d + t1;
      d = cc, cc = b, b = a, a = t1 + t2;
    }
  c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
  c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI 1

/* The SHA extensions (x86 SHA-NI): the state as two vectors, ABEF and
   CDGH, four rounds per pair of sha256rnds2; the message schedule by
   sha256msg1/msg2.  Same result as sha256_block, about 5x faster.  */
__attribute__ ((target ("sha,sse4.1,ssse3"))) static void
sha256_blocks_ni (uint32_t h[8], const uint8_t *p, size_t n)
{
  const __m128i bswap = _mm_set_epi64x (0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i dcba = _mm_loadu_si128 ((const __m128i *)&h[0]);
  __m128i hgfe = _mm_loadu_si128 ((const __m128i *)&h[4]);
  __m128i cdab = _mm_shuffle_epi32 (dcba, 0xB1), efgh = _mm_shuffle_epi32 (hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8 (cdab, efgh, 8), cdgh = _mm_blend_epi16 (efgh, cdab, 0xF0);

  for (; n > 0; n--, p += 64)
    {
      __m128i w[16], save0 = abef, save1 = cdgh;
      for (int i = 0; i < 16; i++)
        {
          __m128i m;
          if (i < 4)
            w[i] = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *)(p + 16 * i)), bswap);
          else
            {
              __m128i x = _mm_sha256msg1_epu32 (w[i - 4], w[i - 3]);
              x = _mm_add_epi32 (x, _mm_alignr_epi8 (w[i - 1], w[i - 2], 4));
              w[i] = _mm_sha256msg2_epu32 (x, w[i - 1]);
            }
          m = _mm_add_epi32 (w[i], _mm_loadu_si128 ((const __m128i *)&sha256_k[4 * i]));
          cdgh = _mm_sha256rnds2_epu32 (cdgh, abef, m);
          abef = _mm_sha256rnds2_epu32 (abef, cdgh, _mm_shuffle_epi32 (m, 0x0E));
        }
      abef = _mm_add_epi32 (abef, save0);
      cdgh = _mm_add_epi32 (cdgh, save1);
    }
  {
    __m128i feba = _mm_shuffle_epi32 (abef, 0x1B), dchg = _mm_shuffle_epi32 (cdgh, 0xB1);
    _mm_storeu_si128 ((__m128i *)&h[0], _mm_blend_epi16 (feba, dchg, 0xF0));
    _mm_storeu_si128 ((__m128i *)&h[4], _mm_alignr_epi8 (dchg, feba, 8));
  }
}

static bool
have_sha_ni (void)
{
  static int known = -1;
  if (known < 0)
    {
      unsigned a, b, c, d;
      bool sha = __get_cpuid_count (7, 0, &a, &b, &c, &d) && (b & (1u << 29));
      bool sse = __get_cpuid (1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
      known = sha && sse;
    }
  return known;
}
#endif

/* n whole blocks.  */
static void
sha256_blocks (sbx_sha256_ctx *c, const uint8_t *p, size_t n)
{
#ifdef HAVE_SHA_NI
  if (have_sha_ni ())
    {
      uint32_t h[8];
      for (int i = 0; i < 8; i++)
        h[i] = c->h[i];
      sha256_blocks_ni (h, p, n);
      for (int i = 0; i < 8; i++)
        c->h[i] = h[i];
      return;
    }
#endif
  for (; n > 0; n--, p += 64)
    sha256_block (c, p);
}

void
sbx_sha256_init (sbx_sha256_ctx *c)
{
  static const uint32_t iv[8]
      = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  memcpy (c->h, iv, sizeof iv);
  c->total = 0;
  c->used = 0;
}

void
sbx_sha256_update (sbx_sha256_ctx *c, const void *data, size_t len)
{
  const uint8_t *p = data;
  c->total += len;
  while (len > 0)
    {
      size_t n = 64 - c->used < len ? 64 - c->used : len;
      if (c->used == 0 && len >= 64)
        {
          /* Whole blocks straight from the caller's buffer.  */
          sha256_blocks (c, p, len / 64);
          p += len / 64 * 64;
          len %= 64;
          continue;
        }
      memcpy (c->buf + c->used, p, n);
      c->used += n, p += n, len -= n;
      if (c->used == 64)
        {
          sha256_blocks (c, c->buf, 1);
          c->used = 0;
        }
    }
}

void
sbx_sha256_final (sbx_sha256_ctx *c, unsigned char out[32])
{
  uint64_t bits = c->total * 8;
  uint8_t pad = 0x80, zero = 0, lenbuf[8];
  sbx_sha256_update (c, &pad, 1);
  while (c->used != 56)
    sbx_sha256_update (c, &zero, 1);
  for (int i = 0; i < 8; i++)
    lenbuf[i] = (uint8_t)(bits >> (56 - 8 * i));
  sbx_sha256_update (c, lenbuf, 8);
  for (int i = 0; i < 8; i++)
    {
      out[4 * i] = (uint8_t)(c->h[i] >> 24);
      out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
      out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
      out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void
sbx_sha256 (const void *data, size_t len, unsigned char out[32])
{
  sbx_sha256_ctx c;
  sbx_sha256_init (&c);
  sbx_sha256_update (&c, data, len);
  sbx_sha256_final (&c, out);
}

void
sbx_sha256_hex (const unsigned char d[32], char hex[65])
{
  for (int i = 0; i < 32; i++)
    snprintf (hex + 2 * i, 3, "%02x", d[i]);
}
