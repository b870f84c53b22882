#include "atomic_flag.h"

int luhd_flag_load(const int *flag) { return __atomic_load_n(flag, __ATOMIC_SEQ_CST); }

void luhd_flag_store(int *flag, int value) { __atomic_store_n(flag, value, __ATOMIC_SEQ_CST); }
