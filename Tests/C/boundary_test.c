/* boundary_test: what a careless or hostile C caller can do at the interface ends in a documented
 * status (issue 12's boundary classes): sizes above PTRDIFF_MAX, enum and count fields out of
 * range, text with NUL bytes given with a length, calls that overlap on one session (from a
 * callback of the running call, and from another thread), freeing a session from its own
 * callback, luhd_log_set from inside a log callback and while other threads log, and the logits
 * after a chat. The model parameters added since (chat_template, image_cache_bytes,
 * prefix_cache_bytes, max_decode_batch) at the ends of their ranges and beyond. The races run on real threads for a bounded number of rounds.
 *
 *   ./boundary_test ASSETS_DIR
 *
 * Prints one line per failed check and exits 1 if any failed. */
#define _DEFAULT_SOURCE
#include <llavauhd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_checks, n_failed;

#define CHECK(cond) check((cond), #cond, __LINE__)
#define EXPECT_STATUS(call, want) expect_status((call), (want), #call, __LINE__)

static void check(int ok, const char *what, int line) {
    n_checks++;
    if (!ok) {
        n_failed++;
        fprintf(stderr, "boundary_test.c:%d: check failed: %s\n", line, what);
    }
}

static void expect_status(luhd_status got, luhd_status want, const char *call, int line) {
    n_checks++;
    if (got != want) {
        n_failed++;
        fprintf(stderr, "boundary_test.c:%d: %s\n    returned %s (%d), expected %s (%d); last error: %s\n", line,
                call, luhd_status_string(got), (int)got, luhd_status_string(want), (int)want, luhd_last_error());
    }
}

/* The last error names the offending value. */
static void expect_named(const char *name, int line) {
    n_checks++;
    if (!strstr(luhd_last_error(), name)) {
        n_failed++;
        fprintf(stderr, "boundary_test.c:%d: last error does not name %s: %s\n", line, name, luhd_last_error());
    }
}
#define EXPECT_NAMED(name) expect_named((name), __LINE__)

static luhd_sampling_params sampling(int32_t max_new_tokens) {
    luhd_sampling_params sp = luhd_sampling_default_params();
    sp.max_new_tokens = max_new_tokens;
    return sp;
}

/* A session of n_ctx positions with the other parameters at their defaults; NULL (and a failed
 * check) when it cannot be made. */
static luhd_session *new_session(luhd_model *m, int32_t n_ctx) {
    luhd_session_params p = luhd_session_default_params();
    p.n_ctx = n_ctx;
    luhd_session *s = NULL;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_OK);
    return s;
}

/* ------------------------------------------------------------------------------------------- */

