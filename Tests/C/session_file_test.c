/* Saved sessions and the model's prefix cache through the C ABI (issue 14 items 2 and 3):
 *  - luhd_session_save then luhd_session_load: the loaded session has the saving one's logits
 *    and answers the next question with the same text and reuse counts as an uninterrupted
 *    session; a kv_type change converts;
 *  - damaged, truncated, foreign-model, version-mismatched and lying files each end in their
 *    status with a message (lying files are resealed with valid CRC-32C checksums here, so the
 *    checks behind the checksums are reached); a small n_ctx is LUHD_ERR_CONTEXT_FULL;
 *  - luhd_model_params.prefix_cache_bytes: a second session with the same image reuses the
 *    first one's rows and answers as a session of a model without the cache.
 *
 * Usage: session_file_test MODEL_DIR OTHER_MODEL_DIR IMAGE (scratch files under $TMPDIR or /tmp) */
#define _POSIX_C_SOURCE 200809L
#include <llavauhd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond,   \
                    luhd_last_error());                                                                 \
            failures++;                                                                                 \
        }                                                                                               \
    } while (0)

static const char *first_question = "What animal is this?";
static const char *second_question = "And what colour is it?";

/* CRC-32C, bit by bit: an independent implementation of the file's checksum. */
static uint32_t crc32c(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the three checksums (state, KV, header) so that they match the bytes. */
static void reseal(unsigned char *b, size_t n) {
    uint64_t state = get64(b + 72);
    if (n < 96 || state > n - 96) return;
    put32(b + 80, crc32c(b + 96, (size_t)state));
    put32(b + 84, crc32c(b + 96 + state, n - 96 - (size_t)state));
    put32(b + 92, crc32c(b, 92));
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void write_file(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (n) fwrite(b, 1, n, f);
    fclose(f);
}

static luhd_session_params session_params(luhd_kv_type type) {
    luhd_session_params p = luhd_session_default_params();
    p.preresize_long_side = 0;
    p.kv_type = type;
    return p;
}

/* Asks `question` (with `image` when not NULL); returns the answer (free it) and fills stats. */
static char *ask(luhd_session *s, const char *question, const luhd_image *image, luhd_chat_stats *stats) {
    luhd_sampling_params sampling = luhd_sampling_default_params();
    sampling.max_new_tokens = 6;
    const luhd_image *images[1] = {image};
    char *out = NULL;
    stats->struct_size = sizeof *stats;
    CHECK(luhd_session_chat(s, question, -1, images, image ? 1 : 0, &sampling, NULL, NULL, &out, NULL, stats) == LUHD_OK);
    return out;
}

/* The status of loading `bytes` (written to `path`), resealed first when asked. */
static luhd_status load_status(const luhd_model *m, const char *path, const unsigned char *good, size_t n,
                               size_t offset, int value, int seal) {
    unsigned char *b = malloc(n + 1);
    memcpy(b, good, n);
    if (value >= 0 && offset < n) b[offset] = (unsigned char)value;
    if (seal) reseal(b, n);
    write_file(path, b, n);
    free(b);
    luhd_session_params p = session_params(LUHD_KV_F16);
    luhd_session *s = NULL;
    luhd_status st = luhd_session_load(m, path, &p, &s);
    CHECK((st == LUHD_OK) == (s != NULL));
    if (st != LUHD_OK) CHECK(luhd_last_error()[0] != '\0');
    luhd_session_free(s);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_DIR OTHER_MODEL_DIR IMAGE\n", argv[0]);
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    char template_path[4096];
    snprintf(template_path, sizeof template_path, "%s/luhd-session-XXXXXX", tmp ? tmp : "/tmp");
    char *made = mkdtemp(template_path);
    if (!made) {
        perror("mkdtemp");
        return 1;
    }
    char path[4200], scratch[4200];
    snprintf(path, sizeof path, "%s/chat.luhds", made);
    snprintf(scratch, sizeof scratch, "%s/case.luhds", made);

    luhd_image *image = NULL;
    if (luhd_image_load_file(argv[3], NULL, &image) != LUHD_OK) {
        fprintf(stderr, "%s\n", luhd_last_error());
        return 1;
    }
    luhd_model_params mp = luhd_model_default_params();
    CHECK(mp.prefix_cache_bytes == 0);
    mp.prefix_cache_bytes = -1;
    luhd_model *m = NULL;
    CHECK(luhd_model_load(argv[1], &mp, &m) == LUHD_ERR_INVALID_ARGUMENT && m == NULL);
    mp.prefix_cache_bytes = 0;  /* the default: the round trip alone, without rows shared between sessions */
    CHECK(luhd_model_load(argv[1], &mp, &m) == LUHD_OK);
    if (!m) return 1;

    /* Round trip: save after one turn; the loaded session continues as the saving one. */
    luhd_session_params p = session_params(LUHD_KV_F16);
    luhd_session *a = NULL;
    CHECK(luhd_session_create(m, &p, &a) == LUHD_OK);
    luhd_chat_stats st_a, st_b;
    free(ask(a, first_question, image, &st_a));
    CHECK(luhd_session_save(a, path) == LUHD_OK);
    const float *la = NULL, *lb = NULL;
    int32_t na = 0, nb = 0, used_a = 0, used_b = 0;
    CHECK(luhd_session_logits(a, &la, &na) == LUHD_OK);
    float *saved_logits = malloc(sizeof(float) * (size_t)na);
    memcpy(saved_logits, la, sizeof(float) * (size_t)na);
    CHECK(luhd_session_context(a, &used_a, NULL) == LUHD_OK);

    luhd_session *b = NULL;
    CHECK(luhd_session_load(m, path, &p, &b) == LUHD_OK);
    CHECK(luhd_session_context(b, &used_b, NULL) == LUHD_OK && used_b == used_a);
    CHECK(luhd_session_logits(b, &lb, &nb) == LUHD_OK && nb == na);
    CHECK(lb && memcmp(lb, saved_logits, sizeof(float) * (size_t)na) == 0);
    char *answer_a = ask(a, second_question, NULL, &st_a);
    char *answer_b = ask(b, second_question, NULL, &st_b);
    CHECK(answer_a && answer_b && strcmp(answer_a, answer_b) == 0);
    CHECK(st_b.n_reused_positions == st_a.n_reused_positions && st_b.n_reused_positions > 0);
    CHECK(st_b.n_images_encoded == 0);
    printf("round trip: %d positions restored; answers \"%s\" and \"%s\"\n", used_b, answer_a ? answer_a : "",
           answer_b ? answer_b : "");
    free(answer_a);
    free(answer_b);
    luhd_session_free(b);

    /* Another kv_type converts; the session answers. */
    luhd_session_params wide = session_params(LUHD_KV_F32);
    CHECK(luhd_session_load(m, path, &wide, &b) == LUHD_OK);
    free(ask(b, second_question, NULL, &st_b));
    luhd_session_free(b);

    /* Arguments and context. */
    b = NULL;
    CHECK(luhd_session_save(NULL, path) == LUHD_ERR_INVALID_ARGUMENT);
    CHECK(luhd_session_save(a, NULL) == LUHD_ERR_INVALID_ARGUMENT);
    CHECK(luhd_session_load(NULL, path, &p, &b) == LUHD_ERR_INVALID_ARGUMENT && b == NULL);
    CHECK(luhd_session_load(m, NULL, &p, &b) == LUHD_ERR_INVALID_ARGUMENT && b == NULL);
    CHECK(luhd_session_load(m, path, &p, NULL) == LUHD_ERR_INVALID_ARGUMENT);
    luhd_session_params small = session_params(LUHD_KV_F16);
    small.n_ctx = 8;
    CHECK(luhd_session_load(m, path, &small, &b) == LUHD_ERR_CONTEXT_FULL && b == NULL);
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/missing.luhds", made);
    CHECK(luhd_session_load(m, missing, &p, &b) == LUHD_ERR_IO && b == NULL);
    char nodir[4300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.luhds", made);
    CHECK(luhd_session_save(a, nodir) == LUHD_ERR_IO);
    luhd_session_free(a);

    /* Damaged, truncated, foreign-version and lying files. */
    size_t n = 0;
    unsigned char *good = read_file(path, &n);
    CHECK(good && n > 200);
    if (good) {
        uint64_t state = get64(good + 72);
        CHECK(load_status(m, scratch, good, n, 0, -1, 0) == LUHD_OK);
        CHECK(load_status(m, scratch, good, 0, 0, -1, 0) == LUHD_ERR_BAD_SESSION_FILE);        /* empty */
        CHECK(load_status(m, scratch, good, n - 1, 0, -1, 0) == LUHD_ERR_BAD_SESSION_FILE);    /* truncated */
        CHECK(load_status(m, scratch, good, n / 2, 0, -1, 0) == LUHD_ERR_BAD_SESSION_FILE);
        CHECK(load_status(m, scratch, good, 60, 0, -1, 0) == LUHD_ERR_BAD_SESSION_FILE);       /* part of a header */
        CHECK(load_status(m, scratch, good, n, 0, 'X', 0) == LUHD_ERR_BAD_SESSION_FILE);       /* magic */
        CHECK(load_status(m, scratch, good, n, n - 5, good[n - 5] ^ 1, 0) == LUHD_ERR_BAD_SESSION_FILE); /* KV bit */
        CHECK(load_status(m, scratch, good, n, 100, good[100] ^ 1, 0) == LUHD_ERR_BAD_SESSION_FILE);     /* state bit */
        CHECK(load_status(m, scratch, good, n, 8, 2, 1) == LUHD_ERR_BAD_SESSION_FILE);         /* format version 2 */
        CHECK(load_status(m, scratch, good, n, 16, good[16] ^ 1, 1) == LUHD_ERR_SESSION_MISMATCH); /* digest */
        CHECK(load_status(m, scratch, good, n, 64, good[64] + 1, 1) == LUHD_ERR_BAD_SESSION_FILE); /* positions */
        CHECK(load_status(m, scratch, good, n, 72, good[72] ^ 8, 1) == LUHD_ERR_BAD_SESSION_FILE); /* state size */
        CHECK(load_status(m, scratch, good, n, 52, good[52] + 1, 1) == LUHD_ERR_BAD_SESSION_FILE); /* layers */
        /* State bytes flipped and resealed (the first 160, where the sizes and counts are, then
         * every 1009th): each loads or is refused. */
        for (size_t off = 96; off < 96 + state; off += off < 256 ? 1 : 1009) {
            luhd_status s = load_status(m, scratch, good, n, off, good[off] ^ 0xFF, 1);
            CHECK(s == LUHD_OK || s == LUHD_ERR_BAD_SESSION_FILE);
        }
        /* Another model: a sound file that is not its own. */
        luhd_model *other = NULL;
        CHECK(luhd_model_load(argv[2], NULL, &other) == LUHD_OK);
        if (other) {
            luhd_session *s = NULL;
            CHECK(luhd_session_load(other, path, NULL, &s) == LUHD_ERR_SESSION_MISMATCH && s == NULL);
            luhd_model_free(other);
        }
        free(good);
    }
    unlink(scratch);
    unlink(path);
    rmdir(made);

    /* The prefix cache: the second session reuses the first one's rows and answers as a
     * session of the model without the cache. */
    luhd_model *shared = NULL;
    luhd_model_params sp = luhd_model_default_params();
    sp.prefix_cache_bytes = 512 << 20;
    CHECK(luhd_model_load(argv[1], &sp, &shared) == LUHD_OK);
    if (shared) {
        luhd_session *x = NULL, *y = NULL, *z = NULL;
        CHECK(luhd_session_create(shared, &p, &x) == LUHD_OK);
        free(ask(x, first_question, image, &st_a));
        CHECK(st_a.n_reused_positions == 0);
        CHECK(luhd_session_create(shared, &p, &y) == LUHD_OK);
        char *reused = ask(y, second_question, image, &st_b);
        CHECK(st_b.n_reused_positions >= 144);
        CHECK(luhd_session_create(m, &p, &z) == LUHD_OK);
        luhd_chat_stats st_z;
        char *plain = ask(z, second_question, image, &st_z);
        CHECK(st_z.n_reused_positions == 0);
        CHECK(reused && plain && strcmp(reused, plain) == 0);
        printf("prefix cache: %d of %d positions reused; answer \"%s\"\n", st_b.n_reused_positions,
               st_b.n_prompt_positions, reused ? reused : "");
        free(reused);
        free(plain);
        luhd_session_free(x);
        luhd_session_free(y);
        luhd_session_free(z);
        luhd_model_free(shared);
    }
    free(saved_logits);
    luhd_model_free(m);
    luhd_image_free(image);
    if (failures) {
        fprintf(stderr, "session_file_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("session_file_test: all checks passed\n");
    return 0;
}
