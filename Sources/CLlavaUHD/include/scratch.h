#ifndef CLLAVAUHD_SCRATCH_H
#define CLLAVAUHD_SCRATCH_H

#include <stddef.h>

/* A per-thread scratch buffer of at least `bytes` bytes, 64-byte aligned, reused across calls
 * (grown when needed, freed when the thread exits). Valid until the next call on the same
 * thread; callers must not hold it across code that may also use it. NULL if out of memory. */
void *luhd_thread_scratch(size_t bytes);

#endif
