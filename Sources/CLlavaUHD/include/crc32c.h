#ifndef CLLAVAUHD_CRC32C_H
#define CLLAVAUHD_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, as iSCSI and ext4 use it) of `size`
 * bytes, continuing from `crc` (0 to start): the checksum of saved session files. Computed with
 * the SSE4.2 crc32 instruction, which the x86-64-v3 baseline guarantees: about 8 bytes per
 * 3 cycles, so hundreds of megabytes of KV cache cost tens of milliseconds. The check value
 * of "123456789" is 0xE3069283. */
uint32_t luhd_crc32c(uint32_t crc, const void *data, size_t size);
#endif
