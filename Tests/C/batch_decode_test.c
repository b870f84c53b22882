/* Batched decoding through the C ABI (luhd_model_params.max_decode_batch): sessions of one
 * model decoding at the same time on their own threads (pthreads) share passes over the
 * weights, and every session's greedy tokens and every step's logits are bit for bit the ones a
 * model loaded with max_decode_batch 1 (no batching) gives it alone. Each session has its own
 * prompt. While batched, one session is cancelled by another thread (luhd_session_cancel) and
 * then freed, and another stops early and frees its session: the
 * cancelled step returns LUHD_ERR_CANCELLED, and the remaining sessions' results do not change
 * and nothing hangs. max_decode_batch 0 or 65 is refused; a caller built against the struct
 * without the field (smaller struct_size) gets the default, 8.
 *
 * Usage: batch_decode_test MODEL_DIR */
#define _POSIX_C_SOURCE 200809L
#include <llavauhd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SESSIONS 4
#define STEPS 12

static int failures;
static pthread_mutex_t report = PTHREAD_MUTEX_INITIALIZER;
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            pthread_mutex_lock(&report);                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    luhd_last_error());                                                        \
            failures++;                                                                        \
            pthread_mutex_unlock(&report);                                                     \
        }                                                                                      \
    } while (0)

static const char *prompts[SESSIONS] = {"USER: Hello there", "USER: What is the colour of the sky? ASSISTANT:",
                                        "A", "USER: Count to ten please"};

typedef struct {
    const luhd_model *model;
    int index;
    int steps;              /* steps to decode (fewer for the early stopper) */
    atomic_int *prefilled;  /* the victim's: set when its prompt is evaluated */
    atomic_int *finished;   /* the victim's: set when its loop ends */
    atomic_int *cancels_done; /* the victim's: it frees its session once the canceller stopped */
    luhd_token tokens[STEPS];
    float *logits;          /* (STEPS + 1) x n_vocab */
    int32_t n_vocab;
    int done;               /* steps completed */
    int cancelled;          /* a step returned LUHD_ERR_CANCELLED */
    luhd_session *session;  /* created by the caller (the victim is known to the canceller) */
} job;

