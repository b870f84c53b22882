/* expect_status: load a model directory (and optionally an image) and check the status.
 * Used by the tests to run the malformed-input corpus through the C ABI.
 *
 *   ./expect_status model DIR EXPECTED_STATUS_NAME [MESSAGE_SUBSTRING]
 *   ./expect_status image FILE EXPECTED_STATUS_NAME [MESSAGE_SUBSTRING]
 *
 * EXPECTED_STATUS_NAME is a luhd_status_string() text such as "malformed weight file", or "ok".
 * Exits 0 when the status (and message substring) match, 1 otherwise. */
#include <llavauhd.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s model|image PATH STATUS_NAME [MESSAGE_SUBSTRING]\n", argv[0]);
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
