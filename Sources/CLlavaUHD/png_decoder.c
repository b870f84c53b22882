#include "png_decoder.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* State shared with libpng's callbacks. */
typedef struct luhd_png_context {
    const uint8_t *data;
    size_t size;
    size_t position;
    char *message;
    /* What the call returns when libpng jumps out (set by the first error). */
    luhd_image_status status;
} luhd_png_context;

/* libpng's error callback must not return: it records the message and jumps back into
 * luhd_png_decode, which destroys the read structures. */
static void luhd_png_error(png_structp png, png_const_charp text) {
    luhd_png_context *context = (luhd_png_context *)png_get_error_ptr(png);
    if (context->status == LUHD_IMAGE_OK) {
        context->status = LUHD_IMAGE_CORRUPT;
        snprintf(context->message, LUHD_IMAGE_MESSAGE_CAPACITY, "%s", text);
    }
    png_longjmp(png, 1);
}

/* libpng's allocator: a failure is remembered, so the error libpng raises next ("Out of
 * memory") returns LUHD_IMAGE_NO_MEMORY rather than LUHD_IMAGE_CORRUPT. */
static png_voidp luhd_png_malloc(png_structp png, png_alloc_size_t size) {
    void *p = malloc(size);
    if (!p) {
        luhd_png_context *context = (luhd_png_context *)png_get_mem_ptr(png);
        if (context->status == LUHD_IMAGE_OK) {
            context->status = LUHD_IMAGE_NO_MEMORY;
            snprintf(context->message, LUHD_IMAGE_MESSAGE_CAPACITY, "cannot allocate %zu bytes for the PNG decoder",
                     (size_t)size);
        }
    }
    return p;
}

static void luhd_png_free(png_structp png, png_voidp p) {
    (void)png;
    free(p);
}

/* Warnings (and benign errors, demoted to warnings) stay silent. */
static void luhd_png_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void luhd_png_read(png_structp png, png_bytep out, size_t count) {
    luhd_png_context *context = (luhd_png_context *)png_get_io_ptr(png);
    if (count > context->size - context->position) {
        context->status = LUHD_IMAGE_TRUNCATED;
        snprintf(context->message, LUHD_IMAGE_MESSAGE_CAPACITY,
                 "image file is truncated (%zu bytes needed at offset %zu of %zu)", count, context->position,
                 context->size);
        png_error(png, context->message);
    }
    memcpy(out, context->data + context->position, count);
    context->position += count;
}

/* Every chunk libpng hands over as unknown is accepted and dropped: Pillow skips chunks it does
 * not know, critical or not. */
static int luhd_png_skip_chunk(png_structp png, png_unknown_chunkp chunk) {
    (void)png;
    (void)chunk;
    return 1;
}

/* Sample `x` of a row packed with `depth` (1, 2 or 4) bits per sample, most significant first. */
static inline unsigned luhd_png_packed_sample(const uint8_t *row, size_t x, int depth) {
    size_t bit = x * (size_t)depth;
    unsigned shift = 8u - (unsigned)depth - (unsigned)(bit & 7);
    return (row[bit >> 3] >> shift) & ((1u << depth) - 1u);
}

static inline void luhd_put_grey(uint8_t *out, size_t x, uint8_t v) {
    out[3 * x] = v;
    out[3 * x + 1] = v;
    out[3 * x + 2] = v;
}

/* One row in the file's native layout → RGB8, with Pillow's unpack + convert('RGB') rules
 * (see png_decoder.h). */
static void luhd_png_row_to_rgb(const uint8_t *row, uint8_t *out, size_t width, int color, int depth,
                                const uint8_t *palette) {
    switch (color) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth == 16) {
            for (size_t x = 0; x < width; x++)
                luhd_put_grey(out, x, row[2 * x] != 0 ? 255 : row[2 * x + 1]);
        } else if (depth == 8) {
            for (size_t x = 0; x < width; x++) luhd_put_grey(out, x, row[x]);
        } else {
            unsigned scale = depth == 1 ? 255u : depth == 2 ? 0x55u : 0x11u;
            for (size_t x = 0; x < width; x++)
                luhd_put_grey(out, x, (uint8_t)(luhd_png_packed_sample(row, x, depth) * scale));
        }
        break;
    case PNG_COLOR_TYPE_PALETTE:
        for (size_t x = 0; x < width; x++) {
            unsigned index = depth == 8 ? row[x] : luhd_png_packed_sample(row, x, depth);
            memcpy(out + 3 * x, palette + 3 * index, 3);
        }
        break;
    case PNG_COLOR_TYPE_RGB:
        if (depth == 8) {
            memcpy(out, row, width * 3);
        } else {
            for (size_t x = 0; x < width; x++) {
                out[3 * x] = row[6 * x];
                out[3 * x + 1] = row[6 * x + 2];
                out[3 * x + 2] = row[6 * x + 4];
            }
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
        size_t step = depth == 8 ? 2 : 4;
        for (size_t x = 0; x < width; x++) luhd_put_grey(out, x, row[step * x]);
        break;
    }
    case PNG_COLOR_TYPE_RGB_ALPHA: {
        size_t step = depth == 8 ? 4 : 8, channel = depth == 8 ? 1 : 2;
        for (size_t x = 0; x < width; x++) {
            out[3 * x] = row[step * x];
            out[3 * x + 1] = row[step * x + channel];
            out[3 * x + 2] = row[step * x + 2 * channel];
        }
        break;
    }
    }
}