static void test_numbers(luhd_model *m, const char *model_dir) {
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    luhd_image *img = NULL;
    /* SIZE_MAX would become -1 as a signed length. */
    EXPECT_STATUS(luhd_image_load_memory(png_magic, SIZE_MAX, NULL, &img), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("size");
    EXPECT_STATUS(luhd_image_load_memory(png_magic, (size_t)PTRDIFF_MAX + 1, NULL, &img), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(img == NULL);
    unsigned char rgb[48] = {0};
    EXPECT_STATUS(luhd_image_from_rgb(rgb, 4, 4, SIZE_MAX, &img), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("stride");
    luhd_image_load_params ip = luhd_image_load_default_params();
    ip.max_pixels = -5;
    EXPECT_STATUS(luhd_image_load_memory(png_magic, sizeof png_magic, &ip, &img), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("max_pixels");

    luhd_token ids[2] = {1, 2};
    char buf[8];
    size_t n = 0;
    EXPECT_STATUS(luhd_model_detokenize(m, ids, 2, true, buf, SIZE_MAX, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("buf_size");
    EXPECT_STATUS(luhd_model_token_to_piece(m, 13, false, buf, SIZE_MAX, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("buf_size");

    luhd_model_params mp = luhd_model_default_params();
    luhd_model *other = NULL;
    mp.precision = (luhd_precision)7;
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("precision");
    mp = luhd_model_default_params();
    mp.n_threads = 100000;
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("n_threads");
    mp = luhd_model_default_params();
    CHECK(mp.chat_template == NULL);
    mp.chat_template = "jinja";
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("chat_template");
    CHECK(strstr(luhd_last_error(), "chatml") != NULL); /* the valid names are listed */
    mp.chat_template = "\xff";
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_UTF8);
    CHECK(other == NULL);
    /* A name is ignored by a LLaVA-UHD model, whose template config.json fixes. */
    mp.chat_template = "llama3";
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_OK);
    luhd_model_properties props = {.struct_size = sizeof props};
    EXPECT_STATUS(luhd_model_get_properties(other, &props), LUHD_OK);
    CHECK(strcmp(props.chat_template, "llama3") != 0);
    luhd_model_free(other);
    other = NULL;
    /* Empty and very long template names. */
    mp.chat_template = "";
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("chat_template");
    char *long_name = malloc(1 << 20);
    if (long_name) {
        memset(long_name, 'x', (1 << 20) - 1);
        long_name[(1 << 20) - 1] = '\0';
        mp.chat_template = long_name;
        EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_NAMED("chat_template");
        free(long_name);
    }
    CHECK(other == NULL);
    /* The cache bounds at the ends of their range: INT64_MAX is "no bound" and works; negative
     * values and batch sizes outside 1...64 are refused, naming the field. */
    mp = luhd_model_default_params();
    mp.image_cache_bytes = INT64_MAX;
    mp.prefix_cache_bytes = INT64_MAX;
    mp.max_decode_batch = 64;
    EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_OK);
    if (other) {
        luhd_session *twice[2] = {NULL, NULL};
        for (int i = 0; i < 2; i++) {
            twice[i] = new_session(other, 256);
            luhd_sampling_params two = sampling(2);
            if (twice[i]) EXPECT_STATUS(luhd_session_chat(twice[i], "Hello there", -1, NULL, 0, &two, NULL, NULL, NULL,
                                                          NULL, NULL), LUHD_OK);
        }
        luhd_session_free(twice[0]);
        luhd_session_free(twice[1]);
        luhd_model_free(other);
        other = NULL;
    }
    const int64_t bad_bytes[] = {-1, INT64_MIN};
    for (int i = 0; i < 2; i++) {
        mp = luhd_model_default_params();
        mp.image_cache_bytes = bad_bytes[i];
        EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_NAMED("image_cache_bytes");
        mp = luhd_model_default_params();
        mp.prefix_cache_bytes = bad_bytes[i];
        EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_NAMED("prefix_cache_bytes");
    }
    const int32_t bad_batch[] = {INT32_MIN, -1, 0, 65, INT32_MAX};
    for (int i = 0; i < 5; i++) {
        mp = luhd_model_default_params();
        mp.max_decode_batch = bad_batch[i];
        EXPECT_STATUS(luhd_model_load(model_dir, &mp, &other), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_NAMED("max_decode_batch");
    }
    CHECK(other == NULL);

    luhd_session_params p = luhd_session_default_params();
    luhd_session *s = NULL;
    p.n_ctx = INT32_MAX;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("n_ctx");
    p = luhd_session_default_params();
    p.preresize_long_side = INT32_MAX;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("preresize_long_side");
    p = luhd_session_default_params();
    p.max_slices = -3;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("max_slices");
    p = luhd_session_default_params();
    memcpy(&p.kv_type, &(int32_t){7}, sizeof(int32_t)); /* not a luhd_kv_type value */
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("kv_type");
    CHECK(s == NULL);

    s = new_session(m, 256);
    if (!s) return;
    luhd_sampling_params sp = sampling(-1);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL),
                  LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("max_new_tokens");
    sp = sampling(2);
    sp.n_stop_strings = -1;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL),
                  LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("n_stop_strings");
    sp = sampling(2);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -2, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL),
                  LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_NAMED("text");
    luhd_session_free(s);
}

/* Text given with a length keeps its NUL bytes: tokenizing "a\0b" gives more ids than "a", and a
 * chat turn with a NUL inside its text is accepted as it is. */
static void test_text_with_nul(luhd_model *m) {
    luhd_token ids[32];
    int32_t with_nul = 0, cut = 0;
    EXPECT_STATUS(luhd_model_tokenize(m, "a\0b", 3, false, false, ids, 32, &with_nul), LUHD_OK);
    EXPECT_STATUS(luhd_model_tokenize(m, "a\0b", -1, false, false, ids, 32, &cut), LUHD_OK);
    CHECK(with_nul > cut);

    luhd_session *s = new_session(m, 256);
    if (!s) return;
    luhd_sampling_params sp = sampling(3);
    luhd_chat_stats a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
    EXPECT_STATUS(luhd_session_chat(s, "Hi\0 there", 9, NULL, 0, &sp, NULL, NULL, NULL, NULL, &a), LUHD_OK);
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &b), LUHD_OK);
    CHECK(a.n_prompt_positions > b.n_prompt_positions); /* the text after the NUL was not cut */

    /* out_text_length is the answer's length; the returned text is NUL-terminated too. */
    char *answer = NULL;
    size_t length = 12345;
    EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &sp, NULL, NULL, &answer, &length, NULL), LUHD_OK);
    CHECK(answer != NULL && length != 12345 && answer[length] == '\0');
    luhd_string_free(answer);
    luhd_session_free(s);
}

