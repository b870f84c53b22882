/* abi_test: every function of include/llavauhd.h called from C, with every documented error
 * status: NULL handles and out-pointers, wrong struct_size, bad UTF-8, a full context, buffers
 * too small, cancellation from each callback and from another thread, image errors, placeholder
 * and marker counts, ids outside the vocabulary. Run on the tiny test models:
 *
 *   ./abi_test ASSETS_DIR REPO_DIR
 *
 * Prints one line per failed check and exits 1 if any failed. Every handle is freed, so the
 * program also runs clean under LeakSanitizer (scripts/dev/asan.sh). */
#define _DEFAULT_SOURCE
#include <llavauhd.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static int n_checks, n_failed;

#define CHECK(cond) check((cond), #cond, __FILE__, __LINE__)
#define EXPECT_STATUS(call, want) expect_status((call), (want), #call, __LINE__)

static void check(int ok, const char *what, const char *file, int line) {
    n_checks++;
    if (!ok) {
        n_failed++;
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    }
}

static void expect_status(luhd_status got, luhd_status want, const char *call, int line) {
    n_checks++;
    if (got != want) {
        n_failed++;
        fprintf(stderr, "abi_test.c:%d: %s\n    returned %s (%d), expected %s (%d); last error: %s\n", line, call,
                luhd_status_string(got), (int)got, luhd_status_string(want), (int)want, luhd_last_error());
    }
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(data, 1, (size_t)n, f);
    fclose(f);
    return data;
}

/* ------------------------------------------------------------------------------------------- */
/* Callbacks */

typedef struct {
    int calls, info, debug, other_level;
    char last[512];
    pthread_mutex_t lock;
} log_state;

static void on_log(luhd_log_level level, const char *message, void *user_data) {
    log_state *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if (level == LUHD_LOG_INFO) s->info++;
    else if (level == LUHD_LOG_DEBUG) s->debug++;
    else s->other_level++;
    snprintf(s->last, sizeof s->last, "%s", message);
    pthread_mutex_unlock(&s->lock);
}

typedef struct {
    int calls, stop_at;
    float last;
    int decreasing;
} progress_state;

static bool on_progress(float progress, void *user_data) {
    progress_state *s = user_data;
    if (s->calls > 0 && progress < s->last) s->decreasing = 1;
    s->last = progress;
    s->calls++;
    return s->stop_at == 0 || s->calls < s->stop_at;
}

static bool never_called_progress(float progress, void *user_data) {
    (void)progress;
    (*(int *)user_data)++;
    return true;
}

/* Abort callback: counts polls; stops from poll `stop_at` on (0: never), or when `flag` is set. */
typedef struct {
    int polls, stop_at;
    volatile int flag;
} abort_state;

static bool on_abort(void *user_data) {
    abort_state *s = user_data;
    s->polls++;
    return s->flag || (s->stop_at > 0 && s->polls >= s->stop_at);
}

/* Text callback: collects the answer; returns false after `stop_after` pieces (0: never); can
 * raise an abort flag, or hand over to another thread, at the first piece. */
typedef struct {
    char text[8192];
    size_t length;
    int pieces, stop_after, bad_piece;
    abort_state *raise_abort;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *first_piece, *cancelled;
} text_state;

static bool on_text(const char *piece, size_t length, void *user_data) {
    text_state *s = user_data;
    if (piece[length] != '\0' || strlen(piece) != length) s->bad_piece = 1;
    if (s->length + length < sizeof s->text) {
        memcpy(s->text + s->length, piece, length);
        s->length += length;
        s->text[s->length] = '\0';
    }
    s->pieces++;
    if (s->raise_abort) s->raise_abort->flag = 1;
    if (s->lock) {
        pthread_mutex_lock(s->lock);
        *s->first_piece = 1;
        pthread_cond_broadcast(s->cond);
        while (!*s->cancelled) pthread_cond_wait(s->cond, s->lock);
        pthread_mutex_unlock(s->lock);
    }
    return s->stop_after == 0 || s->pieces < s->stop_after;
}

/* ------------------------------------------------------------------------------------------- */
/* Sections */

static void *fresh_thread_last_error(void *out) {
    *(const char **)out = luhd_last_error();
    return NULL;
}

static void test_versions_and_status(void) {
    CHECK(luhd_abi_version() == LUHD_ABI_VERSION);
    CHECK(luhd_version_number() == LUHD_VERSION_NUMBER);
    CHECK(strcmp(luhd_version_string(), LUHD_VERSION_STRING) == 0);
    int major, minor, patch;
    CHECK(sscanf(luhd_version_string(), "%d.%d.%d", &major, &minor, &patch) == 3);
    CHECK(major == LUHD_VERSION_MAJOR && minor == LUHD_VERSION_MINOR && patch == LUHD_VERSION_PATCH);
    for (int s = LUHD_OK; s <= LUHD_ERR_SESSION_MISMATCH; s++) {
        const char *name = luhd_status_string((luhd_status)s);
        CHECK(name != NULL && name[0] != '\0' && strcmp(name, "unknown status") != 0);
        for (int t = LUHD_OK; t < s; t++) CHECK(strcmp(name, luhd_status_string((luhd_status)t)) != 0);
    }
    CHECK(strcmp(luhd_status_string(LUHD_OK), "ok") == 0);
    CHECK(strcmp(luhd_status_string((luhd_status)19), "unknown status") == 0);
    CHECK(strcmp(luhd_status_string((luhd_status)-1), "unknown status") == 0);
    /* A thread that has not failed sees "". */
    const char *fresh = NULL;
    pthread_t t;
    pthread_create(&t, NULL, fresh_thread_last_error, &fresh);
    pthread_join(t, NULL);
    CHECK(fresh != NULL && fresh[0] == '\0');
}

static void test_logging(const char *model_dir) {
    log_state s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    luhd_log_set(on_log, &s, LUHD_LOG_DEBUG);
    luhd_model *m = NULL;
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m), LUHD_OK);
    CHECK(s.info >= 1 && strstr(s.last, "loaded") != NULL);
    EXPECT_STATUS(luhd_model_tokenize(m, "\xff", -1, false, false, NULL, 0, NULL), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(s.debug >= 1 && strstr(s.last, "luhd_model_tokenize") != NULL);
    /* Level filter: INFO passes info, drops debug. */
    int before = s.calls;
    luhd_log_set(on_log, &s, LUHD_LOG_INFO);
    EXPECT_STATUS(luhd_model_tokenize(m, "\xff", -1, false, false, NULL, 0, NULL), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(s.calls == before);
    /* LUHD_LOG_NONE, and a level past it, silence the library. */
    luhd_model *m2 = NULL;
    luhd_log_set(on_log, &s, LUHD_LOG_NONE);
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m2), LUHD_OK);
    luhd_model_free(m2);
    luhd_log_set(on_log, &s, (luhd_log_level)99);
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m2), LUHD_OK);
    luhd_model_free(m2);
    luhd_log_set(on_log, &s, (luhd_log_level)-1); /* outside the enum: silence, no trap */
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m2), LUHD_OK);
    luhd_model_free(m2);
    CHECK(s.calls == before);
    CHECK(s.other_level == 0);
    luhd_log_set(NULL, NULL, LUHD_LOG_WARNING); /* back to the default: stderr */
    luhd_model_free(m);
}

