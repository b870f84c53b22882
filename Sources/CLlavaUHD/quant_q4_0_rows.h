/* The Q4_0 VNNI matrix-vector kernel body, included twice by quant_matvec_vnni.c: Q4_0_ROWS names
 * the function, Q4_0_VBMI selects how the nibble bytes of 4 blocks are gathered into one register
 * (1: one VBMI byte permutation of two 64-byte loads; 0: four 128-bit loads). See
 * luhd_quant_prepare_vnni_q4_0 for the layout. Not a public header. */
Q4_0_TARGET static inline __attribute__((always_inline)) void Q4_0_ROWS(const uint8_t *w, size_t rb, long r0, long r1, long cols,
                                                            const uint8_t *prep, size_t pstride, int m,
                                                            float *y, long ldy) {
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* Lanes 4c..4c+3 take scale c (blocks 0-3) or 4 + c (blocks 4-7). */
    const __m512i spreadA = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i spreadB = _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4);
#if Q4_0_VBMI
    /* Byte j of block c's 16 nibble bytes: group byte 18c + 2 + j; blocks 0-3 read from the
     * 128 bytes at 0, blocks 4-7 from the 128 bytes at 16. */
    __m512i gidx[2];
    for (int h = 0; h < 2; h++) {
        uint8_t ix[64];
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 16; j++) ix[16 * c + j] = (uint8_t)(18 * (4 * h + c) + 2 + j - 16 * h);
        gidx[h] = _mm512_loadu_si512(ix);
    }
#endif
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        __m512 acc[4];
        __m256 oacc[4];
        for (int i = 0; i < 4; i++) { acc[i] = _mm512_setzero_ps(); oacc[i] = _mm256_setzero_ps(); }
        for (long g = 0; g < ng; g++, b += 144) {
            const __m512i l0 = _mm512_loadu_si512(b), l1 = _mm512_loadu_si512(b + 64);
            const __m256 d8 = q4_0_group_scales(l0, l1);
            const __m512 dA = _mm512_permutexvar_ps(spreadA, _mm512_castps256_ps512(d8));
            const __m512 dB = _mm512_permutexvar_ps(spreadB, _mm512_castps256_ps512(d8));
#if Q4_0_VBMI
            const __m512i t0 = _mm512_permutex2var_epi8(l0, gidx[0], l1);
            const __m512i t1 = _mm512_permutex2var_epi8(_mm512_loadu_si512(b + 16), gidx[1], _mm512_loadu_si512(b + 80));
#else
            __m512i t0 = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(b + 2)));
            t0 = _mm512_inserti32x4(t0, _mm_loadu_si128((const __m128i *)(b + 20)), 1);
            t0 = _mm512_inserti32x4(t0, _mm_loadu_si128((const __m128i *)(b + 38)), 2);
            t0 = _mm512_inserti32x4(t0, _mm_loadu_si128((const __m128i *)(b + 56)), 3);
            __m512i t1 = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(b + 74)));
            t1 = _mm512_inserti32x4(t1, _mm_loadu_si128((const __m128i *)(b + 92)), 1);
            t1 = _mm512_inserti32x4(t1, _mm_loadu_si128((const __m128i *)(b + 110)), 2);
            t1 = _mm512_inserti32x4(t1, _mm_loadu_si128((const __m128i *)(b + 128)), 3);
#endif
            const __m512i w0 = _mm512_and_si512(t0, m4), w1 = _mm512_and_si512(_mm512_srli_epi16(t0, 4), m4);
            const __m512i w2 = _mm512_and_si512(t1, m4), w3 = _mm512_and_si512(_mm512_srli_epi16(t1, 4), m4);
            for (int i = 0; i < m; i++) {
                const uint8_t *gp = prep + (size_t)i * pstride + g * Q4_0_GROUP_BYTES;
                const float *dxs = (const float *)(gp + 256);
                oacc[i] = _mm256_fmadd_ps(d8, _mm256_loadu_ps(dxs + 32), oacc[i]);
                __m512i dotA = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(gp));
                dotA = _mm512_dpbusd_epi32(dotA, w1, _mm512_loadu_si512(gp + 64));
                __m512i dotB = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, _mm512_loadu_si512(gp + 128));
                dotB = _mm512_dpbusd_epi32(dotB, w3, _mm512_loadu_si512(gp + 192));
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotA), _mm512_mul_ps(dA, _mm512_loadu_ps(dxs)), acc[i]);
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotB), _mm512_mul_ps(dB, _mm512_loadu_ps(dxs + 16)), acc[i]);
            }
        }
        for (int i = 0; i < m; i++) {
            const __m128 o = _mm_add_ps(_mm256_castps256_ps128(oacc[i]), _mm256_extractf128_ps(oacc[i], 1));
            float t = hsum16(acc[i]) - ((o[0] + o[2]) + (o[1] + o[3]));
            const int8_t *tq = (const int8_t *)(prep + (size_t)i * pstride + ng * Q4_0_GROUP_BYTES);
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
