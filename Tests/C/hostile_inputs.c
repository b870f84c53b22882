/* Hostile inputs through the C ABI (issue 12): each call ends in its documented status, with a
 * message in luhd_last_error(), and never takes the process down.
 *
 *   hostile_inputs REPO ASSETS
 *
 * REPO is the repository (for Tests/Fixtures), ASSETS the test assets (for the tiny models).
 * Prints one line per case and exits 0 when every case behaved. */
#include <llavauhd.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect(const char *what, luhd_status got, luhd_status want) {
    int ok = got == want && (want == LUHD_OK || luhd_last_error()[0] != 0);
    printf("%s %s: %s (%s)\n", ok ? "ok  " : "FAIL", what, luhd_status_string(got),
           got == LUHD_OK ? "" : luhd_last_error());
    if (!ok) failures++;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

static size_t put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return 4;
}

static size_t put_chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t n) {
    size_t at = put_be32(out, n);
    memcpy(out + at, type, 4);
    if (n) memcpy(out + at + 4, data, n);
    at += 4 + n;
    return at + put_be32(out + at, crc32_of(out + 4, 4 + n));
}

/* A PNG declaring width x height 8-bit RGB over a few bytes of image data. */
static size_t huge_png(uint8_t *out, uint32_t width, uint32_t height) {
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    static const uint8_t idat[] = {0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t ihdr[13] = {0};
    put_be32(ihdr, width);
    put_be32(ihdr + 4, height);
    ihdr[8] = 8, ihdr[9] = 2;
    memcpy(out, signature, 8);
    size_t at = 8;
    at += put_chunk(out + at, "IHDR", ihdr, sizeof ihdr);
    at += put_chunk(out + at, "IDAT", idat, sizeof idat);
    at += put_chunk(out + at, "IEND", NULL, 0);
    return at;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s REPO ASSETS\n", argv[0]);
        return 2;
    }
    char path[4096];
    uint8_t png[128];
    luhd_image *image = NULL;

    /* 2147483647 x 1073741824 RGB: 6.9e18 bytes, with the pixel limit raised to the maximum. */
    luhd_image_load_params params = luhd_image_load_default_params();
    params.max_pixels = INT64_MAX;
    size_t n = huge_png(png, 2147483647u, 1073741824u);
    expect("unaddressable PNG", luhd_image_load_memory(png, n, &params, &image), LUHD_ERR_OUT_OF_MEMORY);

    snprintf(path, sizeof path, "%s/models/small-noslice", argv[2]);
    luhd_model *model = NULL;
    luhd_status status = luhd_model_load(path, NULL, &model);
    expect("load small-noslice", status, LUHD_OK);
    if (status != LUHD_OK) return 1;

    /* A 1x1 image pre-resized to a long side of 32768 (a 3.2 GB intermediate). */
    const uint8_t pixel[3] = {10, 20, 30};
    luhd_image *tiny = NULL;
    expect("1x1 image", luhd_image_from_rgb(pixel, 1, 1, 0, &tiny), LUHD_OK);
    luhd_slice_params options = luhd_slice_default_params();
    options.preresize_long_side = 32768;
    luhd_slice_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.struct_size = sizeof plan;
    expect("pre-resize 1x1 to 32768", luhd_image_get_slice_plan(model, tiny, &options, &plan), LUHD_ERR_IMAGE_TOO_LARGE);

    /* 20 images in a 256-position context: refused before any image is encoded. */
    snprintf(path, sizeof path, "%s/Tests/Fixtures/upstream/small-noslice/input.png", argv[1]);
    luhd_image *photo = NULL;
    expect("photo", luhd_image_load_file(path, NULL, &photo), LUHD_OK);
    luhd_session_params session_params = luhd_session_default_params();
    session_params.n_ctx = 256;
    session_params.system_prompt = "Never write <image>.";
    luhd_session *session = NULL;
    expect("session", luhd_session_create(model, &session_params, &session), LUHD_OK);
    if (photo && session) {
        luhd_token tokens[22];
        const luhd_image *images[20];
        tokens[0] = 1, tokens[21] = 2;
        for (int i = 0; i < 20; i++) tokens[1 + i] = LUHD_IMAGE_TOKEN, images[i] = photo;
        expect("eval 20 images in 256 positions", luhd_session_eval(session, tokens, 22, images, 20),
               LUHD_ERR_CONTEXT_FULL);
        int32_t used = -1, total = 0;
        luhd_session_context(session, &used, &total);
        if (used != 0) printf("FAIL context used after a refused eval: %d\n", used), failures++;

        /* "<image>" in the system prompt and in a message without images is text. */
        luhd_sampling_params sampling = luhd_sampling_default_params();
        sampling.max_new_tokens = 2;
        expect("chat with <image> in the system prompt",
               luhd_session_chat(session, "Hello", -1, NULL, 0, &sampling, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
        expect("chat with <image> as text",
               luhd_session_chat(session, "What is <image>?", -1, NULL, 0, &sampling, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
        /* Tiny positive temperature: greedy-equivalent, not an error. */
        sampling.temperature = 1e-38f;
        expect("temperature 1e-38",
               luhd_session_chat(session, "Again", -1, NULL, 0, &sampling, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
    }
    luhd_session_free(session);
    luhd_image_free(photo);
    luhd_image_free(tiny);
    luhd_model_free(model);
    printf("%s\n", failures ? "hostile_inputs: FAILED" : "hostile_inputs: all cases behaved");
    return failures ? 1 : 0;
}
