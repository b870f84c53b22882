/* Batched decoding through the C ABI (luhd_model_params.max_decode_batch): sessions of one
 * model decoding at the same time on their own threads (pthreads) share passes over the
 * weights, and every session's greedy tokens and every step's logits are bit for bit the ones a
 * model loaded with max_decode_batch 1 (no batching) gives it alone. Each session has its own
 * prompt. While batched, one session is cancelled by another thread (luhd_session_cancel) and
 * then freed, and another stops early and frees its session: the
 * cancelled step returns LUHD_ERR_CANCELLED, and the remaining sessions' results do not change
 * and nothing hangs. max_decode_batch 0 or 65 is refused; a caller built against the struct
 * without the field (smaller struct_size) gets the default, 8. More sessions than
 * max_decode_batch (4 on a model with 2) decode at once with the same results. An abort
 * callback polled in the leader's pass that decodes with another session of the model (a nested
 * pass; it used to wait forever for the pass it is part of), resets an idle session and frees
 * another, on a model freed before the sessions: the nested steps give the logits of the same
 * steps on the unbatched model. A watchdog fails the test instead of letting it hang.
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
#include <unistd.h>

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

/* What the abort callback of the nesting session does, each time it is polled after `armed`
 * (up to NESTED times): one decode step of `other` (sampled greedily), a reset of `idle`, and a
 * free of `doomed` (the first time). */
#define NESTED 4
typedef struct {
    atomic_int armed;
    luhd_session *other, *idle, *doomed;
    int n_steps;                     /* nested steps done */
    luhd_token tokens[NESTED];
    luhd_status status[NESTED], reset_status;
    float *last_logits;              /* other's logits after its last nested step */
    int32_t n_vocab;
} nesting;

static bool nest_in_abort(void *user) {
    nesting *n = user;
    if (!atomic_load(&n->armed) || n->n_steps >= NESTED) return false;
    luhd_sampling_params greedy = luhd_sampling_default_params();
    luhd_token t = 0;
    luhd_status st = luhd_session_sample(n->other, &greedy, &t);
    if (st == LUHD_OK) st = luhd_session_eval(n->other, &t, 1, NULL, 0);
    n->tokens[n->n_steps] = t;
    n->status[n->n_steps] = st;
    n->n_steps++;
    const float *logits = NULL;
    if (st == LUHD_OK && luhd_session_logits(n->other, &logits, &n->n_vocab) == LUHD_OK)
        memcpy(n->last_logits, logits, sizeof(float) * (size_t)n->n_vocab);
    n->reset_status = luhd_session_reset(n->idle);
    if (n->doomed) {
        luhd_session_free(n->doomed);
        n->doomed = NULL;
    }
    return false;
}

static void *watchdog(void *arg) {
    (void)arg;
    sleep(300);
    fprintf(stderr, "batch_decode_test: still running after 300 s: a call hangs\n");
    _exit(1);
}

/* The nested decode (see nesting): `other` and the nesting session decode on the batched model,
 * the reference steps on the serial one. */
