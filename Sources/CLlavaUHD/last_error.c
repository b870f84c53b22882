#include "last_error.h"
#include "../../include/llavauhd.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One heap buffer per thread, freed when the thread exits. */
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void make_key(void) { pthread_key_create(&key, free); }

void luhd_set_last_error(const char *message) {
    pthread_once(&key_once, make_key);
    size_t n = strlen(message);
    char *copy = malloc(n + 1);
    if (!copy) return;   /* keep the previous message rather than fail */
    memcpy(copy, message, n + 1);
    free(pthread_getspecific(key));
    pthread_setspecific(key, copy);
}

LUHD_API const char *luhd_last_error(void) {
    pthread_once(&key_once, make_key);
    const char *m = pthread_getspecific(key);
    return m ? m : "";
}
