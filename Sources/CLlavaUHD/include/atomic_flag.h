#ifndef CLLAVAUHD_ATOMIC_FLAG_H
#define CLLAVAUHD_ATOMIC_FLAG_H

/* A flag one thread raises and another polls (cancellation of a running computation).
 * Sequentially consistent loads and stores on a plain int, so Swift needs neither the
 * Synchronization module nor _Concurrency. */
int luhd_flag_load(const int *flag);
void luhd_flag_store(int *flag, int value);
#endif
