#ifndef CLLAVAUHD_JPEG_DECODER_H
#define CLLAVAUHD_JPEG_DECODER_H
#include <stddef.h>
#include <stdint.h>
#endif