static void *decode(void *arg) {
    job *j = arg;
    luhd_token ids[64];
    int32_t n = 0;
    const char *p = prompts[j->index];
    CHECK(luhd_model_tokenize(j->model, p, -1, true, false, ids, 64, &n) == LUHD_OK);
    CHECK(luhd_session_eval(j->session, ids, n, NULL, 0) == LUHD_OK);
    const float *logits = NULL;
    CHECK(luhd_session_logits(j->session, &logits, &j->n_vocab) == LUHD_OK);
    if (logits) memcpy(j->logits, logits, sizeof(float) * (size_t)j->n_vocab);
    if (j->prefilled) atomic_store(j->prefilled, 1);
    if (!logits) j->steps = 0;
    luhd_sampling_params sampling = luhd_sampling_default_params();
    for (int s = 0; s < j->steps; s++) {
        luhd_token t = 0;
        CHECK(luhd_session_sample(j->session, &sampling, &t) == LUHD_OK);
        luhd_status st = luhd_session_eval(j->session, &t, 1, NULL, 0);
        if (st == LUHD_ERR_CANCELLED) {
            j->cancelled = 1;
            break;
        }
        CHECK(st == LUHD_OK);
        if (st != LUHD_OK) break;
        j->done = s + 1;
        if (s >= STEPS) continue; /* the victim goes on (unrecorded) until it is cancelled */
        j->tokens[s] = t;
        CHECK(luhd_session_logits(j->session, &logits, NULL) == LUHD_OK);
        memcpy(j->logits + (size_t)(s + 1) * (size_t)j->n_vocab, logits, sizeof(float) * (size_t)j->n_vocab);
    }
    /* The victim's session must outlive the canceller's calls (which must not overlap its free). */
    if (j->finished) {
        atomic_store(j->finished, 1);
        while (!atomic_load(j->cancels_done)) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    luhd_session_free(j->session);
    j->session = NULL;
    return NULL;
}

typedef struct {
    luhd_session *victim;
    atomic_int *prefilled, *finished, *cancels_done;
} canceller;

/* Cancels the victim every 0.2 ms from the end of its prompt until its loop ends: one cancel
 * lands inside a step. */
static void *cancel_repeatedly(void *arg) {
    canceller *c = arg;
    while (!atomic_load(c->prefilled)) nanosleep(&(struct timespec){0, 200000}, NULL);
    while (!atomic_load(c->finished)) {
        CHECK(luhd_session_cancel(c->victim) == LUHD_OK);
        nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    atomic_store(c->cancels_done, 1);
    return NULL;
}

static luhd_model *load(const char *dir, int32_t max_batch) {
    luhd_model_params p = luhd_model_default_params();
    p.n_threads = 2;
    p.max_decode_batch = max_batch;
    luhd_model *m = NULL;
    CHECK(luhd_model_load(dir, &p, &m) == LUHD_OK);
    return m;
}

static void make_job(job *j, const luhd_model *model, int index, int steps) {
    memset(j, 0, sizeof *j);
    j->model = model;
    j->index = index;
    j->steps = steps;
    luhd_model_properties props;
    props.struct_size = sizeof props;
    CHECK(luhd_model_get_properties(model, &props) == LUHD_OK);
    j->logits = calloc((size_t)(STEPS + 1) * (size_t)props.vocab_size, sizeof(float));
    CHECK(luhd_session_create(model, NULL, &j->session) == LUHD_OK);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    /* Parameters. */
    luhd_model_params p = luhd_model_default_params();
    CHECK(p.max_decode_batch == 8);
    luhd_model *bad = NULL;
    p.max_decode_batch = 0;
    CHECK(luhd_model_load(argv[1], &p, &bad) == LUHD_ERR_INVALID_ARGUMENT && bad == NULL);
    CHECK(strstr(luhd_last_error(), "max_decode_batch") != NULL);
    p.max_decode_batch = 65;
    CHECK(luhd_model_load(argv[1], &p, &bad) == LUHD_ERR_INVALID_ARGUMENT && bad == NULL);
    p.max_decode_batch = 0; /* beyond the older struct_size: never read */
    p.struct_size = offsetof(luhd_model_params, max_decode_batch);
    CHECK(luhd_model_load(argv[1], &p, &bad) == LUHD_OK);
    luhd_model_free(bad);

    /* Alone, without batching. */
    luhd_model *serial = load(argv[1], 1);
    luhd_model *batched = load(argv[1], 8);
    if (!serial || !batched) return 1;
    job expected[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) {
        make_job(&expected[i], serial, i, STEPS);
        decode(&expected[i]);
    }

    /* Together, batched (twice). Session 3 stops after 4 steps and frees its session while the
     * others decode. In the second round session 1 decodes on (up to 400 steps) while a fifth
     * thread cancels it every 0.2 ms (a cancel between two calls has no effect, one inside a
     * step stops it): a step returns LUHD_ERR_CANCELLED and session 1 stops and is freed. */
    for (int round = 0; round < 2; round++) {
        job jobs[SESSIONS];
        atomic_int prefilled = 0, finished = 0, cancels_done = 0;
        for (int i = 0; i < SESSIONS; i++) make_job(&jobs[i], batched, i, i == 3 ? 4 : STEPS);
        canceller c = {jobs[1].session, &prefilled, &finished, &cancels_done};
        pthread_t cancel_thread;
        if (round == 1) {
            jobs[1].steps = 400;
            jobs[1].prefilled = &prefilled;
            jobs[1].finished = &finished;
            jobs[1].cancels_done = &cancels_done;
            pthread_create(&cancel_thread, NULL, cancel_repeatedly, &c);
        }
        pthread_t threads[SESSIONS];
        for (int i = 0; i < SESSIONS; i++) pthread_create(&threads[i], NULL, decode, &jobs[i]);
        for (int i = 0; i < SESSIONS; i++) pthread_join(threads[i], NULL);
        if (round == 1) pthread_join(cancel_thread, NULL);
        for (int i = 0; i < SESSIONS; i++) {
            job *j = &jobs[i], *e = &expected[i];
            int victim = round == 1 && i == 1;
            CHECK(j->cancelled == victim);
            if (!victim) CHECK(j->done == j->steps);
            int recorded = j->done < STEPS ? j->done : STEPS;
            CHECK(j->n_vocab == e->n_vocab);
            for (int s = 0; s < recorded; s++) CHECK(j->tokens[s] == e->tokens[s]);
            CHECK(memcmp(j->logits, e->logits, sizeof(float) * (size_t)(recorded + 1) * (size_t)e->n_vocab) == 0);
            free(j->logits);
        }
        if (round == 1) printf("batch_decode_test: session 1 %s after %d steps\n",
                               jobs[1].cancelled ? "cancelled" : "not cancelled", jobs[1].done);
    }
    for (int i = 0; i < SESSIONS; i++) free(expected[i].logits);
    luhd_model_free(serial);
    luhd_model_free(batched);
    if (failures) {
        fprintf(stderr, "batch_decode_test: %d failures\n", failures);
        return 1;
    }
    printf("batch_decode_test: ok\n");
    return 0;
}
