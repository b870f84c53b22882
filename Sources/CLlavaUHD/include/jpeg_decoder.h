#ifndef CLLAVAUHD_JPEG_DECODER_H
#define CLLAVAUHD_JPEG_DECODER_H
#include "image_codec.h"

/* JPEG decoding with libjpeg(-turbo), set up as Pillow sets it up so the pixels match
 * `Image.open(f).convert('RGB')`:
 *   - default decompression settings (JDCT_ISLOW, fancy upsampling, block smoothing);
 *   - the colour space libjpeg infers from the JFIF/Adobe markers; output RGB for 3
 *     components, greyscale for 1, CMYK for 4;
 *   - 4-component data is taken as Adobe-inverted CMYK, as Pillow always does (its "CMYK;I"
 *     raw mode), then turned into RGB with Pillow's cmyk2rgb formula;
 *   - only 1-, 3- and 4-component frames are accepted (Pillow: "cannot handle N-layer images");
 *   - libjpeg warnings (corrupt data it can recover from) are ignored, as Pillow ignores them;
 *   - the input is the whole file: when libjpeg needs bytes past its end before every row is
 *     decoded the image is truncated (Pillow's "image file is truncated") instead of being
 *     padded with grey. A missing EOI after the last row is accepted, as in Pillow.
 * EXIF orientation is not applied.
 * Unlike Pillow, a file with more than LUHD_JPEG_MAX_SCANS scans is refused (LUHD_IMAGE_CORRUPT):
 * every scan of a progressive file refines the whole frame, so thousands of tiny scans make a
 * small file cost minutes (libjpeg-turbo's tools cap scans for the same reason). An allocation
 * that fails inside libjpeg returns LUHD_IMAGE_NO_MEMORY. */

/* The most scans a JPEG may have (libjpeg-turbo's fuzzers and tjbench use 500; a camera's
 * progressive JPEG has about 10). */
#define LUHD_JPEG_MAX_SCANS 500

/* Reads the headers of the JPEG in data[0..<size], up to the first scan,
 * into *info when rgb is NULL; decodes the whole image into rgb otherwise (a
 * luhd_image_decode_fn: image_codec.h). */
luhd_image_status luhd_jpeg_decode(const uint8_t *data, size_t size, luhd_image_info *info, uint8_t *rgb,
                                   size_t rgb_size, char message[LUHD_IMAGE_MESSAGE_CAPACITY]);
#endif
