#define _GNU_SOURCE
#include "thread_pool.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_WORKERS 63
#define SPIN_ITERATIONS 20000

/* One job at a time runs on the pool. Workers sleep on `wake` between jobs, after spinning a
 * little so that the many short loops of token decoding do not pay a wake-up each. */
typedef struct job {
    luhd_task_fn fn;
    void *ctx;
    long n;
    atomic_long next;     /* next task index to hand out */
    atomic_long done;     /* tasks finished */
    int helpers;          /* workers allowed to join this job */
    int active;           /* workers inside run_tasks (under state_lock) */
} job;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;   /* held by the job's owner */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
static job *current;
static atomic_long generation;
static int n_workers;
static _Thread_local int inside_task;

static void run_tasks(job *j) {
    long i;
    while ((i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->n) {
        j->fn(j->ctx, i);
        if (atomic_fetch_add_explicit(&j->done, 1, memory_order_acq_rel) + 1 == j->n) {
            pthread_mutex_lock(&state_lock);
            pthread_cond_broadcast(&finished);
            pthread_mutex_unlock(&state_lock);
        }
    }
}

static void *worker_main(void *arg) {
    long id = (long)arg;
    long seen = 0;
    inside_task = 1;
    for (;;) {
        /* Spin briefly for the next generation, then sleep. */
        long g = atomic_load_explicit(&generation, memory_order_acquire);
        for (int s = 0; g == seen && s < SPIN_ITERATIONS; s++) {
            __builtin_ia32_pause();
            g = atomic_load_explicit(&generation, memory_order_acquire);
        }
        pthread_mutex_lock(&state_lock);
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
            pthread_cond_wait(&wake, &state_lock);
        job *j = current;
        if (j && id < j->helpers) j->active++;
        else j = NULL;
        pthread_mutex_unlock(&state_lock);
        seen = g;
        if (j) {
            run_tasks(j);
            pthread_mutex_lock(&state_lock);
            if (--j->active == 0) pthread_cond_broadcast(&finished);
            pthread_mutex_unlock(&state_lock);
        }
    }
    return NULL;
}

int luhd_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static void ensure_workers(int wanted) {
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    while (n_workers < wanted) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, (void *)(long)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;   /* fewer workers: the caller does more of the work */
        n_workers++;
    }
}

void luhd_parallel_for(long n, int threads, luhd_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (threads <= 1 || n == 1 || inside_task || pthread_mutex_trylock(&pool_lock) != 0) {
        for (long i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    ensure_workers(threads - 1);
    job j = {.fn = fn, .ctx = ctx, .n = n, .helpers = threads - 1, .active = 0};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    pthread_mutex_lock(&state_lock);
    current = &j;
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&state_lock);

    inside_task = 1;
    run_tasks(&j);
    inside_task = 0;

    for (int s = 0; atomic_load_explicit(&j.done, memory_order_acquire) < n && s < SPIN_ITERATIONS; s++)
        __builtin_ia32_pause();
    pthread_mutex_lock(&state_lock);
    /* The job lives on this stack frame: wait until no worker still holds it. */
    while (atomic_load_explicit(&j.done, memory_order_acquire) < n || j.active > 0)
        pthread_cond_wait(&finished, &state_lock);
    current = NULL;
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&pool_lock);
}
