/* ask: one question about one image, the answer streamed to standard output.
 *
 *   ./ask MODEL_DIR IMAGE "QUESTION" [MAX_NEW_TOKENS]
 *
 * Uses upstream's eval settings: pre-resize to a long side of 1024, at most 9 slices, greedy
 * decoding. Timings go to standard error. */
#include <llavauhd.h>
#include <stdio.h>
#include <stdlib.h>

/* Each piece is a run of whole UTF-8 characters: print it as it comes. */
static bool print_piece(const char *piece, size_t length, void *user_data) {
    (void)user_data;
    fwrite(piece, 1, length, stdout);
    fflush(stdout);
    return true; /* false would stop the answer here */
}

static int fail(const char *what, luhd_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, luhd_status_string(st), luhd_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE \"QUESTION\" [MAX_NEW_TOKENS]\n", argv[0]);
        return 2;
    }
    if (luhd_abi_version() != LUHD_ABI_VERSION) {
        fprintf(stderr, "libllavauhd ABI %u, header ABI %d\n", luhd_abi_version(), LUHD_ABI_VERSION);
        return 1;
    }
    luhd_model *model = NULL;
    luhd_status st = luhd_model_load(argv[1], NULL, &model);
    if (st != LUHD_OK) return fail(argv[1], st);
    luhd_image *image = NULL;
    st = luhd_image_load_file(argv[2], NULL, &image);
    if (st != LUHD_OK) {
        luhd_model_free(model);
        return fail(argv[2], st);
    }

    luhd_session *session = NULL;
    st = luhd_session_create(model, NULL, &session);
    if (st == LUHD_OK) {
        luhd_sampling_params sampling = luhd_sampling_default_params();
        if (argc > 4) sampling.max_new_tokens = atoi(argv[4]);
        luhd_chat_stats stats = {.struct_size = sizeof stats};
        const luhd_image *images[1] = {image};
        st = luhd_session_chat(session, argv[3], -1, images, 1, &sampling, print_piece, NULL, NULL, NULL, &stats);
        putchar('\n');
        if (st == LUHD_OK) {
            fprintf(stderr, "%d prompt positions, %d tokens; image %.2f s, prefill %.2f s, decode %.2f s\n",
                    stats.n_prompt_positions, stats.n_generated, stats.image_seconds, stats.prefill_seconds,
                    stats.decode_seconds);
        }
    }
    int rc = st == LUHD_OK ? 0 : fail("chat", st);
    luhd_session_free(session);
    luhd_image_free(image);
    luhd_model_free(model);
    return rc;
}
