#ifndef CLLAVAUHD_THREAD_DEPTH_H
#define CLLAVAUHD_THREAD_DEPTH_H
/* A per-thread counter of log deliveries in progress on the calling thread, so that
 * luhd_log_set can refuse to run from inside a log callback (it would wait for itself).
 * Swift has no thread-local storage of its own without Foundation. */
int luhd_log_delivery_depth(void);
void luhd_log_delivery_adjust(int delta);
#endif