static void test_models(const char *model_dir) {
    luhd_model *m = NULL;
    luhd_model_params p = luhd_model_default_params();
    CHECK(p.struct_size == sizeof p && p.n_threads == 0 && p.progress_callback == NULL &&
          p.precision == LUHD_PRECISION_EXACT);

    EXPECT_STATUS(luhd_model_load(NULL, NULL, &m), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(luhd_last_error(), "luhd_model_load") != NULL && strstr(luhd_last_error(), "path") != NULL);
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_load("/nonexistent/model", NULL, &m), LUHD_ERR_IO);
    EXPECT_STATUS(luhd_model_load("/nonexistent/\xff\xfe", NULL, &m), LUHD_ERR_INVALID_UTF8);
    p.struct_size = 0;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(luhd_last_error(), "struct_size") != NULL);
    p.struct_size = (size_t)1 << 40;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_ERR_INVALID_ARGUMENT);
    p = luhd_model_default_params();
    p.n_threads = -2;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);

    /* Progress: increasing, ends at 1; returning false cancels. */
    progress_state ps = {0};
    p = luhd_model_default_params();
    p.n_threads = 1;
    p.progress_callback = on_progress;
    p.progress_user_data = &ps;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_OK);
    CHECK(ps.calls >= 2 && ps.last == 1.0f && !ps.decreasing);
    luhd_model_free(m);
    m = NULL;
    progress_state stop = {.stop_at = 2};
    p.progress_user_data = &stop;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_ERR_CANCELLED);
    CHECK(m == NULL && stop.calls == 2);

    /* An older caller's shorter struct: the fields past struct_size are not read. */
    int never = 0;
    p = luhd_model_default_params();
    p.struct_size = offsetof(luhd_model_params, progress_callback);
    p.progress_callback = never_called_progress;
    p.progress_user_data = &never;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_OK);
    CHECK(never == 0);

    luhd_model_properties info = {0};
    EXPECT_STATUS(luhd_model_get_properties(NULL, &info), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_get_properties(m, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_get_properties(m, &info), LUHD_ERR_INVALID_ARGUMENT); /* struct_size 0 */
    info.struct_size = sizeof info;
    EXPECT_STATUS(luhd_model_get_properties(m, &info), LUHD_OK);
    CHECK(strcmp(info.architecture, "llama") == 0 && strcmp(info.projector, "hiwin") == 0);
    CHECK(strcmp(info.token_layout, "stitched_grid") == 0 && strcmp(info.chat_template, "vicuna_v1") == 0);
    CHECK(strcmp(info.weight_dtype, "BF16") == 0 && info.blas_core[0] != '\0');
    CHECK(info.hidden_size == 256 && info.n_layers == 2 && info.vocab_size == 32000);
    CHECK(info.vision_hidden_size == 1024 && info.vision_patch_size == 14 && info.tokens_per_view == 144);
    CHECK(info.feature_scale_mask == 7 && info.n_tensors > 0 && info.weight_bytes > 0 && info.n_threads >= 1);
    CHECK(info.has_vision);
    /* A caller built against the 1.0 struct, which ends before has_vision: that field is not written. */
    luhd_model_properties v1_0 = {.struct_size = offsetof(luhd_model_properties, has_vision)};
    EXPECT_STATUS(luhd_model_get_properties(m, &v1_0), LUHD_OK);
    CHECK(v1_0.hidden_size == 256 && !v1_0.has_vision);
    luhd_model_properties shorter = {.struct_size = offsetof(luhd_model_properties, hidden_size), .hidden_size = -3};
    EXPECT_STATUS(luhd_model_get_properties(m, &shorter), LUHD_OK);
    CHECK(shorter.architecture != NULL && shorter.hidden_size == -3);
    luhd_model_free(m);
    luhd_model_free(NULL);
}

/* A model directory without a usable tokenizer: the config and weights of a tiny model, linked
 * into a temporary directory, with no tokenizer file, then a corrupt tokenizer.model. */
static void test_bad_tokenizer(const char *model_dir) {
    char dir[] = "/tmp/luhd-abi-test-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    static const char *linked[2] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *from = path_join(model_dir, linked[i]), *to = path_join(dir, linked[i]);
        CHECK(symlink(from, to) == 0);
        free(from);
        free(to);
    }
    luhd_model *m = NULL;
    EXPECT_STATUS(luhd_model_load(dir, NULL, &m), LUHD_ERR_BAD_TOKENIZER);
    char *tok = path_join(dir, "tokenizer.model");
    FILE *f = fopen(tok, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("garbage", f);
        fclose(f);
    }
    EXPECT_STATUS(luhd_model_load(dir, NULL, &m), LUHD_ERR_BAD_TOKENIZER);
    CHECK(m == NULL && strstr(luhd_last_error(), "tokenizer.model") != NULL);
    unlink(tok);
    free(tok);
    for (int i = 0; i < 2; i++) {
        char *to = path_join(dir, linked[i]);
        unlink(to);
        free(to);
    }
    rmdir(dir);
}