static void nested_pass(const char *dir, const luhd_model *serial) {
    luhd_model *model = load(dir, 8);
    if (!model) return;
    luhd_model_properties props;
    props.struct_size = sizeof props;
    CHECK(luhd_model_get_properties(model, &props) == LUHD_OK);
    luhd_token ids[64], other_ids[64];
    int32_t n = 0, n_other = 0;
    CHECK(luhd_model_tokenize(model, prompts[0], -1, true, false, ids, 64, &n) == LUHD_OK);
    CHECK(luhd_model_tokenize(model, prompts[1], -1, true, false, other_ids, 64, &n_other) == LUHD_OK);
    nesting nest;
    memset(&nest, 0, sizeof nest);
    nest.last_logits = calloc((size_t)props.vocab_size, sizeof(float));
    luhd_session_params sp = luhd_session_default_params();
    sp.abort_callback = nest_in_abort;
    sp.abort_user_data = &nest;
    luhd_session *nester = NULL;
    CHECK(luhd_session_create(model, &sp, &nester) == LUHD_OK);
    CHECK(luhd_session_create(model, NULL, &nest.other) == LUHD_OK);
    CHECK(luhd_session_create(model, NULL, &nest.idle) == LUHD_OK);
    CHECK(luhd_session_create(model, NULL, &nest.doomed) == LUHD_OK);
    luhd_model_free(model); /* the sessions keep it */
    if (!nester || !nest.other || !nest.idle) return;
    CHECK(luhd_session_eval(nest.other, other_ids, n_other, NULL, 0) == LUHD_OK);
    CHECK(luhd_session_eval(nest.idle, ids, n, NULL, 0) == LUHD_OK);
    CHECK(luhd_session_eval(nester, ids, n, NULL, 0) == LUHD_OK);
    atomic_store(&nest.armed, 1);
    luhd_sampling_params greedy = luhd_sampling_default_params();
    for (int s = 0; s < 3; s++) { /* one-position steps: the nesting session leads their passes */
        luhd_token t = 0;
        CHECK(luhd_session_sample(nester, &greedy, &t) == LUHD_OK);
        CHECK(luhd_session_eval(nester, &t, 1, NULL, 0) == LUHD_OK);
    }
    atomic_store(&nest.armed, 0);
    CHECK(nest.n_steps == NESTED);
    CHECK(nest.reset_status == LUHD_OK && nest.doomed == NULL);
    int32_t used = -1;
    CHECK(luhd_session_context(nest.idle, &used, NULL) == LUHD_OK && used == 0);
    for (int s = 0; s < nest.n_steps; s++) CHECK(nest.status[s] == LUHD_OK);

    /* The same steps of `other` on the unbatched model. */
    luhd_session *reference = NULL;
    CHECK(luhd_session_create(serial, NULL, &reference) == LUHD_OK);
    CHECK(luhd_session_eval(reference, other_ids, n_other, NULL, 0) == LUHD_OK);
    for (int s = 0; s < nest.n_steps; s++) {
        luhd_token t = 0;
        CHECK(luhd_session_sample(reference, &greedy, &t) == LUHD_OK);
        CHECK(t == nest.tokens[s]);
        CHECK(luhd_session_eval(reference, &t, 1, NULL, 0) == LUHD_OK);
    }
    const float *want = NULL;
    CHECK(luhd_session_logits(reference, &want, NULL) == LUHD_OK);
    if (want) CHECK(memcmp(want, nest.last_logits, sizeof(float) * (size_t)props.vocab_size) == 0);
    luhd_session_free(reference);
    luhd_session_free(nester);
    luhd_session_free(nest.other);
    luhd_session_free(nest.idle);
    free(nest.last_logits);
    printf("batch_decode_test: %d decode steps nested in an abort callback\n", nest.n_steps);
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

    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, NULL);
    pthread_detach(dog);

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

    /* More sessions than a pass takes: 4 sessions on a model batching at most 2. */
    luhd_model *pairs = load(argv[1], 2);
    if (pairs) {
        job jobs[SESSIONS];
        pthread_t threads[SESSIONS];
        for (int i = 0; i < SESSIONS; i++) make_job(&jobs[i], pairs, i, STEPS);
        for (int i = 0; i < SESSIONS; i++) pthread_create(&threads[i], NULL, decode, &jobs[i]);
        for (int i = 0; i < SESSIONS; i++) pthread_join(threads[i], NULL);
        for (int i = 0; i < SESSIONS; i++) {
            CHECK(jobs[i].done == STEPS && !jobs[i].cancelled);
            for (int s = 0; s < STEPS; s++) CHECK(jobs[i].tokens[s] == expected[i].tokens[s]);
            CHECK(memcmp(jobs[i].logits, expected[i].logits,
                         sizeof(float) * (size_t)(STEPS + 1) * (size_t)expected[i].n_vocab) == 0);
            free(jobs[i].logits);
        }
        luhd_model_free(pairs);
    }

    nested_pass(argv[1], serial);

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
