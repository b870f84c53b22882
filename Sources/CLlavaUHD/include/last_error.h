#ifndef CLLAVAUHD_LAST_ERROR_H
#define CLLAVAUHD_LAST_ERROR_H
/* The per-thread message behind luhd_last_error() (exported from last_error.c). */
void luhd_set_last_error(const char *message);
#endif
