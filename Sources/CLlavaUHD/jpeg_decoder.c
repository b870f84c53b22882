#include "jpeg_decoder.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg calls error_exit on a fatal error and must not return from it: it jumps back into
 * luhd_jpeg_decode, which destroys the decompressor. Warnings and trace messages go through
 * output_message, which stays silent (Pillow silences it too). `status` is what the call
 * returns after the jump: LUHD_IMAGE_NO_MEMORY when libjpeg could not allocate its buffers
 * (a progressive image keeps every coefficient of the frame), LUHD_IMAGE_CORRUPT otherwise. */
typedef struct luhd_jpeg_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    volatile luhd_image_status status;
} luhd_jpeg_error;

static void luhd_jpeg_error_exit(j_common_ptr cinfo) {
    luhd_jpeg_error *error = (luhd_jpeg_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(error->message, LUHD_IMAGE_MESSAGE_CAPACITY, "%s", text);
    error->status = cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? LUHD_IMAGE_NO_MEMORY : LUHD_IMAGE_CORRUPT;
    longjmp(error->jump, 1);
}

/* libjpeg calls the progress monitor once per scan it consumes (and per row group). A
 * progressive file may declare any number of scans, each rereading and refining the whole
 * coefficient buffer, so a small file can cost minutes: past LUHD_JPEG_MAX_SCANS scans the
 * image is refused, as libjpeg-turbo's own tools refuse it (djpeg -maxscans, tjbench). */
static void luhd_jpeg_progress(j_common_ptr cinfo) {
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number <= LUHD_JPEG_MAX_SCANS) return;
    luhd_jpeg_error *error = (luhd_jpeg_error *)cinfo->err;
    snprintf(error->message, LUHD_IMAGE_MESSAGE_CAPACITY,
             "more than %d scans (a progressive JPEG this costly to decode is refused)", LUHD_JPEG_MAX_SCANS);
    error->status = LUHD_IMAGE_CORRUPT;
    longjmp(error->jump, 1);
}

static void luhd_jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

/* The source is the whole file, given at once. When libjpeg asks for more, there is no more:
 * fill_input_buffer returns FALSE, which libjpeg treats as a suspension, exactly like
 * Pillow's suspending source once its reader has hit the end of the file. A suspension
 * before the last row is therefore a truncated file, not a warning plus grey padding (which
 * is what jpeg_mem_src would give). */
static void luhd_jpeg_source_noop(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean luhd_jpeg_source_fill(j_decompress_ptr cinfo) {
    (void)cinfo;
    return FALSE;
}

static void luhd_jpeg_source_skip(j_decompress_ptr cinfo, long count) {
    struct jpeg_source_mgr *source = cinfo->src;
    if (count <= 0) return;
    if ((unsigned long)count > source->bytes_in_buffer) {
        /* A marker segment longer than what is left: consume everything; the next read
         * suspends. */
        source->next_input_byte += source->bytes_in_buffer;
        source->bytes_in_buffer = 0;
    } else {
        source->next_input_byte += count;
        source->bytes_in_buffer -= (size_t)count;
    }
}

/* Pillow's MULDIV255: a·b/255 rounded, in integers. */
static inline int luhd_muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* One row of libjpeg's CMYK output → RGB. Pillow reads the samples as Adobe-inverted ("CMYK;I":
 * its CMYK value is 255 − sample) and converts with cmyk2rgb: with nk = 255 − K,
 * R = nk − MULDIV255(C, nk) (same for G from M, B from Y). */
static void luhd_cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t width) {
    for (size_t x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        int c = 255 - cmyk[0], m = 255 - cmyk[1], y = 255 - cmyk[2], k = 255 - cmyk[3];
        int nk = 255 - k;
        rgb[0] = (uint8_t)(nk - luhd_muldiv255(c, nk));
        rgb[1] = (uint8_t)(nk - luhd_muldiv255(m, nk));
        rgb[2] = (uint8_t)(nk - luhd_muldiv255(y, nk));
    }
}

/* Expands a row of `width` grey samples stored at the start of `row` to RGB in place, from the
 * right so no sample is overwritten before it is read. */
static void luhd_grey_row_to_rgb_in_place(uint8_t *row, size_t width) {
    for (size_t x = width; x-- > 0;) {
        uint8_t v = row[x];
        row[3 * x] = v;
        row[3 * x + 1] = v;
        row[3 * x + 2] = v;
    }
}

