/* threads: one model shared by several threads, each with its own session, all answering the
 * same question about the same image. Prints the answers and checks that they are identical to
 * the answer of a run made first on the main thread, alone.
 *
 *   ./threads MODEL_DIR IMAGE "QUESTION" [N_THREADS] [MAX_NEW_TOKENS]
 *
 * A luhd_model and a luhd_image may be shared by any number of threads; a luhd_session is used
 * by one thread at a time. Exits 1 if an answer differs or a call fails. */
#include <llavauhd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const luhd_model *model;
    const luhd_image *image;
    const char *question;
    int32_t max_new_tokens;
    luhd_status status;
    char *answer; /* from luhd_session_chat, freed with luhd_string_free */
    char error[256];
} job;

static void *answer(void *arg) {
    job *j = arg;
    luhd_session *session = NULL;
    j->status = luhd_session_create(j->model, NULL, &session);
    if (j->status == LUHD_OK) {
        luhd_sampling_params sampling = luhd_sampling_default_params();
        sampling.max_new_tokens = j->max_new_tokens;
        const luhd_image *images[1] = {j->image};
        j->status = luhd_session_chat(session, j->question, -1, images, 1, &sampling, NULL, NULL, &j->answer, NULL, NULL);
    }
    if (j->status != LUHD_OK) snprintf(j->error, sizeof j->error, "%s", luhd_last_error()); /* per thread */
    luhd_session_free(session);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE \"QUESTION\" [N_THREADS] [MAX_NEW_TOKENS]\n", argv[0]);
        return 2;
    }
    int n_threads = argc > 4 ? atoi(argv[4]) : 3;
    int32_t max_new_tokens = argc > 5 ? atoi(argv[5]) : 16;
    if (n_threads < 1 || n_threads > 64) {
        fprintf(stderr, "N_THREADS must be 1 to 64\n");
        return 2;
    }
    luhd_model *model = NULL;
    luhd_image *image = NULL;
    luhd_status st = luhd_model_load(argv[1], NULL, &model);
    if (st == LUHD_OK) st = luhd_image_load_file(argv[2], NULL, &image);
    if (st != LUHD_OK) {
        fprintf(stderr, "%s\n", luhd_last_error());
        luhd_model_free(model);
        return 1;
    }

    job reference = {model, image, argv[3], max_new_tokens, LUHD_OK, NULL, ""};
    answer(&reference);
    int rc = 0;
    if (reference.status != LUHD_OK) {
        fprintf(stderr, "sequential run: %s\n", reference.error);
        rc = 1;
    } else {
        printf("sequential: %s\n", reference.answer);
        job *jobs = calloc((size_t)n_threads, sizeof *jobs);
        pthread_t *threads = calloc((size_t)n_threads, sizeof *threads);
        for (int i = 0; i < n_threads; i++) {
            jobs[i] = reference;
            jobs[i].answer = NULL;
            pthread_create(&threads[i], NULL, answer, &jobs[i]);
        }
        for (int i = 0; i < n_threads; i++) pthread_join(threads[i], NULL);
        for (int i = 0; i < n_threads; i++) {
            if (jobs[i].status != LUHD_OK) {
                printf("thread %d: %s: %s\n", i, luhd_status_string(jobs[i].status), jobs[i].error);
                rc = 1;
            } else {
                int same = strcmp(jobs[i].answer, reference.answer) == 0;
                printf("thread %d: %s%s\n", i, jobs[i].answer, same ? "" : "   <-- DIFFERS");
                if (!same) rc = 1;
            }
            luhd_string_free(jobs[i].answer);
        }
        free(jobs);
        free(threads);
        printf(rc == 0 ? "all %d threads gave the sequential answer\n" : "threads: MISMATCH over %d threads\n",
               n_threads);
    }
    luhd_string_free(reference.answer);
    luhd_image_free(image);
    luhd_model_free(model);
    return rc;
}