/* After a chat, luhd_session_logits gives the logits of the last evaluated position. With
 * max_new_tokens 1 the one answer token is chosen from the prompt's logits and not evaluated, so
 * those are the logits returned, and the greedy choice from them is the answer's token. */
static void test_logits_after_chat(luhd_model *m) {
    luhd_session *s = new_session(m, 256);
    if (!s) return;
    const float *logits = NULL;
    int32_t n_vocab = 0;
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_ERR_INVALID_ARGUMENT); /* nothing yet */
    luhd_sampling_params sp = sampling(1);
    luhd_chat_stats st = {.struct_size = sizeof st};
    EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_OK);
    CHECK(logits != NULL && n_vocab == 32000);
    luhd_token greedy = -1;
    EXPECT_STATUS(luhd_session_sample(s, NULL, &greedy), LUHD_OK);
    if (logits && n_vocab > 0) {
        int32_t best = 0;
        for (int32_t i = 1; i < n_vocab; i++)
            if (logits[i] > logits[best]) best = i;
        CHECK(greedy == best);
    }
    /* A longer answer: the logits are those after its last evaluated token; eval continues. */
    sp = sampling(4);
    EXPECT_STATUS(luhd_session_chat(s, "Again", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_OK);
    luhd_session_free(s);
}

/* ------------------------------------------------------------------------------------------- */
/* Calls that overlap on one session */

typedef struct {
    luhd_session *session;
    luhd_status nested_chat, nested_context, nested_reset, cancel;
    int pieces;
    int free_in_callback;
} reentry_state;

static bool reenter(const char *piece, size_t length, void *user_data) {
    (void)piece;
    (void)length;
    reentry_state *r = user_data;
    if (r->pieces++ > 0) return true;
    luhd_sampling_params sp = sampling(1);
    int32_t used = 0;
    r->nested_chat = luhd_session_chat(r->session, "Nested", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL);
    r->nested_context = luhd_session_context(r->session, &used, NULL);
    r->nested_reset = luhd_session_reset(r->session);
    if (r->free_in_callback) {
        luhd_session_free(r->session); /* cancels; the memory goes when the chat returns */
    } else {
        r->cancel = luhd_session_cancel(r->session);
    }
    return true;
}

static void test_reentry_from_callbacks(luhd_model *m) {
    for (int free_it = 0; free_it < 2; free_it++) {
        luhd_session *s = new_session(m, 256);
        if (!s) return;
        reentry_state r = {s, LUHD_OK, LUHD_OK, LUHD_OK, LUHD_ERR_INTERNAL, 0, free_it};
        luhd_sampling_params sp = sampling(16);
        luhd_status st = luhd_session_chat(s, "Tell me a story.", -1, NULL, 0, &sp, reenter, &r, NULL, NULL, NULL);
        CHECK(r.pieces >= 1);
        CHECK(r.nested_chat == LUHD_ERR_INVALID_ARGUMENT && r.nested_context == LUHD_ERR_INVALID_ARGUMENT &&
              r.nested_reset == LUHD_ERR_INVALID_ARGUMENT);
        CHECK(st == LUHD_ERR_CANCELLED);
        if (!free_it) {
            CHECK(r.cancel == LUHD_OK);
            /* The session stays usable after the refused calls and the cancel. */
            sp = sampling(2);
            EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
            luhd_session_free(s);
        }
    }
}

typedef struct {
    luhd_session *session;
    int rounds, ok, busy, other;
} overlap_state;

