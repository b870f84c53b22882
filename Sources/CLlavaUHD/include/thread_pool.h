#ifndef CLLAVAUHD_THREAD_POOL_H
#define CLLAVAUHD_THREAD_POOL_H

/* A process-wide pool of worker threads for data-parallel loops.
 *
 * luhd_parallel_for(n, threads, fn, ctx) calls fn(ctx, i) for every i in [0, n), using up to
 * `threads` threads including the caller, and returns when all calls are done. Tasks are handed
 * out dynamically; callers must make each task write disjoint memory so that the result does
 * not depend on which thread ran which task. When another thread is already running a
 * parallel loop, the caller runs its own loop alone rather than waiting (sessions on different
 * threads then each use one core). Nested calls from inside a task run inline. */
typedef void (*luhd_task_fn)(void *ctx, long index);
void luhd_parallel_for(long n, int threads, luhd_task_fn fn, void *ctx);
/* Number of online CPUs (at least 1). */
int luhd_cpu_count(void);
#endif