luhd_image_status luhd_jpeg_decode(const uint8_t *data, size_t size, luhd_image_info *info, uint8_t *rgb,
                                   size_t rgb_size, char message[LUHD_IMAGE_MESSAGE_CAPACITY]) {
    struct jpeg_decompress_struct cinfo;
    luhd_jpeg_error error;
    struct jpeg_source_mgr source;
    struct jpeg_progress_mgr progress;
    volatile luhd_image_status status = LUHD_IMAGE_OK;

    message[0] = 0;
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "not a JPEG file");
        return LUHD_IMAGE_CORRUPT;
    }

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&error.pub);
    error.pub.error_exit = luhd_jpeg_error_exit;
    error.pub.output_message = luhd_jpeg_silent;
    error.message = message;
    error.status = LUHD_IMAGE_CORRUPT;
    if (setjmp(error.jump)) {
        /* A fatal libjpeg error or too many scans; the message is already formatted. */
        jpeg_destroy_decompress(&cinfo);
        return error.status;
    }
    jpeg_create_decompress(&cinfo);
    memset(&progress, 0, sizeof progress);
    progress.progress_monitor = luhd_jpeg_progress;
    cinfo.progress = &progress;

    source.next_input_byte = data;
    source.bytes_in_buffer = size;
    source.init_source = luhd_jpeg_source_noop;
    source.fill_input_buffer = luhd_jpeg_source_fill;
    source.skip_input_data = luhd_jpeg_source_skip;
    source.resync_to_restart = jpeg_resync_to_restart;
    source.term_source = luhd_jpeg_source_noop;
    cinfo.src = &source;

    /* Like Pillow: tables-only datastreams before the image are skipped. */
    int header;
    do {
        header = jpeg_read_header(&cinfo, FALSE);
    } while (header == JPEG_HEADER_TABLES_ONLY);
    if (header == JPEG_SUSPENDED) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "image file is truncated (the data ends before the first scan)");
        status = LUHD_IMAGE_TRUNCATED;
        goto done;
    }
    int components = cinfo.num_components;
    if (components != 1 && components != 3 && components != 4) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "cannot handle %d-layer images", components);
        status = LUHD_IMAGE_CORRUPT;
        goto done;
    }
    size_t width = cinfo.image_width, height = cinfo.image_height;
    if (info) {
        info->width = (uint32_t)width;
        info->height = (uint32_t)height;
        info->mode = components == 1 ? LUHD_PIL_L : components == 3 ? LUHD_PIL_RGB : LUHD_PIL_CMYK;
        info->components = components;
        info->bit_depth = cinfo.data_precision;
        info->progressive = cinfo.progressive_mode ? 1 : 0;
    }
    if (!rgb) goto done;
    status = luhd_image_check_output(width, height, rgb_size, message);
    if (status != LUHD_IMAGE_OK) goto done;

    /* Pillow's settings: it leaves the inferred jpeg_color_space alone and asks for RGB (as
     * RGBX, the same samples), greyscale or CMYK; no scaling, no draft mode. */
    cinfo.out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.do_block_smoothing = TRUE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    if (!jpeg_start_decompress(&cinfo)) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "image file is truncated (the data ends inside the scans)");
        status = LUHD_IMAGE_TRUNCATED;
        goto done;
    }
    if (cinfo.output_width != width || cinfo.output_height != height || cinfo.output_components != components) {
        snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "unexpected decoder output %ux%u with %d components",
                 cinfo.output_width, cinfo.output_height, cinfo.output_components);
        status = LUHD_IMAGE_CORRUPT;
        goto done;
    }
    JSAMPARRAY cmyk = NULL;
    if (components == 4) {
        /* Freed with the decompressor, also on the error path. */
        cmyk = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)(width * 4), 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *out = rgb + (size_t)cinfo.output_scanline * width * 3;
        JSAMPROW row = cmyk ? cmyk[0] : out;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            snprintf(message, LUHD_IMAGE_MESSAGE_CAPACITY, "image file is truncated (the data ends at row %u of %zu)",
                     cinfo.output_scanline, height);
            status = LUHD_IMAGE_TRUNCATED;
            goto done;
        }
        if (components == 1) luhd_grey_row_to_rgb_in_place(out, width);
        else if (components == 4) luhd_cmyk_row_to_rgb(row, out, width);
    }
    /* Every row is decoded. Like Pillow, a suspension here (no EOI) is not an error; a fatal
     * error still jumps out. */
    (void)jpeg_finish_decompress(&cinfo);

done:
    jpeg_destroy_decompress(&cinfo);
    return status;
}
