#ifndef CLLAVAUHD_THREAD_POOL_H
#define CLLAVAUHD_THREAD_POOL_H

/* A process-wide pool of worker threads for data-parallel loops.
 *
 * luhd_parallel_for(n, threads, fn, ctx) calls fn(ctx, i) exactly once for every i in [0, n),
 * using up to `threads` threads including the caller, and returns when all calls are done
 * (their writes are then visible to the caller). Tasks are handed out dynamically; callers
 * make each task write disjoint memory with a fixed arithmetic order, so that results do not
 * depend on which thread ran which task, nor on `threads`.
 *
 * One loop runs on the pool at a time. A caller that finds the pool busy (another thread's
 * loop is running) runs its own loop alone, inline, rather than waiting: sessions on different
 * threads then each keep making progress. Calls from inside a task (nested loops) run inline.
 * Workers are started on first need, never exit, and block all signals. */

typedef void (*luhd_task_fn)(void *ctx, long index);

void luhd_parallel_for(long n, int threads, luhd_task_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int luhd_cpu_count(void);

/* Number of worker threads started so far (the callers' own threads not counted). */
int luhd_pool_workers(void);

#endif
