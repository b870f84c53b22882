#include "crc32c.h"
#include <nmmintrin.h>
#include <string.h>

uint32_t luhd_crc32c(uint32_t crc, const void *data, size_t size) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t c = ~crc;
    while (size > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        size--;
    }
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        size -= 8;
    }
    while (size > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        size--;
    }
    return ~(uint32_t)c;
}
