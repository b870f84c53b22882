#ifndef CLLAVAUHD_IMAGE_CODEC_H
#define CLLAVAUHD_IMAGE_CODEC_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Types shared by the JPEG (jpeg_decoder.h) and PNG (png_decoder.h) decoders.
 *
 * Both decoders have one entry point of the shape luhd_image_decode_fn, called twice on an
 * encoded image held in memory:
 *   1. with rgb NULL: parses the headers only and reports the size and the Pillow mode the
 *      image opens as in *info, so the caller can apply its pixel limit and allocate the output;
 *   2. with rgb: decodes the whole image into the caller's RGB8 buffer (width·height·3 bytes,
 *      rows packed; rgb_size must be exactly that, else LUHD_IMAGE_BAD_OUTPUT), converting to
 *      RGB with Pillow's `convert('RGB')` rules; info may then be NULL.
 * Neither writes to stderr, calls exit() or leaks: libjpeg and libpng report errors through
 * longjmp inside these functions, and every library structure is destroyed on every path. */

/* What a call returned. */
typedef enum luhd_image_status {
    LUHD_IMAGE_OK = 0,
    /* The data is malformed or uses something the decoder cannot handle (message set). */
    LUHD_IMAGE_CORRUPT = 1,
    /* The data ends before the image does (Pillow: "image file is truncated"). */
    LUHD_IMAGE_TRUNCATED = 2,
    /* An allocation failed. */
    LUHD_IMAGE_NO_MEMORY = 3,
    /* The output buffer does not match the image size (a caller bug). */
    LUHD_IMAGE_BAD_OUTPUT = 4,
} luhd_image_status;

/* The Pillow mode an image opens as (`Image.open(f).mode`), which decides how it becomes RGB. */
typedef enum luhd_pil_mode {
    LUHD_PIL_1 = 0,      /* 1-bit black and white: 0 or 255 */
    LUHD_PIL_L = 1,      /* 8-bit grey */
    LUHD_PIL_P = 2,      /* palette indices */
    LUHD_PIL_RGB = 3,
    LUHD_PIL_RGBA = 4,
    LUHD_PIL_LA = 5,     /* grey + alpha */
    LUHD_PIL_I16 = 6,    /* "I;16": 16-bit grey */
    LUHD_PIL_CMYK = 7,
} luhd_pil_mode;

/* Header facts of an encoded image. */
typedef struct luhd_image_info {
    uint32_t width;
    uint32_t height;
    int32_t mode;        /* luhd_pil_mode */
    int32_t components;  /* JPEG: components in the frame; PNG: channels (1..4) */
    int32_t bit_depth;   /* PNG: bits per sample (1..16); JPEG: sample precision (8) */
    int32_t progressive; /* JPEG: progressive scans; PNG: Adam7 interlacing */
} luhd_image_info;

/* Size of the message buffers the decoders fill (including the terminating NUL). */
#define LUHD_IMAGE_MESSAGE_CAPACITY 256

/* A decoder's entry point (see above): data[0..<size] is the whole file; message receives a
 * NUL-terminated reason whenever the status is not LUHD_IMAGE_OK. */
typedef luhd_image_status (*luhd_image_decode_fn)(const uint8_t *data, size_t size, luhd_image_info *info,
                                                  uint8_t *rgb, size_t rgb_size,
                                                  char message[LUHD_IMAGE_MESSAGE_CAPACITY]);

/* LUHD_IMAGE_OK when rgb_size is exactly width·height·3 for a non-empty image; otherwise
 * LUHD_IMAGE_BAD_OUTPUT with the reason in message (the decoders check it before decoding). */
static inline luhd_image_status luhd_image_check_output(size_t width, size_t height, size_t rgb_size,
                                                        char message[LUHD_IMAGE_MESSAGE_CAPACITY]) {
    if (width != 0 && height != 0 && rgb_size / 3 / width == height && rgb_size % (3 * width) == 0)
        return LUHD_IMAGE_OK;
    snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "output buffer of %zu bytes does not fit a %zux%zu RGB image",
             rgb_size, width, height);
    return LUHD_IMAGE_BAD_OUTPUT;
}

#endif
