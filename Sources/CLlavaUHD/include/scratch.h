#ifndef CLLAVAUHD_SCRATCH_H
#define CLLAVAUHD_SCRATCH_H

#include <stddef.h>

/* A per-thread scratch buffer of at least `bytes` bytes, 64-byte aligned, reused across calls
 * (grown when needed, freed when the thread exits). Valid until the next call on the same
 * thread; callers must not hold it across code that may also use it. NULL if out of memory. */
void *luhd_thread_scratch(size_t bytes);

/* Independent per-thread scratch buffers: slot 0 is luhd_thread_scratch's; slot 1 holds data a
 * caller shares with the parallel tasks it runs (which may run on the calling thread and use
 * slot 0 themselves). NULL if out of memory or slot is not below LUHD_SCRATCH_SLOTS. */
#define LUHD_SCRATCH_SLOTS 2
void *luhd_thread_scratch_slot(int slot, size_t bytes);

/* 1 if `bytes` bytes can be allocated right now, 0 if not: the memory is reserved and handed
 * back at once (no page is touched). Written in C with a volatile result so that the compiler
 * cannot drop the malloc/free pair and assume success, which the optimiser does to such a
 * pair in Swift. Used by Allocation.swift before an input-sized Swift array is made. */
int luhd_can_allocate(size_t bytes);

/* Advises the kernel (madvise MADV_HUGEPAGE) that the whole 2 MB stretches inside
 * [p, p + bytes) may be backed by transparent huge pages: for a large buffer allocated fresh on
 * every call, before its first touch (one fault per 2 MB instead of one per 4 KB). Does nothing
 * where the system has no such advice; failures are ignored (the advice changes no value). */
void luhd_advise_huge_pages(void *p, size_t bytes);

#endif