static int32_t luhd_png_pil_mode(int color, int depth) {
    switch (color) {
    case PNG_COLOR_TYPE_GRAY: return depth == 1 ? LUHD_PIL_1 : depth == 16 ? LUHD_PIL_I16 : LUHD_PIL_L;
    case PNG_COLOR_TYPE_PALETTE: return LUHD_PIL_P;
    case PNG_COLOR_TYPE_RGB: return LUHD_PIL_RGB;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return depth == 16 ? LUHD_PIL_RGBA : LUHD_PIL_LA;
    default: return LUHD_PIL_RGBA;
    }
}

luhd_image_status luhd_png_decode(const uint8_t *data, size_t size, luhd_image_info *info, uint8_t *rgb,
                                  size_t rgb_size, char message[LUHD_IMAGE_MESSAGE_CAPACITY]) {
    luhd_png_context context = {data, size, 0, message, LUHD_IMAGE_OK};
    /* Scratch rows (or the whole interlaced image) in the file's layout; freed on every path. */
    uint8_t *volatile scratch = NULL;

    message[0] = 0;
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "not a PNG file");
        return LUHD_IMAGE_CORRUPT;
    }
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &context, luhd_png_error, luhd_png_warning,
                                               &context, luhd_png_malloc, luhd_png_free);
    if (!png) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "cannot allocate the PNG decoder");
        return LUHD_IMAGE_NO_MEMORY;
    }
    png_infop png_info = png_create_info_struct(png);
    if (!png_info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "cannot allocate the PNG decoder");
        return LUHD_IMAGE_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &png_info, NULL);
        free(scratch);
        return *(volatile luhd_image_status *)&context.status;
    }
    luhd_image_status status = LUHD_IMAGE_OK;

    png_set_read_fn(png, &context, luhd_png_read);
    /* libpng's own caps (1,000,000 pixels a side, 8 MB chunks) are not Pillow's: allow any
     * legal size (the caller applies its pixel limit) and chunks as long as the file. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)size);
    png_set_benign_errors(png, 1);
    /* Ignore every ancillary chunk but tRNS (which is read but unused); route unknown chunks to
     * a callback that drops them. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_read_user_chunk_fn(png, NULL, luhd_png_skip_chunk);
    /* Before the image data every CRC error is fatal, as in Pillow's chunk reader. */
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, png_info);

    png_uint_32 width32 = 0, height32 = 0;
    int depth = 0, color = 0, interlace = 0;
    png_get_IHDR(png, png_info, &width32, &height32, &depth, &color, &interlace, NULL, NULL);
    size_t width = width32, height = height32;
    if (info) {
        info->width = width32;
        info->height = height32;
        info->mode = luhd_png_pil_mode(color, depth);
        info->components = png_get_channels(png, png_info);
        info->bit_depth = depth;
        info->progressive = interlace != PNG_INTERLACE_NONE;
    }
    if (!rgb) goto done;
    status = luhd_image_check_output(width, height, rgb_size, message);
    if (status != LUHD_IMAGE_OK) goto done;

    /* Pillow's palette starts all black and takes the PLTE entries. */
    uint8_t palette[256 * 3];
    memset(palette, 0, sizeof palette);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_colorp entries = NULL;
        int count = 0;
        if (png_get_PLTE(png, png_info, &entries, &count) & PNG_INFO_PLTE) {
            if (count > 256) count = 256;
            for (int i = 0; i < count; i++) {
                palette[3 * i] = entries[i].red;
                palette[3 * i + 1] = entries[i].green;
                palette[3 * i + 2] = entries[i].blue;
            }
        }
    }

    /* Pillow does not check IDAT CRCs. */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, png_info);
    size_t row_bytes = png_get_rowbytes(png, png_info);
    /* 8-bit RGB rows are already RGB8: decode straight into the output. */
    int direct = color == PNG_COLOR_TYPE_RGB && depth == 8 && row_bytes == width * 3;

    if (interlace != PNG_INTERLACE_NONE) {
        /* libpng combines the passes in place, so it needs the whole image. */
        uint8_t *image = rgb;
        if (!direct) {
            scratch = calloc(height, row_bytes);
            if (!scratch) {
                snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "cannot allocate %zu bytes for an interlaced PNG",
                         height * row_bytes);
                status = LUHD_IMAGE_NO_MEMORY;
                goto done;
            }
            image = scratch;
        }
        for (int pass = 0; pass < passes; pass++)
            for (size_t y = 0; y < height; y++) png_read_row(png, image + y * row_bytes, NULL);
        if (!direct)
            for (size_t y = 0; y < height; y++)
                luhd_png_row_to_rgb(image + y * row_bytes, rgb + y * width * 3, width, color, depth, palette);
    } else {
        if (!direct) {
            scratch = malloc(row_bytes);
            if (!scratch) {
                snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "cannot allocate a PNG row of %zu bytes", row_bytes);
                status = LUHD_IMAGE_NO_MEMORY;
                goto done;
            }
        }
        for (size_t y = 0; y < height; y++) {
            uint8_t *out = rgb + y * width * 3;
            png_read_row(png, direct ? out : scratch, NULL);
            if (!direct) luhd_png_row_to_rgb(scratch, out, width, color, depth, palette);
        }
    }
    /* Nothing after the last row is read (no png_read_end): Pillow does not check what follows
     * the image data either. */

done:
    png_destroy_read_struct(&png, &png_info, NULL);
    free(scratch);
    return status;
}
