/* soak: many chat turns over several sessions that share one model, on several threads, with
 * cancels and resets mixed in; prints the process's resident memory, open file descriptors and
 * thread count at the start, along the way and at the end (they should stay flat). A
 * benchmark-style program (`make soak`), not a timed test: it fails only when a call returns a
 * status the header does not document for what was done.
 *
 *   ./soak MODEL_DIR IMAGE [TURNS] [SESSIONS] [THREADS] [MAX_NEW_TOKENS]
 *          (defaults 1000 turns, 8 sessions, 2 threads, 8 new tokens)
 *
 * Thread rules followed: the model and the image are shared by every thread; each session
 * belongs to one worker thread (session i to worker i % THREADS), except luhd_session_cancel,
 * which a separate canceller thread calls on any session at any time, as the header allows.
 * The turn mix (turn number t, counted over all sessions):
 *   - every 3rd turn sends the image with the question ("<image>" placement by default);
 *   - every 11th turn first resets its session (luhd_session_reset);
 *   - every 7th turn is cancelled from inside, by its abort callback at the 3rd poll;
 *   - the canceller thread calls luhd_session_cancel on a session every ~500 ms;
 *   - a turn that does not fit (LUHD_ERR_CONTEXT_FULL) resets its session and is counted;
 *   - every library message, at debug level, goes to a counting log callback (luhd_log_set),
 *     so that logging happens from all threads at once.
 * Accepted statuses: LUHD_OK, LUHD_ERR_CANCELLED, LUHD_ERR_CONTEXT_FULL. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c11 */
#include <llavauhd.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_SESSIONS = 64, MAX_THREADS = 16 };

typedef struct {
    luhd_session *session;
    atomic_int abort_polls; /* > 0: the abort callback counts down and cancels at 1 */
} session_slot;

static const luhd_model *g_model;
static const luhd_image *g_image;
static session_slot g_slots[MAX_SESSIONS];
static int g_sessions, g_threads, g_turns, g_max_new_tokens;
static atomic_int g_next_turn, g_done_turns, g_stop;
static atomic_long g_log_messages, g_ok, g_cancelled, g_context_full, g_resets, g_failed, g_tokens, g_external_cancels;
static pthread_mutex_t g_print_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const questions[] = {
    "What is in the picture?", "Describe the colours.", "Say hello.",
    "Count to five.", "What animal is this?", "Write one word.",
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Resident memory (MB) from /proc/self/statm, open descriptors from /proc/self/fd, threads
 * from /proc/self/status. */
static void print_figures(const char *when, double start) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
        fclose(f);
    }
    int fds = -1; /* not counting the descriptor of the listing itself */
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));) if (e->d_name[0] != '.') fds++;
        closedir(d);
    }
    int threads = -1;
    char line[256];
    f = fopen("/proc/self/status", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) if (sscanf(line, "Threads: %d", &threads) == 1) break;
        fclose(f);
    }
    pthread_mutex_lock(&g_print_lock);
    printf("%-10s turns %5d  rss %7.1f MB  fds %3d  threads %3d  ok %4ld  cancelled %4ld  context-full %3ld  "
           "resets %4ld  tokens %6ld  %6.1f s\n",
           when, atomic_load(&g_done_turns), resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0, fds, threads,
           atomic_load(&g_ok), atomic_load(&g_cancelled), atomic_load(&g_context_full), atomic_load(&g_resets),
           atomic_load(&g_tokens), now() - start);
    fflush(stdout);
    pthread_mutex_unlock(&g_print_lock);
}

static void count_log(luhd_log_level level, const char *message, void *user_data) {
    (void)level; (void)message; (void)user_data;
    atomic_fetch_add(&g_log_messages, 1);
}

static bool abort_at_third_poll(void *user_data) {
    session_slot *slot = user_data;
    int left = atomic_load(&slot->abort_polls);
    if (left <= 0) return false;
    return atomic_fetch_sub(&slot->abort_polls, 1) == 1;
}

static bool count_piece(const char *piece, size_t length, void *user_data) {
    (void)piece; (void)length; (void)user_data;
    atomic_fetch_add(&g_tokens, 1);
    return true;
}

static void fail(int turn, const char *what, luhd_status st) {
    atomic_fetch_add(&g_failed, 1);
    pthread_mutex_lock(&g_print_lock);
    fprintf(stderr, "turn %d: %s: %s: %s\n", turn, what, luhd_status_string(st), luhd_last_error());
    pthread_mutex_unlock(&g_print_lock);
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    luhd_sampling_params sampling = luhd_sampling_default_params();
    sampling.max_new_tokens = g_max_new_tokens;
    for (;;) {
        /* Turns are handed out in order; this worker takes the ones of its own sessions. */
        int t = atomic_fetch_add(&g_next_turn, 1);
        if (t >= g_turns) break;
        int s = t % g_sessions;
        if (s % g_threads != me) {
            /* Another worker's session: give the turn back by running one of ours instead. */
            s = (s / g_threads) * g_threads + me;
            if (s >= g_sessions) s = me;
        }
        session_slot *slot = &g_slots[s];
        if (t % 11 == 0) {
            luhd_status st = luhd_session_reset(slot->session);
            if (st != LUHD_OK) fail(t, "reset", st);
            atomic_fetch_add(&g_resets, 1);
        }
        atomic_store(&slot->abort_polls, t % 7 == 0 ? 3 : 0);
        const luhd_image *images[1] = {g_image};
        int n_images = t % 3 == 0 ? 1 : 0;
        char *answer = NULL;
        luhd_status st = luhd_session_chat(slot->session, questions[t % 6], -1, images, n_images, &sampling,
                                           count_piece, NULL, &answer, NULL, NULL);
        atomic_store(&slot->abort_polls, 0);
        luhd_string_free(answer);
        if (st == LUHD_OK) {
            atomic_fetch_add(&g_ok, 1);
        } else if (st == LUHD_ERR_CANCELLED) {
            atomic_fetch_add(&g_cancelled, 1);
        } else if (st == LUHD_ERR_CONTEXT_FULL) {
            if (atomic_fetch_add(&g_context_full, 1) == 0) {
                pthread_mutex_lock(&g_print_lock);
                printf("first context-full turn (%d): %s\n", t, luhd_last_error());
                pthread_mutex_unlock(&g_print_lock);
            }
            luhd_status r = luhd_session_reset(slot->session);
            if (r != LUHD_OK) fail(t, "reset", r);
            atomic_fetch_add(&g_resets, 1);
        } else {
            fail(t, "chat", st);
        }
        atomic_fetch_add(&g_done_turns, 1);
    }
    return NULL;
}