static void *overlap_worker(void *arg) {
    overlap_state *o = arg;
    luhd_sampling_params sp = sampling(2);
    for (int i = 0; i < o->rounds; i++) {
        luhd_status st = luhd_session_chat(o->session, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL);
        if (st == LUHD_OK) o->ok++;
        else if (st == LUHD_ERR_INVALID_ARGUMENT && strstr(luhd_last_error(), "busy")) o->busy++;
        else if (st == LUHD_ERR_CONTEXT_FULL) luhd_session_cancel(o->session);
        else o->other++;
    }
    return NULL;
}

/* Two threads that break the one-thread-per-session rule get statuses, not a corrupted session. */
static void test_overlapping_threads(luhd_model *m) {
    luhd_session *s = new_session(m, 4096);
    if (!s) return;
    overlap_state a = {s, 25, 0, 0, 0}, b = {s, 25, 0, 0, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, overlap_worker, &a);
    pthread_create(&tb, NULL, overlap_worker, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.other == 0 && b.other == 0);
    CHECK(a.ok + b.ok >= 1);
    int32_t used = -1;
    EXPECT_STATUS(luhd_session_context(s, &used, NULL), LUHD_OK);
    CHECK(used > 0);
    luhd_session_free(s);
}

/* ------------------------------------------------------------------------------------------- */
/* Logging */

static luhd_status nested_set_status = LUHD_OK;

static void log_calls_log_set(luhd_log_level level, const char *message, void *user_data) {
    (void)level;
    (void)message;
    (void)user_data;
    nested_set_status = luhd_log_set(NULL, NULL, LUHD_LOG_NONE);
}

enum { ALIVE = 0x600d, DEAD = 0xdead };

typedef struct {
    volatile int state;
} log_sink;

static volatile int dead_sink_called;

static void log_into_sink(luhd_log_level level, const char *message, void *user_data) {
    (void)level;
    (void)message;
    log_sink *sink = user_data;
    if (sink->state != ALIVE) dead_sink_called = 1;
}

typedef struct {
    luhd_model *model;
    volatile int stop;
} logger_state;

static void *log_by_failing(void *arg) {
    logger_state *l = arg;
    int32_t n = 0;
    while (!l->stop) luhd_model_tokenize(l->model, "\xff", -1, false, false, NULL, 0, &n); /* logs at debug */
    return NULL;
}

static void test_logging(luhd_model *m) {
    EXPECT_STATUS(luhd_log_set(log_calls_log_set, NULL, LUHD_LOG_DEBUG), LUHD_OK);
    int32_t n = 0;
    luhd_model_tokenize(m, "\xff", -1, false, false, NULL, 0, &n);
    CHECK(nested_set_status == LUHD_ERR_INVALID_ARGUMENT);

    /* Sinks replaced while two threads log: when luhd_log_set returns, the replaced sink is
     * marked dead, and it must never be called after that. */
    logger_state l = {m, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, log_by_failing, &l);
    log_sink *previous = NULL;
    for (int round = 0; round < 2000; round++) {
        log_sink *sink = malloc(sizeof *sink);
        sink->state = ALIVE;
        EXPECT_STATUS(luhd_log_set(log_into_sink, sink, LUHD_LOG_DEBUG), LUHD_OK);
        if (previous) {
            previous->state = DEAD;
            free(previous);
        }
        previous = sink;
    }
    EXPECT_STATUS(luhd_log_set(NULL, NULL, LUHD_LOG_NONE), LUHD_OK);
    free(previous);
    l.stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(!dead_sink_called);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ASSETS_DIR\n", argv[0]);
        return 2;
    }
    size_t len = strlen(argv[1]) + 32;
    char *model_dir = malloc(len);
    snprintf(model_dir, len, "%s/models/small-noslice", argv[1]);
    luhd_log_set(NULL, NULL, LUHD_LOG_NONE);
    luhd_model *m = NULL;
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m), LUHD_OK);
    if (m) {
        test_numbers(m, model_dir);
        test_text_with_nul(m);
        test_logits_after_chat(m);
        test_reentry_from_callbacks(m);
        test_overlapping_threads(m);
        test_logging(m);
    }
    luhd_model_free(m);
    luhd_log_set(NULL, NULL, LUHD_LOG_WARNING);
    free(model_dir);
    printf("boundary_test: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
