#define _GNU_SOURCE
#include "thread_pool.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

/* A process-wide pool running one job at a time (see thread_pool.h for the contract).
 *
 * Job lifetime. A job lives on its owner's stack. The owner publishes it under `state_lock`
 * (current = &job, generation += 1) and takes part in it. A worker joins only under
 * `state_lock`, while `current` still points at the job, by incrementing `job.active`; it
 * leaves by decrementing `active` after its last access to the job. The owner returns only
 * after it has seen, under `state_lock`, that every task is done and no worker is inside
 * (done == n && active == 0), and it clears `current` in that same critical section, so no
 * worker can join afterwards. Task results are published to the owner by the acq_rel
 * increments of `done` (tasks) and `active` (workers leaving).
 *
 * Waiting. Workers spin (`pause`) for up to WORKER_SPIN_NS after a job, so the short loops of
 * token decoding do not pay a futex wake-up each, then sleep on `wake`. The owner spins up to
 * OWNER_SPIN_NS for stragglers, then sleeps on `finished`. Wake-ups are signalled only when
 * someone sleeps (`sleepers`, `owner_sleeping`, both under `state_lock`, so none is lost). */

#define MAX_WORKERS 63
#define WORKER_SPIN_NS 200000L     /* 0.2 ms */
#define OWNER_SPIN_NS 1000000L     /* 1 ms */

typedef struct job {
    luhd_task_fn fn;
    void *ctx;
    long n;
    int helpers;          /* workers 0 ..< helpers may join */
    atomic_long next;     /* next task index to hand out */
    atomic_long done;     /* tasks finished */
    atomic_int active;    /* workers inside the job */
} job;

static pthread_mutex_t owner_lock = PTHREAD_MUTEX_INITIALIZER;   /* held by the running job's owner */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
static job *current;                  /* state_lock */
static atomic_long generation;        /* written under state_lock; read by spinners as a hint */
static int sleepers;                  /* state_lock */
static int owner_sleeping;            /* state_lock */
static atomic_int n_workers;          /* written under owner_lock */
static _Thread_local int inside_task; /* set on workers and on an owner while it runs tasks */

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void notify_owner(void) {
    pthread_mutex_lock(&state_lock);
    if (owner_sleeping) pthread_cond_broadcast(&finished);
    pthread_mutex_unlock(&state_lock);
}

static void run_tasks(job *j, int is_owner) {
    long i;
    while ((i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->n) {
        j->fn(j->ctx, i);
        if (atomic_fetch_add_explicit(&j->done, 1, memory_order_acq_rel) + 1 == j->n && !is_owner) notify_owner();
    }
}

static void *worker_main(void *arg) {
    int id = (int)(long)arg;
    long seen = 0;
    inside_task = 1;
    for (;;) {
        long g = atomic_load_explicit(&generation, memory_order_acquire);
        if (g == seen) {
            long long deadline = now_ns() + WORKER_SPIN_NS;
            for (int s = 1; g == seen; s++) {
                __builtin_ia32_pause();
                g = atomic_load_explicit(&generation, memory_order_acquire);
                if ((s & 63) == 0 && now_ns() > deadline) break;
            }
        }
        pthread_mutex_lock(&state_lock);
        while ((g = atomic_load_explicit(&generation, memory_order_relaxed)) == seen) {
            sleepers++;
            pthread_cond_wait(&wake, &state_lock);
            sleepers--;
        }
        job *j = current;
        if (j && id < j->helpers) atomic_fetch_add_explicit(&j->active, 1, memory_order_relaxed);
        else j = NULL;
        pthread_mutex_unlock(&state_lock);
        seen = g;
        if (j) {
            run_tasks(j, 0);
            /* The last access to the job: after this the owner may return. */
            if (atomic_fetch_sub_explicit(&j->active, 1, memory_order_acq_rel) == 1) notify_owner();
        }
    }
    return NULL;
}

int luhd_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

int luhd_pool_workers(void) { return atomic_load_explicit(&n_workers, memory_order_relaxed); }

/* Starts workers up to `wanted` (called with owner_lock held). Workers block every signal, so
 * the host's handlers keep running on the host's threads. */
static void ensure_workers(int wanted) {
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    if (n_workers >= wanted) return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (n_workers < wanted) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, (void *)(long)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;   /* fewer workers: the owner does more of the work */
        pthread_setname_np(t, "luhd-worker");
        n_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int job_finished(job *j) {
    return atomic_load_explicit(&j->done, memory_order_acquire) == j->n &&
           atomic_load_explicit(&j->active, memory_order_acquire) == 0;
}

void luhd_parallel_for(long n, int threads, luhd_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (threads <= 1 || n == 1 || inside_task || pthread_mutex_trylock(&owner_lock) != 0) {
        for (long i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    long wanted = (threads < n ? threads : n) - 1;
    ensure_workers((int)wanted);
    int helpers = wanted < n_workers ? (int)wanted : n_workers;
    if (helpers == 0) {
        pthread_mutex_unlock(&owner_lock);
        for (long i = 0; i < n; i++) fn(ctx, i);
        return;
    }

    job j = {.fn = fn, .ctx = ctx, .n = n, .helpers = helpers};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.active, 0);

    pthread_mutex_lock(&state_lock);
    current = &j;
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    if (sleepers > 0) pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&state_lock);

    inside_task = 1;
    run_tasks(&j, 1);
    inside_task = 0;

    if (!job_finished(&j)) {
        long long deadline = now_ns() + OWNER_SPIN_NS;
        for (int s = 1; !job_finished(&j); s++) {
            __builtin_ia32_pause();
            if ((s & 63) == 0 && now_ns() > deadline) break;
        }
    }
    pthread_mutex_lock(&state_lock);
    while (!job_finished(&j)) {
        owner_sleeping = 1;
        pthread_cond_wait(&finished, &state_lock);
        owner_sleeping = 0;
    }
    current = NULL;
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(&owner_lock);
}
