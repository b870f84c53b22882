#include "scratch.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

typedef struct scratch {
    void *data[LUHD_SCRATCH_SLOTS];
    size_t size[LUHD_SCRATCH_SLOTS];
} scratch;

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void release(void *p) {
    scratch *s = p;
    for (int i = 0; i < LUHD_SCRATCH_SLOTS; i++) free(s->data[i]);
    free(s);
}

static void make_key(void) { pthread_key_create(&key, release); }

void *luhd_thread_scratch(size_t bytes) { return luhd_thread_scratch_slot(0, bytes); }

void *luhd_thread_scratch_slot(int slot, size_t bytes) {
    if (slot < 0 || slot >= LUHD_SCRATCH_SLOTS) return NULL;
    pthread_once(&key_once, make_key);
    scratch *s = pthread_getspecific(key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->size[slot] < bytes) {
        size_t size = (bytes + 4095) & ~(size_t)4095;
        void *p = NULL;
        if (posix_memalign(&p, 64, size) != 0) return NULL;
        free(s->data[slot]);
        s->data[slot] = p;
        s->size[slot] = size;
    }
    return s->data[slot];
}

int luhd_can_allocate(size_t bytes) {
    void *volatile probe = malloc(bytes);
    int ok = probe != NULL;
    free(probe);
    return ok;
}

void luhd_advise_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    const uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}
