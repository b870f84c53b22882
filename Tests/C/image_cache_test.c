/* The model-level image cache through the C ABI (luhd_model_params.image_cache_bytes): a
 * second session asking about the same image takes it from the model (n_images_cached 1,
 * n_images_encoded 0, no image seconds) and answers exactly as the first; image_cache_bytes 0
 * turns the shared cache off; a negative value is refused; a caller built against the struct
 * without the field (a smaller struct_size) gets the default (the cache on); a session with
 * image_cache_size 0 neither reads nor fills it.
 *
 * Usage: image_cache_test MODEL_DIR IMAGE */
#include <llavauhd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    luhd_last_error());                                                        \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* One question about `image` in a new session of `model`; returns the answer (free it). */
static char *ask(const luhd_model *model, const luhd_image *image, int32_t session_cache, luhd_chat_stats *stats) {
    luhd_session_params sp = luhd_session_default_params();
    sp.image_cache_size = session_cache;
    sp.preresize_long_side = 0;
    luhd_session *s = NULL;
    CHECK(luhd_session_create(model, &sp, &s) == LUHD_OK);
    if (!s) return NULL;
    luhd_sampling_params sampling = luhd_sampling_default_params();
    sampling.max_new_tokens = 6;
    const luhd_image *images[1] = {image};
    char *out = NULL;
    stats->struct_size = sizeof *stats;
    CHECK(luhd_session_chat(s, "What animal is this?", -1, images, 1, &sampling, NULL, NULL, &out, NULL, stats) == LUHD_OK);
    luhd_session_free(s);
    return out;
}

static luhd_model *load(const char *dir, const luhd_model_params *p) {
    luhd_model *m = NULL;
    CHECK(luhd_model_load(dir, p, &m) == LUHD_OK);
    return m;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE\n", argv[0]);
        return 2;
    }
    luhd_image *image = NULL;
    if (luhd_image_load_file(argv[2], NULL, &image) != LUHD_OK) {
        fprintf(stderr, "%s\n", luhd_last_error());
        return 1;
    }
    luhd_model_params p = luhd_model_default_params();
    CHECK(p.image_cache_bytes == 268435456);
    luhd_chat_stats st;

    /* Shared by default: the second session skips the vision stage, with the same answer. */
    luhd_model *m = load(argv[1], &p);
    char *first = ask(m, image, 4, &st);
    CHECK(st.n_images_encoded == 1 && st.n_images_cached == 0 && st.image_seconds > 0);
    char *second = ask(m, image, 4, &st);
    CHECK(st.n_images_encoded == 0 && st.n_images_cached == 1 && st.image_seconds == 0);
    CHECK(first && second && strcmp(first, second) == 0);
    char *uncached = ask(m, image, 0, &st);
    CHECK(st.n_images_encoded == 1 && st.n_images_cached == 0);
    CHECK(uncached && first && strcmp(uncached, first) == 0);
    luhd_string_free(second);
    luhd_string_free(uncached);
    luhd_model_free(m);

    /* Off: every session encodes. */
    p.image_cache_bytes = 0;
    m = load(argv[1], &p);
    for (int i = 0; i < 2; i++) {
        char *a = ask(m, image, 4, &st);
        CHECK(st.n_images_encoded == 1 && st.n_images_cached == 0);
        CHECK(a && first && strcmp(a, first) == 0);
        luhd_string_free(a);
    }
    luhd_model_free(m);

    /* Negative: refused. */
    p.image_cache_bytes = -1;
    luhd_model *bad = NULL;
    CHECK(luhd_model_load(argv[1], &p, &bad) == LUHD_ERR_INVALID_ARGUMENT && bad == NULL);
    CHECK(strstr(luhd_last_error(), "image_cache_bytes") != NULL);

    /* An older caller's struct, without the field: the default, so the cache is on. */
    p = luhd_model_default_params();
    p.image_cache_bytes = -1;  /* beyond the older struct_size: never read */
    p.struct_size = offsetof(luhd_model_params, image_cache_bytes);
    m = load(argv[1], &p);
    luhd_string_free(ask(m, image, 4, &st));
    luhd_string_free(ask(m, image, 4, &st));
    CHECK(st.n_images_cached == 1 && st.n_images_encoded == 0);
    luhd_model_free(m);

    luhd_string_free(first);
    luhd_image_free(image);
    if (failures) {
        fprintf(stderr, "image_cache_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("image_cache_test: all checks passed\n");
    return 0;
}
