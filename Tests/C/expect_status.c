/* expect_status: load a model directory (and optionally an image) and check the status.
 * Used by the tests to run the malformed-input corpora through the C ABI (also under
 * AddressSanitizer, scripts/dev/asan.sh).
 *
 *   ./expect_status model DIR EXPECTED_STATUS_NAME [MESSAGE_SUBSTRING]
 *   ./expect_status image FILE EXPECTED_STATUS_NAME [MESSAGE_SUBSTRING]
 *   ./expect_status prefixes FILE
 *
 * EXPECTED_STATUS_NAME is a luhd_status_string() text such as "malformed weight file", or "ok".
 * Exits 0 when the status (and message substring) match, 1 otherwise. `prefixes` decodes every
 * prefix of FILE from memory (bytes 0..n for every n) and fails if one gives a status other
 * than "ok", "bad image" or "image too large". */
#include <llavauhd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int decode_prefixes(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
    size_t got = fread(data, 1, (size_t)size, f);
    fclose(f);
    int failed = 0, decoded = 0;
    for (size_t n = 0; n <= got; n++) {
        /* An exact-size copy, so that a read past the prefix is a heap overflow under ASan. */
        unsigned char *prefix = malloc(n ? n : 1);
        memcpy(prefix, data, n);
        luhd_image *image = NULL;
        luhd_status st = luhd_image_load_memory(prefix, n, NULL, &image);
        if (st == LUHD_OK) decoded++;
        else if (st != LUHD_ERR_BAD_IMAGE && st != LUHD_ERR_IMAGE_TOO_LARGE) {
            fprintf(stderr, "%s: prefix of %zu bytes: %s: %s\n", path, n, luhd_status_string(st), luhd_last_error());
            failed = 1;
        }
        luhd_image_free(image);
        free(prefix);
    }
    free(data);
    printf("%s: %zu prefixes, %d decoded\n", path, got + 1, decoded);
    return failed;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "prefixes") == 0) return decode_prefixes(argv[2]);
    if (argc < 4) {
        fprintf(stderr, "usage: %s model|image PATH STATUS_NAME [MESSAGE_SUBSTRING]\n       %s prefixes FILE\n",
                argv[0], argv[0]);
        return 2;
    }
    luhd_status st;
    if (strcmp(argv[1], "model") == 0) {
        luhd_model *model = NULL;
        st = luhd_model_load(argv[2], NULL, &model);
        if (st == LUHD_OK && model == NULL) { fprintf(stderr, "OK without a model\n"); return 1; }
        if (st != LUHD_OK && model != NULL) { fprintf(stderr, "failure wrote a model\n"); return 1; }
        luhd_model_free(model);
    } else {
        luhd_image *image = NULL;
        st = luhd_image_load_file(argv[2], NULL, &image);
        luhd_image_free(image);
    }
    const char *name = luhd_status_string(st);
    const char *message = st == LUHD_OK ? "" : luhd_last_error();
    if (strcmp(name, argv[3]) != 0) {
        fprintf(stderr, "%s: expected \"%s\", got \"%s\": %s\n", argv[2], argv[3], name, message);
        return 1;
    }
    if (argc > 4 && strstr(message, argv[4]) == NULL) {
        fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", argv[2], message, argv[4]);
        return 1;
    }
    return 0;
}
