/* Umbrella header of the C helpers the Swift core calls. Nothing here is public API:
 * the public C header is include/llavauhd.h at the repository root. */
#ifndef CLLAVAUHD_H
#define CLLAVAUHD_H
#include "blas_loader.h"
#include "thread_pool.h"
#include "kernels.h"
#include "scratch.h"
#include "image_codec.h"
#include "jpeg_decoder.h"
#include "png_decoder.h"
#include "last_error.h"
#include "quant_kernels.h"
#include "projector_kernels.h"
#include "bf16_gemm.h"
#include "bf16w_sgemm.h"
#include "flash_attention.h"
#include "full_attention.h"
#include "thread_depth.h"
#include "peak_loops.h"
#include "crc32c.h"
/* The public C header, so the Swift exports use its exact types. */
#include "../../../include/llavauhd.h"
#endif
