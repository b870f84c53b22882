#ifndef CLLAVAUHD_PNG_DECODER_H
#define CLLAVAUHD_PNG_DECODER_H
#include "image_codec.h"

/* PNG decoding with libpng's regular API (the simplified API composites alpha and applies
 * gamma; Pillow does neither), giving the pixels of `Image.open(f).convert('RGB')`:
 *
 *   IHDR (depth, colour type)   Pillow mode   → RGB
 *   grey 1                      "1"           0 → 0, 1 → 255
 *   grey 2 / 4 / 8              "L"           v·0x55 / v·0x11 / v, replicated
 *   grey 16                     "I;16"        v if v < 256, else 255 (a clip, not v >> 8)
 *   grey+alpha 8                "LA"          grey replicated, alpha dropped
 *   grey+alpha 16               "RGBA"        high byte of grey replicated, alpha dropped
 *   palette 1 / 2 / 4 / 8       "P"           PLTE entry; indices past PLTE are black
 *   RGB 8 / 16                  "RGB"         samples / high bytes
 *   RGBA 8 / 16                 "RGBA"        samples / high bytes, alpha dropped
 *
 * tRNS, gAMA, cHRM, sRGB, iCCP, sBIT and every other ancillary chunk are ignored, as Pillow
 * ignores them for convert('RGB'). Like Pillow, CRC errors in chunks before the first IDAT are
 * fatal, CRCs of IDAT chunks are not checked, unknown chunks (even critical ones) are skipped,
 * and nothing after the image data is read (a missing IEND or broken trailing chunk is fine).
 * Adam7 interlacing is undone. */

/* Reads the PNG signature and the chunks up to the first IDAT in data[0..<size]
 * into *info when rgb is NULL; decodes the whole image into rgb otherwise (a
 * luhd_image_decode_fn: image_codec.h). */
luhd_image_status luhd_png_decode(const uint8_t *data, size_t size, luhd_image_info *info, uint8_t *rgb,
                                  size_t rgb_size, char message[LUHD_IMAGE_MESSAGE_CAPACITY]);
#endif
