/* The Q4_0 VNNI matrix-vector kernel body, included twice by quant_matvec_vnni.c: Q4_0_ROWS names
 * the function, Q4_0_VBMI selects the nibble unpacking (1: one VBMI byte permutation per pair of
 * blocks; 0: 128-bit loads and inserts). Not a public header. */
Q4_0_TARGET static inline __attribute__((always_inline)) void Q4_0_ROWS(const uint8_t *w, size_t rb, long r0, long r1, long cols,
                                                            const uint8_t *prep, size_t pstride, int m,
                                                            float *y, long ldy) {
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m512i m4z = _mm512_set1_epi8(0x0F);
    /* Words 0..15 keep their low nibbles, words 16..31 are shifted down by 4. */
    const __m512i nshift = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL,
                                            0, 0, 0, 0);
    /* Byte indices (into the 128 bytes of two loads) of pair k's a nibbles (16), b nibbles (16),
     * then both again: pairs 0, 1 from bytes 0..127 of the group, pairs 2, 3 from bytes 64..143
     * (the second load and one at byte 80). */
    __m512i bidx[4];
    for (int k = 0; k < 4; k++) {
        uint8_t ix[64];
        for (int j = 0; j < 16; j++) {
            const int a = 36 * k + 2 + j, c = 36 * k + 20 + j;
            const int ra = k < 2 ? a : (a < 128 ? a - 64 : a - 80 + 64), rc = k < 2 ? c : (c < 128 ? c - 64 : c - 80 + 64);
            ix[j] = ix[32 + j] = (uint8_t)ra;
            ix[16 + j] = ix[48 + j] = (uint8_t)rc;
        }
        bidx[k] = _mm512_loadu_si512(ix);
    }
    __m512i pidx[4];
    for (int k = 0; k < 4; k++) {
        const int a = 2 * k, c = 2 * k + 1;
        pidx[k] = _mm512_set_epi32(c, c, c, c, a, a, a, a, c, c, c, c, a, a, a, a);
    }
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        __m512 acc[4][2];
        __m256 oacc[4];
        for (int i = 0; i < 4; i++) { acc[i][0] = acc[i][1] = _mm512_setzero_ps(); oacc[i] = _mm256_setzero_ps(); }
        for (long g = 0; g < ng; g++, b += 144) {
            const __m512i l0 = _mm512_loadu_si512(b), l1 = _mm512_loadu_si512(b + 64);
            const __m256 d8 = q4_0_group_scales(l0, l1);
            __m512i wq[4];
#if Q4_0_VBMI
            {
                /* Each pair's 32 nibble bytes gathered twice ([a, b, a, b]) by one byte
                 * permutation, then the low half keeps the low nibbles, the high half the high. */
                const __m512i l2 = _mm512_loadu_si512(b + 80);
                for (int k = 0; k < 4; k++) {
                    const __m512i v = k < 2 ? _mm512_permutex2var_epi8(l0, bidx[k], l1) : _mm512_permutex2var_epi8(l1, bidx[k], l2);
                    wq[k] = _mm512_and_si512(_mm512_srlv_epi16(v, nshift), m4z);
                }
            }
#else
            {
                for (int k = 0; k < 4; k++) {
                    const uint8_t *ba = b + 36 * k;
                    const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(ba + 2))),
                                                              _mm_loadu_si128((const __m128i *)(ba + 20)), 1);
                    wq[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                               _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
                }
            }
#endif
            for (int i = 0; i < m; i++) {
                const uint8_t *row = prep + (size_t)i * pstride;
                const float *gs = (const float *)(row + ng * 256) + 16 * g;
                const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(d8, _mm256_loadu_ps(gs)));
                oacc[i] = _mm256_fmadd_ps(d8, _mm256_loadu_ps(gs + 8), oacc[i]);
                const uint8_t *xq = row + g * 256;
                for (int k = 0; k < 4; k++) {
                    const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[k], _mm512_loadu_si512(xq + 64 * k));
                    acc[i][k & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(pidx[k], s), acc[i][k & 1]);
                }
            }
        }
        for (int i = 0; i < m; i++) {
            const __m128 o = _mm_add_ps(_mm256_castps256_ps128(oacc[i]), _mm256_extractf128_ps(oacc[i], 1));
            float t = hsum16(_mm512_add_ps(acc[i][0], acc[i][1])) - ((o[0] + o[2]) + (o[1] + o[3]));
            const int8_t *tq = (const int8_t *)(prep + (size_t)i * pstride + ng * 256 + ng * 64);
            const float *td = (const float *)(tq + 32 * nt);
            for (long k = 0; k < nt; k++) {
                const uint8_t *bt = b + 18 * k;
                int32_t sum = 0;
                for (int j = 0; j < 16; j++)
                    sum += ((bt[2 + j] & 0x0F) - 8) * tq[32 * k + j] + ((bt[2 + j] >> 4) - 8) * tq[32 * k + j + 16];
                t += (float)sum * (h2f(bt) * td[k]);
            }
            y[i * ldy + r] = t;
        }
    }
}

