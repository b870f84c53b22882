#include "thread_depth.h"

static _Thread_local int depth;

int luhd_log_delivery_depth(void) { return depth; }

void luhd_log_delivery_adjust(int delta) { depth += delta; }
