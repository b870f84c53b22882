/* The library's version, from the public header's macros: the one place the release number is
 * written is include/llavauhd.h (the Swift side reads these functions too). */
#include "CLlavaUHD.h"

uint32_t luhd_version_number(void) { return LUHD_VERSION_NUMBER; }

const char *luhd_version_string(void) { return LUHD_VERSION_STRING; }

uint32_t luhd_abi_version(void) { return LUHD_ABI_VERSION; }