static void test_tokenizer(luhd_model *m) {
    int32_t ids[64], n = -1;
    EXPECT_STATUS(luhd_model_tokenize(NULL, "hi", -1, true, false, ids, 64, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_tokenize(m, NULL, -1, true, false, ids, 64, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_tokenize(m, "hi", -1, true, false, ids, 64, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_tokenize(m, "hi", -2, true, false, ids, 64, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_tokenize(m, "hi", -1, true, false, ids, -1, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_tokenize(m, "hi", -1, true, false, NULL, 5, &n), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_tokenize(m, "caf\xc3", -1, false, false, ids, 64, &n), LUHD_ERR_INVALID_UTF8);
    EXPECT_STATUS(luhd_model_tokenize(m, "a\xed\xa0\x80", 4, false, false, ids, 64, &n), LUHD_ERR_INVALID_UTF8);
    /* Measure, too small, fit. */
    EXPECT_STATUS(luhd_model_tokenize(m, "Hello world", -1, true, false, NULL, 0, &n), LUHD_ERR_BUFFER_TOO_SMALL);
    int32_t need = n;
    CHECK(need >= 3);
    EXPECT_STATUS(luhd_model_tokenize(m, "Hello world", -1, true, false, ids, need - 1, &n), LUHD_ERR_BUFFER_TOO_SMALL);
    CHECK(n == need);
    EXPECT_STATUS(luhd_model_tokenize(m, "Hello world", -1, true, false, ids, need, &n), LUHD_OK);
    CHECK(n == need && ids[0] == 1);
    EXPECT_STATUS(luhd_model_tokenize(m, "Hello world", 5, false, false, ids, 64, &n), LUHD_OK); /* "Hello" */
    int32_t hello_n = n, hello_last = ids[n - 1];
    EXPECT_STATUS(luhd_model_tokenize(m, "</s>", -1, false, true, ids, 64, &n), LUHD_OK);
    CHECK(n == 1 && ids[0] == 2);
    EXPECT_STATUS(luhd_model_tokenize(m, "</s>", -1, false, false, ids, 64, &n), LUHD_OK);
    CHECK(n > 1);
    EXPECT_STATUS(luhd_model_tokenize(m, "", 0, false, false, NULL, 0, &n), LUHD_OK);
    CHECK(n == 0);

    int32_t toks[8];
    EXPECT_STATUS(luhd_model_tokenize(m, "Hello there", -1, false, false, toks, 8, &n), LUHD_OK);
    int32_t nt = n;
    char buf[64];
    size_t len = 0;
    EXPECT_STATUS(luhd_model_detokenize(NULL, toks, nt, true, buf, sizeof buf, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_detokenize(m, NULL, nt, true, buf, sizeof buf, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_detokenize(m, toks, nt, true, buf, sizeof buf, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_detokenize(m, toks, -1, true, buf, sizeof buf, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_detokenize(m, toks, nt, true, NULL, 0, &len), LUHD_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen("Hello there"));
    EXPECT_STATUS(luhd_model_detokenize(m, toks, nt, true, buf, len, &len), LUHD_ERR_BUFFER_TOO_SMALL); /* no NUL room */
    EXPECT_STATUS(luhd_model_detokenize(m, toks, nt, true, buf, len + 1, &len), LUHD_OK);
    CHECK(strcmp(buf, "Hello there") == 0);
    int32_t bad[2] = {1, 32000};
    EXPECT_STATUS(luhd_model_detokenize(m, bad, 2, true, buf, sizeof buf, &len), LUHD_ERR_INVALID_ARGUMENT);
    bad[1] = LUHD_IMAGE_TOKEN;
    EXPECT_STATUS(luhd_model_detokenize(m, bad, 2, true, buf, sizeof buf, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_detokenize(m, NULL, 0, true, buf, sizeof buf, &len), LUHD_OK);
    CHECK(len == 0 && buf[0] == '\0');
    int32_t with_special[3] = {1, toks[0], 2};
    EXPECT_STATUS(luhd_model_detokenize(m, with_special, 3, true, buf, sizeof buf, &len), LUHD_OK);
    CHECK(strcmp(buf, "Hello") == 0);

    char piece[16];
    EXPECT_STATUS(luhd_model_token_to_piece(NULL, 13, false, piece, sizeof piece, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_token_to_piece(m, 13, false, piece, sizeof piece, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_token_to_piece(m, 32000, false, piece, sizeof piece, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_token_to_piece(m, -1, false, piece, sizeof piece, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_token_to_piece(m, LUHD_IMAGE_TOKEN, false, piece, sizeof piece, &len), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_model_token_to_piece(m, 13, false, piece, sizeof piece, &len), LUHD_OK);
    CHECK(len == 1 && piece[0] == '\n');
    EXPECT_STATUS(luhd_model_token_to_piece(m, hello_last, false, NULL, 0, &len), LUHD_ERR_BUFFER_TOO_SMALL);
    CHECK(len >= 2 || hello_n > 1);
    size_t need_piece = len;
    EXPECT_STATUS(luhd_model_token_to_piece(m, hello_last, false, piece, need_piece, &len), LUHD_OK);
    EXPECT_STATUS(luhd_model_token_to_piece(m, 2, true, piece, sizeof piece, &len), LUHD_OK);
    CHECK(len == 4 && memcmp(piece, "</s>", 4) == 0);
    EXPECT_STATUS(luhd_model_token_to_piece(m, 2, false, NULL, 0, &len), LUHD_OK);
    CHECK(len == 0);
}

/* Qwen2's byte-level BPE: no BOS, special tokens rendered unless skipped. */
static void test_qwen2_tokenizer(const char *assets) {
    char *dir = path_join(assets, "models/chelsea-qwen2-mask5");
    luhd_model *q = NULL;
    EXPECT_STATUS(luhd_model_load(dir, NULL, &q), LUHD_OK);
    free(dir);
    if (!q) return;
    int32_t ids[16], n = 0;
    EXPECT_STATUS(luhd_model_tokenize(q, "<|im_start|>user", -1, true, true, ids, 16, &n), LUHD_OK);
    CHECK(n == 2 && ids[0] == 151644 && ids[1] == 872);
    EXPECT_STATUS(luhd_model_tokenize(q, "<|im_start|>user", -1, true, false, ids, 16, &n), LUHD_OK);
    CHECK(n > 2 && ids[0] != 151644);
    int32_t chat[3] = {151644, 8948, 151645};
    char buf[64];
    size_t len = 0;
    EXPECT_STATUS(luhd_model_detokenize(q, chat, 3, false, buf, sizeof buf, &len), LUHD_OK);
    CHECK(strcmp(buf, "<|im_start|>system<|im_end|>") == 0);
    EXPECT_STATUS(luhd_model_detokenize(q, chat, 3, true, buf, sizeof buf, &len), LUHD_OK);
    CHECK(strcmp(buf, "system") == 0);
    EXPECT_STATUS(luhd_model_token_to_piece(q, 151645, true, buf, sizeof buf, &len), LUHD_OK);
    CHECK(len == 10 && memcmp(buf, "<|im_end|>", 10) == 0);
    luhd_model_properties info = {.struct_size = sizeof info};
    EXPECT_STATUS(luhd_model_get_properties(q, &info), LUHD_OK);
    CHECK(strcmp(info.architecture, "qwen2") == 0 && strcmp(info.token_layout, "per_slice") == 0);
    CHECK(strcmp(info.chat_template, "qwen2_chatml") == 0 && info.feature_scale_mask == 5 && info.vocab_size == 151936);
    luhd_model_free(q);
}

static void test_images(const char *image_path, const char *repo) {
    luhd_image *img = NULL;
    luhd_image_load_params ip = luhd_image_load_default_params();
    CHECK(ip.struct_size == sizeof ip && ip.max_pixels == 178956970);
    EXPECT_STATUS(luhd_image_load_file(NULL, NULL, &img), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_load_file(image_path, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_load_file("/nonexistent.png", NULL, &img), LUHD_ERR_IO);
    ip.struct_size = 0;
    EXPECT_STATUS(luhd_image_load_file(image_path, &ip, &img), LUHD_ERR_INVALID_ARGUMENT);
    ip = luhd_image_load_default_params();
    ip.max_pixels = 0;
    EXPECT_STATUS(luhd_image_load_file(image_path, &ip, &img), LUHD_ERR_INVALID_ARGUMENT);
    ip.max_pixels = 200 * 150 - 1; /* the image is 200 x 150 */
    EXPECT_STATUS(luhd_image_load_file(image_path, &ip, &img), LUHD_ERR_IMAGE_TOO_LARGE);
    ip.max_pixels = 200 * 150;
    EXPECT_STATUS(luhd_image_load_file(image_path, &ip, &img), LUHD_OK);
    CHECK(img != NULL);

    /* Corrupt, truncated, unknown format, decompression bomb: from a file and from memory. */
    static const struct { const char *file; luhd_status status; } corrupt[] = {
        {"Tests/Fixtures/images/corrupt/png_trunc_idat_50.png", LUHD_ERR_BAD_IMAGE},
        {"Tests/Fixtures/images/corrupt/png_bad_ihdr_crc.png", LUHD_ERR_BAD_IMAGE},
        {"Tests/Fixtures/images/corrupt/jpeg_trunc_scan_50.jpg", LUHD_ERR_BAD_IMAGE},
        {"Tests/Fixtures/images/corrupt/jpeg_bad_huffman_table.jpg", LUHD_ERR_BAD_IMAGE},
        {"Tests/Fixtures/images/corrupt/garbage.bin", LUHD_ERR_BAD_IMAGE},
        {"Tests/Fixtures/images/corrupt/unsupported.gif", LUHD_ERR_BAD_IMAGE},
        {"Tests/Fixtures/images/corrupt/jpeg_huge.jpg", LUHD_ERR_IMAGE_TOO_LARGE},
        {"Tests/Fixtures/images/corrupt/png_huge.png", LUHD_ERR_IMAGE_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        char *path = path_join(repo, corrupt[i].file);
        luhd_image *bad = NULL;
        EXPECT_STATUS(luhd_image_load_file(path, NULL, &bad), corrupt[i].status);
        size_t size = 0;
        unsigned char *data = read_file(path, &size);
        CHECK(data != NULL);
        EXPECT_STATUS(luhd_image_load_memory(data, size, NULL, &bad), corrupt[i].status);
        CHECK(bad == NULL);
        free(data);
        free(path);
    }

    size_t size = 0;
    unsigned char *png = read_file(image_path, &size);
    luhd_image *mem = NULL;
    EXPECT_STATUS(luhd_image_load_memory(NULL, size, NULL, &mem), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_load_memory(png, size, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_load_memory(png, 0, NULL, &mem), LUHD_ERR_BAD_IMAGE);
    EXPECT_STATUS(luhd_image_load_memory(png, size / 2, NULL, &mem), LUHD_ERR_BAD_IMAGE);
    ip = luhd_image_load_default_params();
    ip.max_pixels = 100;
    EXPECT_STATUS(luhd_image_load_memory(png, size, &ip, &mem), LUHD_ERR_IMAGE_TOO_LARGE);
    EXPECT_STATUS(luhd_image_load_memory(png, size, NULL, &mem), LUHD_OK);
    free(png);

    int32_t w = 0, h = 0;
    EXPECT_STATUS(luhd_image_size(NULL, &w, &h), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_size(img, &w, NULL), LUHD_OK);
    EXPECT_STATUS(luhd_image_size(img, NULL, &h), LUHD_OK);
    EXPECT_STATUS(luhd_image_size(img, NULL, NULL), LUHD_OK);
    CHECK(w == 200 && h == 150);
    const uint8_t *a = NULL, *b = NULL;
    EXPECT_STATUS(luhd_image_rgb(NULL, &a), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_rgb(img, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_rgb(img, &a), LUHD_OK);
    EXPECT_STATUS(luhd_image_rgb(mem, &b), LUHD_OK);
    CHECK(a && b && memcmp(a, b, (size_t)w * h * 3) == 0);

    /* Raw RGB: the same pixels through a padded buffer; bad sizes and strides. */
    size_t stride = (size_t)w * 3 + 5;
    uint8_t *padded = calloc((size_t)h * stride, 1);
    for (int y = 0; y < h; y++) memcpy(padded + y * stride, a + (size_t)y * w * 3, (size_t)w * 3);
    luhd_image *raw = NULL;
    EXPECT_STATUS(luhd_image_from_rgb(NULL, w, h, 0, &raw), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_from_rgb(padded, w, h, stride, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_from_rgb(padded, 0, h, stride, &raw), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_from_rgb(padded, w, -1, stride, &raw), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_from_rgb(padded, w, h, (size_t)w * 3 - 1, &raw), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(luhd_last_error(), "stride") != NULL);
    EXPECT_STATUS(luhd_image_from_rgb(padded, 20000, 10000, 0, &raw), LUHD_ERR_IMAGE_TOO_LARGE); /* not read */
    EXPECT_STATUS(luhd_image_from_rgb(padded, 2, 3, SIZE_MAX, &raw), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_from_rgb(padded, 2, 3, (SIZE_MAX >> 1) - 1, &raw), LUHD_ERR_IMAGE_TOO_LARGE);
    CHECK(raw == NULL);
    EXPECT_STATUS(luhd_image_from_rgb(padded, w, h, stride, &raw), LUHD_OK);
    const uint8_t *c = NULL;
    EXPECT_STATUS(luhd_image_rgb(raw, &c), LUHD_OK);
    CHECK(c && memcmp(a, c, (size_t)w * h * 3) == 0);
    luhd_image *packed = NULL;
    EXPECT_STATUS(luhd_image_from_rgb(a, w, h, 0, &packed), LUHD_OK);
    luhd_image_free(packed);
    free(padded);
    luhd_image_free(raw);
    luhd_image_free(mem);
    luhd_image_free(img);
    luhd_image_free(NULL);
}

static int64_t elements(const luhd_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= t->shape[d];
    return n;
}

static void test_stages(luhd_model *m, luhd_image *img) {
    luhd_slice_params o = luhd_slice_default_params();
    CHECK(o.struct_size == sizeof o && o.preresize_long_side == 1024 && o.max_slices == 9);
    luhd_slice_plan plan = {0};
    EXPECT_STATUS(luhd_image_get_slice_plan(NULL, img, NULL, &plan), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_get_slice_plan(m, NULL, NULL, &plan), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, NULL, &plan), LUHD_ERR_INVALID_ARGUMENT); /* struct_size 0 */
    plan.struct_size = sizeof plan;
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, NULL, &plan), LUHD_OK); /* defaults: pre-resize to 1024 */
    CHECK(plan.image_width == 200 && plan.resized_width == 1024 && plan.grid_columns * plan.grid_rows == plan.n_views - 1);
    CHECK(plan.n_image_tokens > 144 && plan.separators[plan.grid_columns - 1] == 13);
    luhd_slice_params bad = o;
    bad.struct_size = 0;
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, &bad, &plan), LUHD_ERR_INVALID_ARGUMENT);
    bad = o;
    bad.max_slices = 0;
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, &bad, &plan), LUHD_ERR_INVALID_ARGUMENT);
    bad.max_slices = LUHD_MAX_SLICES + 1;
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, &bad, &plan), LUHD_ERR_INVALID_ARGUMENT);
    bad = o;
    bad.preresize_long_side = -1;
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, &bad, &plan), LUHD_ERR_INVALID_ARGUMENT);
    o.preresize_long_side = 0; /* upstream's MME / AI2D setting: this image is not sliced */
    EXPECT_STATUS(luhd_image_get_slice_plan(m, img, &o, &plan), LUHD_OK);
    CHECK(plan.n_views == 1 && plan.grid_columns == 0 && plan.slice_width == 0 && plan.n_image_tokens == 144);
    CHECK(plan.overview_width == 378 && plan.overview_height == 280);

    typedef luhd_status (*stage_fn)(const luhd_model *, const luhd_image *, const luhd_slice_params *,
                                    luhd_abort_callback, void *, luhd_tensor_list **);
    static const stage_fn stages[4] = {luhd_image_pixels, luhd_image_features, luhd_image_pyramid, luhd_image_embed};
    for (int s = 0; s < 4; s++) {
        luhd_tensor_list *list = NULL;
        EXPECT_STATUS(stages[s](NULL, img, &o, NULL, NULL, &list), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(stages[s](m, NULL, &o, NULL, NULL, &list), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(stages[s](m, img, &o, NULL, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(stages[s](m, img, &bad, NULL, NULL, &list), LUHD_ERR_INVALID_ARGUMENT);
        abort_state ab = {.stop_at = 1};
        EXPECT_STATUS(stages[s](m, img, &o, on_abort, &ab, &list), LUHD_ERR_CANCELLED);
        CHECK(ab.polls == 1 && list == NULL);
        abort_state count = {0};
        EXPECT_STATUS(stages[s](m, img, &o, on_abort, &count, &list), LUHD_OK);
        CHECK(count.polls >= 1 && list != NULL);
        if (!list) continue;
        for (int i = 0; i < list->n_tensors; i++) {
            const luhd_tensor *t = &list->tensors[i];
            CHECK(t->data != NULL && elements(t) > 0 && t->view == (s == 2 ? 0 : i));
            int64_t n = elements(t);
            double sum = 0;
            for (int64_t k = 0; k < n; k++) sum += t->data[k];
            CHECK(sum == sum); /* finite, readable */
        }
        const luhd_tensor *t0 = &list->tensors[0];
        switch (s) {
        case 0: CHECK(list->n_tensors == 1 && t0->n_dims == 3 && t0->shape[0] == 3 && t0->shape[1] == 280 && t0->shape[2] == 378); break;
        case 1: CHECK(list->n_tensors == 1 && t0->n_dims == 2 && t0->shape[0] == 20 * 27 && t0->shape[1] == 1024); break;
        case 2:
            CHECK(list->n_tensors == 3);
            for (int i = 0; i < list->n_tensors && i < 3; i++) {
                const luhd_tensor *t = &list->tensors[i];
                int scale = 1 << i;
                CHECK(t->level == scale && t->used_by_projector == 1 && t->n_dims == 3 && t->shape[0] == 1024);
                CHECK(t->shape[1] == 20 * scale && t->shape[2] == 27 * scale);
            }
            break;
        case 3: CHECK(list->n_tensors == 1 && t0->n_dims == 2 && t0->shape[0] == 144 && t0->shape[1] == 256); break;
        }
        luhd_tensor_list_free(list);
    }
    /* Polled inside the work, not only before it: stopping at the third poll still cancels. */
    abort_state third = {.stop_at = 3};
    luhd_tensor_list *list = NULL;
    EXPECT_STATUS(luhd_image_embed(m, img, &o, on_abort, &third, &list), LUHD_ERR_CANCELLED);
    CHECK(third.polls == 3 && list == NULL);
    luhd_tensor_list_free(NULL);
}

static luhd_session *new_session(luhd_model *m, int32_t n_ctx, abort_state *ab) {
    luhd_session_params p = luhd_session_default_params();
    p.n_ctx = n_ctx;
    p.preresize_long_side = 0;
    if (ab) {
        p.abort_callback = on_abort;
        p.abort_user_data = ab;
    }
    luhd_session *s = NULL;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_OK);
    return s;
}

static luhd_sampling_params sampling(int32_t max_new_tokens) {
    luhd_sampling_params sp = luhd_sampling_default_params();
    sp.max_new_tokens = max_new_tokens;
    return sp;
}

static void test_sessions(luhd_model *m) {
    luhd_session_params p = luhd_session_default_params();
    CHECK(p.struct_size == sizeof p && p.n_ctx == 0 && p.image_cache_size == 4 && p.system_prompt == NULL);
    CHECK(p.preresize_long_side == 1024 && p.max_slices == 9 && p.abort_callback == NULL);
    luhd_session *s = NULL;
    EXPECT_STATUS(luhd_session_create(NULL, NULL, &s), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_create(m, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    p.struct_size = 0;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    p = luhd_session_default_params();
    p.n_ctx = 4097; /* max_position_embeddings is 4096 */
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    p.n_ctx = -1;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    p = luhd_session_default_params();
    p.image_cache_size = -1;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    p = luhd_session_default_params();
    p.max_slices = 0;
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_ARGUMENT);
    p = luhd_session_default_params();
    p.system_prompt = "caf\xc3";
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_ERR_INVALID_UTF8);
    CHECK(s == NULL);
    p = luhd_session_default_params();
    p.system_prompt = "You answer in one word.";
    EXPECT_STATUS(luhd_session_create(m, &p, &s), LUHD_OK);

    int32_t used = -1, size = -1;
    EXPECT_STATUS(luhd_session_context(NULL, &used, &size), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_context(s, &used, &size), LUHD_OK);
    CHECK(used == 0 && size == 4096);
    EXPECT_STATUS(luhd_session_context(s, NULL, NULL), LUHD_OK);
    EXPECT_STATUS(luhd_session_reset(NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_cancel(NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_cancel(s), LUHD_OK); /* nothing running: no effect */
    luhd_sampling_params sp = sampling(3);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
    EXPECT_STATUS(luhd_session_context(s, &used, NULL), LUHD_OK);
    CHECK(used > 0);
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    EXPECT_STATUS(luhd_session_context(s, &used, NULL), LUHD_OK);
    CHECK(used == 0);
    luhd_session_free(s);
    luhd_session_free(NULL);
}

/* LUHD_ERR_OUT_OF_MEMORY: a KV cache that cannot be reserved. In a child process whose address
 * space is capped just above what it uses, a 32768-position session of the Qwen2 model (64 MB
 * of KV cache) cannot be made, and a 64-position one can. Not under ASan or TSan (UNDER_ASAN
 * covers both), which reserve terabytes of shadow memory and fail allocations themselves. */
static void test_out_of_memory(const char *assets) {
#ifdef UNDER_ASAN
    (void)assets;
#else
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char *dir = path_join(assets, "models/chelsea-qwen2-mask5");
        luhd_model *q = NULL;
        if (luhd_model_load(dir, NULL, &q) != LUHD_OK) _exit(100);
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1) _exit(101);
        fclose(f);
        struct rlimit cap = {.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (24u << 20)};
        cap.rlim_max = cap.rlim_cur;
        if (setrlimit(RLIMIT_AS, &cap) != 0) _exit(102);
        luhd_session_params p = luhd_session_default_params();
        p.n_ctx = 32768;
        luhd_session *s = NULL;
        luhd_status big = luhd_session_create(q, &p, &s);
        if (s != NULL || strstr(luhd_last_error(), "KV cache") == NULL) _exit(103);
        p.n_ctx = 64;
        luhd_status small = luhd_session_create(q, &p, &s);
        luhd_session_free(s);
        _exit(big == LUHD_ERR_OUT_OF_MEMORY && small == LUHD_OK ? 0 : 104);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "    out-of-memory child: exit %d, signal %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
#endif
}

/* A session holds its own reference to the model: freeing the model first is allowed. */
static void test_session_outlives_model(const char *model_dir) {
    luhd_model *m = NULL;
    luhd_session *s = NULL;
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m), LUHD_OK);
    EXPECT_STATUS(luhd_session_create(m, NULL, &s), LUHD_OK);
    luhd_model_free(m);
    luhd_sampling_params sp = luhd_sampling_default_params();
    sp.max_new_tokens = 2;
    char *out = NULL;
    EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &sp, NULL, NULL, &out, NULL, NULL), LUHD_OK);
    CHECK(out != NULL);
    luhd_string_free(out);
    luhd_session_free(s);
}

static void test_chat(luhd_model *m, luhd_image *img) {
    luhd_session *s = new_session(m, 0, NULL);
    luhd_sampling_params sp = sampling(6);
    const luhd_image *images[2] = {img, NULL};
    char *out = NULL;
    luhd_chat_stats st = {0};

    EXPECT_STATUS(luhd_session_chat(NULL, "Hi", -1, NULL, 0, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_chat(s, NULL, -1, NULL, 0, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_chat(s, "Hi \xff", -1, NULL, 0, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_UTF8);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 1, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, images + 1, 1, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(luhd_last_error(), "images[0] is NULL") != NULL);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, images, -1, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_chat(s, "<image> and <image>", -1, images, 1, &sp, NULL, NULL, &out, NULL, NULL),
                  LUHD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(luhd_last_error(), "placeholder") != NULL);
    luhd_sampling_params bad = sp;
    bad.struct_size = 0;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    bad = sp;
    bad.max_new_tokens = -1;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    bad = sp;
    bad.temperature = -1.0f;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    bad = sp;
    bad.top_p = 0.0f;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    bad = sp;
    bad.n_stop_strings = 1; /* stop_strings NULL */
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    const char *stops_bad[2] = {"ok", "\xc3\x28"};
    bad.stop_strings = stops_bad;
    bad.n_stop_strings = 2;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_UTF8);
    bad.n_stop_strings = -1;
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &bad, NULL, NULL, &out, NULL, NULL), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, &out, NULL, &st), LUHD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(luhd_last_error(), "stats->struct_size") != NULL);
    CHECK(out == NULL);
    int32_t used = -1;
    luhd_session_context(s, &used, NULL);
    CHECK(used == 0);

    /* A turn with an image, streamed: the pieces are the answer. */
    text_state ts = {0};
    st.struct_size = sizeof st;
    EXPECT_STATUS(luhd_session_chat(s, "What animal is this?", -1, images, 1, &sp, on_text, &ts, &out, NULL, &st), LUHD_OK);
    CHECK(out != NULL && strcmp(out, ts.text) == 0 && ts.pieces >= 1 && !ts.bad_piece);
    CHECK(st.stop_reason == LUHD_STOP_MAX_TOKENS || st.stop_reason == LUHD_STOP_EOS);
    CHECK(st.n_generated == 6 || st.stop_reason == LUHD_STOP_EOS);
    CHECK(st.n_images_encoded == 1 && st.n_images_cached == 0 && st.n_reused_positions == 0);
    CHECK(st.n_prompt_positions > 144 && st.image_seconds > 0 && st.prefill_seconds > 0);
    int32_t prompt1 = st.n_prompt_positions;
    char first[4096];
    snprintf(first, sizeof first, "%s", out);
    luhd_string_free(out);
    out = NULL;
    /* A follow-up reuses the cached turn; no stats, no callback, no out_text is fine too. */
    EXPECT_STATUS(luhd_session_chat(s, "And its colour?", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
    EXPECT_STATUS(luhd_session_chat(s, "Thanks.", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    CHECK(st.n_reused_positions > prompt1);
    /* After a reset the image comes from the cache and the answer is the same. */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    EXPECT_STATUS(luhd_session_chat(s, "<image>\nWhat animal is this?", -1, images, 1, &sp, NULL, NULL, &out, NULL, &st), LUHD_OK);
    CHECK(out && strcmp(out, first) == 0 && st.n_images_cached == 1 && st.n_images_encoded == 0);
    luhd_string_free(out);
    out = NULL;
    luhd_string_free(NULL);

    /* An older caller's shorter stats struct: only its fields are written. */
    luhd_chat_stats shorter = {.struct_size = offsetof(luhd_chat_stats, n_generated), .n_generated = -5};
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &shorter), LUHD_OK);
    CHECK(shorter.n_prompt_positions > 0 && shorter.n_generated == -5);

    /* max_new_tokens 0: an empty answer. */
    luhd_sampling_params zero = sampling(0);
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &zero, NULL, NULL, &out, NULL, &st), LUHD_OK);
    CHECK(out && out[0] == '\0' && st.n_generated == 0);
    luhd_string_free(out);
    out = NULL;

    /* The text callback returning false: OK, stop reason CALLBACK, the answer so far. */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    text_state two = {.stop_after = 2};
    luhd_sampling_params long_sp = sampling(30);
    EXPECT_STATUS(luhd_session_chat(s, "Count to ten.", -1, NULL, 0, &long_sp, on_text, &two, &out, NULL, &st), LUHD_OK);
    CHECK(st.stop_reason == LUHD_STOP_CALLBACK && two.pieces == 2 && out && strcmp(out, two.text) == 0);
    luhd_string_free(out);
    out = NULL;

    /* After the callback refused a piece it is not called again, and the answer is what it was
     * given, even when the session held text back for a possible stop string: a stop string
     * that starts with the last character of the first piece (and never matches). */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    text_state probe = {.stop_after = 1};
    luhd_sampling_params eight = sampling(8);
    EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &eight, on_text, &probe, NULL, NULL, NULL), LUHD_OK);
    size_t n1 = probe.length;
    CHECK(n1 >= 2 && (unsigned char)probe.text[n1 - 1] < 0x80); /* true for this model's answer */
    if (n1 >= 2 && (unsigned char)probe.text[n1 - 1] < 0x80) {
        char holdback[3] = {probe.text[n1 - 1], '\x01', '\0'};
        const char *stops[1] = {holdback};
        eight.stop_strings = stops;
        eight.n_stop_strings = 1;
        text_state once = {.stop_after = 1};
        EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
        EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &eight, on_text, &once, &out, NULL, &st), LUHD_OK);
        CHECK(once.pieces == 1 && once.length == n1 - 1 && out && strcmp(out, once.text) == 0);
        CHECK(st.stop_reason == LUHD_STOP_CALLBACK);
        luhd_string_free(out);
        out = NULL;
    }

    /* A stop string taken from the middle of a full answer ends it there. */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    luhd_sampling_params twelve = sampling(12);
    EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &twelve, NULL, NULL, &out, NULL, NULL), LUHD_OK);
    size_t full_len = out ? strlen(out) : 0;
    CHECK(full_len >= 4);
    if (full_len >= 4) {
        char full[4096], stop[3];
        snprintf(full, sizeof full, "%s", out);
        memcpy(stop, full + full_len / 2, 2);
        stop[2] = '\0';
        luhd_string_free(out);
        out = NULL;
        const char *stops[2] = {"never-appears", stop};
        twelve.stop_strings = stops;
        twelve.n_stop_strings = 2;
        EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
        EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &twelve, NULL, NULL, &out, NULL, &st), LUHD_OK);
        CHECK(st.stop_reason == LUHD_STOP_STRING && out && strstr(out, stop) == NULL &&
              strncmp(full, out, strlen(out)) == 0);
    }
    luhd_string_free(out);
    luhd_session_free(s);
}