/* Cancels some session every ~500 ms, whether or not it is busy. */
static void *canceller(void *arg) {
    (void)arg;
    unsigned k = 0;
    while (!atomic_load(&g_stop)) {
        struct timespec pause = {0, 500 * 1000 * 1000};
        nanosleep(&pause, NULL);
        luhd_status st = luhd_session_cancel(g_slots[k++ % (unsigned)g_sessions].session);
        if (st != LUHD_OK) fail(-1, "cancel", st);
        atomic_fetch_add(&g_external_cancels, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE [TURNS] [SESSIONS] [THREADS] [MAX_NEW_TOKENS]\n", argv[0]);
        return 2;
    }
    g_turns = argc > 3 ? atoi(argv[3]) : 1000;
    g_sessions = argc > 4 ? atoi(argv[4]) : 8;
    g_threads = argc > 5 ? atoi(argv[5]) : 2;
    g_max_new_tokens = argc > 6 ? atoi(argv[6]) : 8;
    if (g_turns < 1 || g_sessions < 1 || g_sessions > MAX_SESSIONS || g_threads < 1 || g_threads > MAX_THREADS ||
        g_threads > g_sessions || g_max_new_tokens < 1) {
        fprintf(stderr, "soak: TURNS >= 1, 1 <= THREADS <= SESSIONS <= %d, THREADS <= %d, MAX_NEW_TOKENS >= 1\n",
                MAX_SESSIONS, MAX_THREADS);
        return 2;
    }
    double start = now();
    print_figures("start", start);
    luhd_log_set(count_log, NULL, LUHD_LOG_DEBUG);

    luhd_model_params mp = luhd_model_default_params();
    mp.n_threads = 1; /* each worker computes on its own thread: THREADS threads in all */
    luhd_model *model = NULL;
    luhd_image *image = NULL;
    luhd_status st = luhd_model_load(argv[1], &mp, &model);
    if (st == LUHD_OK) st = luhd_image_load_file(argv[2], NULL, &image);
    if (st != LUHD_OK) {
        fprintf(stderr, "soak: %s: %s\n", luhd_status_string(st), luhd_last_error());
        luhd_model_free(model);
        return 1;
    }
    g_model = model;
    g_image = image;
    for (int i = 0; i < g_sessions; i++) {
        luhd_session_params sp = luhd_session_default_params();
        sp.n_ctx = 2048; /* an image turn of the tiny models takes about 1080 positions */
        sp.image_cache_size = 1;
        sp.abort_callback = abort_at_third_poll;
        sp.abort_user_data = &g_slots[i];
        st = luhd_session_create(g_model, &sp, &g_slots[i].session);
        if (st != LUHD_OK) {
            fprintf(stderr, "soak: session %d: %s: %s\n", i, luhd_status_string(st), luhd_last_error());
            return 1;
        }
    }
    printf("soak: %d turns, %d sessions on one model, %d threads, %d new tokens per turn\n", g_turns, g_sessions,
           g_threads, g_max_new_tokens);
    print_figures("loaded", start);

    pthread_t workers[MAX_THREADS], cancel_thread;
    for (int i = 0; i < g_threads; i++) pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
    pthread_create(&cancel_thread, NULL, canceller, NULL);
    int next_report = g_turns / 10;
    while (atomic_load(&g_done_turns) < g_turns && atomic_load(&g_failed) == 0) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        if (next_report > 0 && atomic_load(&g_done_turns) >= next_report) {
            print_figures("running", start);
            next_report += g_turns / 10;
        }
    }
    for (int i = 0; i < g_threads; i++) pthread_join(workers[i], NULL);
    atomic_store(&g_stop, 1);
    pthread_join(cancel_thread, NULL);
    print_figures("turns done", start);

    for (int i = 0; i < g_sessions; i++) luhd_session_free(g_slots[i].session);
    luhd_image_free(image);
    luhd_model_free(model);
    print_figures("freed", start);
    luhd_log_set(NULL, NULL, LUHD_LOG_WARNING);
    printf("soak: %ld external cancels, %ld log messages; %ld failed calls\n", atomic_load(&g_external_cancels),
           atomic_load(&g_log_messages), atomic_load(&g_failed));
    return atomic_load(&g_failed) == 0 ? 0 : 1;
}