static void test_context_full(luhd_model *m, luhd_image *img) {
    luhd_session *s = new_session(m, 64, NULL);
    const luhd_image *images[1] = {img};
    luhd_sampling_params sp = sampling(200);
    int32_t used = -1, size = -1;
    char *out = NULL;
    EXPECT_STATUS(luhd_session_chat(s, "Describe it.", -1, images, 1, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_CONTEXT_FULL);
    luhd_session_context(s, &used, &size);
    CHECK(used == 0 && size == 64 && out == NULL);
    int32_t ids[80];
    for (int i = 0; i < 80; i++) ids[i] = 1;
    EXPECT_STATUS(luhd_session_eval(s, ids, 65, NULL, 0), LUHD_ERR_CONTEXT_FULL);
    EXPECT_STATUS(luhd_session_eval(s, ids, 60, NULL, 0), LUHD_OK);
    EXPECT_STATUS(luhd_session_eval(s, ids, 5, NULL, 0), LUHD_ERR_CONTEXT_FULL);
    luhd_session_context(s, &used, NULL);
    CHECK(used == 60);
    EXPECT_STATUS(luhd_session_eval(s, ids, 4, NULL, 0), LUHD_OK);
    luhd_session_context(s, &used, NULL);
    CHECK(used == 64);
    /* An answer that fills the context stops with CONTEXT_FULL (or an early EOS). */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    luhd_chat_stats st = {.struct_size = sizeof st};
    EXPECT_STATUS(luhd_session_chat(s, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    CHECK(st.stop_reason == LUHD_STOP_CONTEXT_FULL || st.stop_reason == LUHD_STOP_EOS);
    luhd_session_context(s, &used, NULL);
    CHECK(used <= 64);
    EXPECT_STATUS(luhd_session_chat(s, "Hi again", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, NULL), LUHD_ERR_CONTEXT_FULL);
    luhd_session_free(s);
}

static void test_abort_callbacks(luhd_model *m, luhd_image *img) {
    abort_state ab = {0};
    luhd_session *s = new_session(m, 0, &ab);
    const luhd_image *images[1] = {img};
    luhd_sampling_params sp = sampling(30);
    int32_t used = -1;
    char *out = NULL;
    /* During image encoding: the first poll of a turn with a new image is in the image stage. */
    ab.flag = 1;
    EXPECT_STATUS(luhd_session_chat(s, "What is it?", -1, images, 1, &sp, NULL, NULL, &out, NULL, NULL), LUHD_ERR_CANCELLED);
    CHECK(strstr(luhd_last_error(), "cancelled") != NULL && out == NULL);
    luhd_session_context(s, &used, NULL);
    CHECK(used == 0);
    ab.flag = 0;
    luhd_sampling_params two = sampling(2);
    EXPECT_STATUS(luhd_session_chat(s, "Hello", -1, NULL, 0, &two, NULL, NULL, NULL, NULL, NULL), LUHD_OK);
    /* eval with an image: cancelled, nothing appended. */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    int32_t ids[3] = {1, LUHD_IMAGE_TOKEN, 22557};
    ab.flag = 1;
    EXPECT_STATUS(luhd_session_eval(s, ids, 3, images, 1), LUHD_ERR_CANCELLED);
    luhd_session_context(s, &used, NULL);
    CHECK(used == 0);
    ab.flag = 0;
    /* During the answer: the text callback raises the flag; decoding stops at its next poll and
     * what was generated stays in the conversation. */
    text_state ts = {.raise_abort = &ab};
    EXPECT_STATUS(luhd_session_chat(s, "What is it?", -1, images, 1, &sp, on_text, &ts, &out, NULL, NULL), LUHD_ERR_CANCELLED);
    CHECK(ts.pieces >= 1 && out == NULL);
    luhd_session_context(s, &used, NULL);
    CHECK(used > 144);
    ab.flag = 0;
    luhd_chat_stats st = {.struct_size = sizeof st};
    EXPECT_STATUS(luhd_session_chat(s, "And now?", -1, NULL, 0, &two, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    CHECK(st.n_reused_positions > 144);
    /* During the prompt of a text-only turn: stops in the language model. */
    ab.polls = 0;
    ab.stop_at = 2;
    EXPECT_STATUS(luhd_session_chat(s, "One more?", -1, NULL, 0, &two, NULL, NULL, NULL, NULL, NULL), LUHD_ERR_CANCELLED);
    ab.stop_at = 0;
    EXPECT_STATUS(luhd_session_chat(s, "One more?", -1, NULL, 0, &two, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    luhd_session_free(s);
}

typedef struct {
    luhd_session *session;
    luhd_status status;
    text_state text;
} chat_job;

static void *run_chat(void *arg) {
    chat_job *job = arg;
    luhd_sampling_params sp = sampling(500);
    job->status = luhd_session_chat(job->session, "Tell me a long story.", -1, NULL, 0, &sp, on_text, &job->text, NULL, NULL, NULL);
    return NULL;
}

static void test_cancel_from_another_thread(luhd_model *m) {
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int first_piece = 0, cancelled = 0;
    chat_job job = {.session = new_session(m, 0, NULL)};
    job.text.lock = &lock;
    job.text.cond = &cond;
    job.text.first_piece = &first_piece;
    job.text.cancelled = &cancelled;
    pthread_t t;
    pthread_create(&t, NULL, run_chat, &job);
    pthread_mutex_lock(&lock);
    while (!first_piece) pthread_cond_wait(&cond, &lock);
    EXPECT_STATUS(luhd_session_cancel(job.session), LUHD_OK); /* the session is busy on the other thread */
    cancelled = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    EXPECT_STATUS(job.status, LUHD_ERR_CANCELLED);
    CHECK(job.text.pieces == 1);
    /* Still usable, and a cancel with nothing running does not affect the next call. */
    EXPECT_STATUS(luhd_session_cancel(job.session), LUHD_OK);
    luhd_sampling_params sp = sampling(2);
    luhd_chat_stats st = {.struct_size = sizeof st};
    EXPECT_STATUS(luhd_session_chat(job.session, "Hi", -1, NULL, 0, &sp, NULL, NULL, NULL, NULL, &st), LUHD_OK);
    CHECK(st.stop_reason == LUHD_STOP_MAX_TOKENS || st.stop_reason == LUHD_STOP_EOS);
    luhd_session_free(job.session);
}

static void test_eval_logits_sample(luhd_model *m, luhd_image *img) {
    luhd_session *s = new_session(m, 0, NULL);
    const float *logits = NULL;
    int32_t n_vocab = 0, token = -1, used = -1;
    luhd_sampling_params sp = luhd_sampling_default_params();
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_ERR_INVALID_ARGUMENT); /* nothing evaluated */
    EXPECT_STATUS(luhd_session_sample(s, &sp, &token), LUHD_ERR_INVALID_ARGUMENT);

    int32_t ids[4] = {1, 415, 5565, 302};
    const luhd_image *images[2] = {img, img};
    EXPECT_STATUS(luhd_session_eval(NULL, ids, 4, NULL, 0), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_eval(s, NULL, 4, NULL, 0), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_eval(s, ids, 0, NULL, 0), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_eval(s, ids, 4, NULL, 1), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_eval(s, ids, 4, images, -1), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_eval(s, ids, 4, images, 1), LUHD_ERR_INVALID_ARGUMENT); /* no marker */
    int32_t two_markers[4] = {1, LUHD_IMAGE_TOKEN, LUHD_IMAGE_TOKEN, 302};
    EXPECT_STATUS(luhd_session_eval(s, two_markers, 4, images, 1), LUHD_ERR_INVALID_ARGUMENT);
    int32_t outside[3][2] = {{1, 32000}, {1, -1}, {1, INT32_MAX}};
    for (int i = 0; i < 3; i++) {
        EXPECT_STATUS(luhd_session_eval(s, outside[i], 2, NULL, 0), LUHD_ERR_INVALID_ARGUMENT);
        CHECK(strstr(luhd_last_error(), "vocabulary") != NULL);
    }
    luhd_session_context(s, &used, NULL);
    CHECK(used == 0);

    EXPECT_STATUS(luhd_session_eval(s, ids, 4, NULL, 0), LUHD_OK);
    EXPECT_STATUS(luhd_session_logits(NULL, &logits, &n_vocab), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_logits(s, NULL, &n_vocab), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_logits(s, &logits, NULL), LUHD_OK);
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_OK);
    CHECK(logits != NULL && n_vocab == 32000);
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; i++) if (logits[i] > logits[best]) best = i;
    EXPECT_STATUS(luhd_session_sample(NULL, &sp, &token), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_sample(s, &sp, NULL), LUHD_ERR_INVALID_ARGUMENT);
    luhd_sampling_params bad = sp;
    bad.struct_size = 0;
    EXPECT_STATUS(luhd_session_sample(s, &bad, &token), LUHD_ERR_INVALID_ARGUMENT);
    bad = sp;
    bad.temperature = -0.5f;
    EXPECT_STATUS(luhd_session_sample(s, &bad, &token), LUHD_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(luhd_session_sample(s, &sp, &token), LUHD_OK);
    CHECK(token == best);
    EXPECT_STATUS(luhd_session_sample(s, NULL, &token), LUHD_OK); /* NULL: defaults, greedy */
    CHECK(token == best);
    luhd_sampling_params hot = sp;
    hot.temperature = 0.9f;
    hot.top_k = 1;
    EXPECT_STATUS(luhd_session_sample(s, &hot, &token), LUHD_OK);
    CHECK(token == best);
    EXPECT_STATUS(luhd_session_eval(s, &token, 1, NULL, 0), LUHD_OK);
    luhd_session_context(s, &used, NULL);
    CHECK(used == 5);

    /* An image where the marker is: the context grows by the image's positions. */
    EXPECT_STATUS(luhd_session_reset(s), LUHD_OK);
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_ERR_INVALID_ARGUMENT);
    int32_t with_image[4] = {1, LUHD_IMAGE_TOKEN, 13, 1824};
    EXPECT_STATUS(luhd_session_eval(s, with_image, 4, images, 1), LUHD_OK);
    luhd_session_context(s, &used, NULL);
    CHECK(used == 3 + 144);
    EXPECT_STATUS(luhd_session_logits(s, &logits, &n_vocab), LUHD_OK);
    luhd_session_free(s);
}

/* LUHD_PRECISION_FAST (today bf16 products): a prompt longer than the matrix-vector threshold gives the float32 logits within
 * the error of rounding activations to bf16 (2^-9 relative each; 2e-2 of the largest logit over
 * the tiny model's layers), whether or not this CPU has AVX512_BF16. */
static void test_precision_fast(const char *model_dir, luhd_model *exact) {
    luhd_model_params p = luhd_model_default_params();
    p.precision = LUHD_PRECISION_FAST;
    luhd_model *m = NULL;
    EXPECT_STATUS(luhd_model_load(model_dir, &p, &m), LUHD_OK);
    if (!m) return;
    enum { n = 200 };
    int32_t ids[n];
    for (int i = 0; i < n; i++) ids[i] = i == 0 ? 1 : 100 + (i * 7919) % 31000;
    luhd_session *a = new_session(exact, 0, NULL), *b = new_session(m, 0, NULL);
    EXPECT_STATUS(luhd_session_eval(a, ids, n, NULL, 0), LUHD_OK);
    EXPECT_STATUS(luhd_session_eval(b, ids, n, NULL, 0), LUHD_OK);
    const float *la = NULL, *lb = NULL;
    int32_t va = 0, vb = 0;
    EXPECT_STATUS(luhd_session_logits(a, &la, &va), LUHD_OK);
    EXPECT_STATUS(luhd_session_logits(b, &lb, &vb), LUHD_OK);
    CHECK(la && lb && va == vb && va > 0);
    if (la && lb && va == vb) {
        float largest = 0, diff = 0;
        for (int i = 0; i < va; i++) {
            largest = fmaxf(largest, fabsf(la[i]));
            diff = fmaxf(diff, fabsf(la[i] - lb[i]));
        }
        CHECK(largest > 0 && diff <= 2e-2f * largest);
    }
    luhd_session_free(a);
    luhd_session_free(b);
    luhd_model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ASSETS_DIR REPO_DIR\n", argv[0]);
        return 2;
    }
    char *model_dir = path_join(argv[1], "models/small-noslice");
    char *image_path = path_join(argv[2], "Tests/Fixtures/upstream/small-noslice/input.png");

    test_versions_and_status();
    test_out_of_memory(argv[1]); /* first: the fork happens before the library starts threads */
    test_logging(model_dir);
    luhd_log_set(NULL, NULL, LUHD_LOG_NONE); /* the expected failures below need no log lines */
    test_models(model_dir);
    test_bad_tokenizer(model_dir);
    test_images(image_path, argv[2]);

    luhd_model *m = NULL;
    luhd_image *img = NULL;
    EXPECT_STATUS(luhd_model_load(model_dir, NULL, &m), LUHD_OK);
    EXPECT_STATUS(luhd_image_load_file(image_path, NULL, &img), LUHD_OK);
    if (m && img) {
        test_tokenizer(m);
        test_qwen2_tokenizer(argv[1]);
        test_stages(m, img);
        test_sessions(m);
        test_chat(m, img);
        test_context_full(m, img);
        test_abort_callbacks(m, img);
        test_cancel_from_another_thread(m);
        test_eval_logits_sample(m, img);
        test_precision_fast(model_dir, m);
    }
    test_session_outlives_model(model_dir);
    luhd_image_free(img);
    luhd_model_free(m);
    luhd_log_set(NULL, NULL, LUHD_LOG_WARNING);
    free(model_dir);
    free(image_path);
    printf("abi_test: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
