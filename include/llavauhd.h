/*
 * llavauhd.h - the C interface of llava-uhd, a CPU runtime for the LLaVA-UHD v2 multimodal model.
 *
 * Link with -lllavauhd. Every symbol has the prefix luhd_ (types and functions) or LUHD_
 * (macros and constants).
 *
 * Conventions
 * -----------
 * Status codes. Every call that can fail returns a luhd_status, and LUHD_OK (0) means success.
 *   Outputs are written through out-pointers, and only on success. On failure,
 *   luhd_last_error() gives a message that says what went wrong, naming the file, tensor, key
 *   or argument. No call aborts or exits the process, whatever it is given.
 *
 * Ownership. A handle you receive (luhd_model, luhd_image, ...) is yours. Free it with the
 *   matching luhd_*_free function, named next to the function that made it. Every *_free
 *   accepts NULL. Strings the library returns as `const char *` belong to the library and stay
 *   valid as long as this comment says.
 *
 * Parameter structs. Each one starts with `size_t struct_size` and comes from a
 *   luhd_*_default_params() function, which sets struct_size. Fields are only ever appended, so
 *   a program built against an older header keeps working with a newer library. The library
 *   reads the first struct_size bytes and ignores fields it does not know. Passing NULL for a
 *   params pointer means "use the defaults".
 *
 * Threads. A luhd_model is immutable once loaded. Any number of threads may use one model at
 *   the same time, for example through their own sessions. A luhd_image is immutable and may
 *   also be shared. Nothing else may be used by two threads at once. luhd_last_error() is
 *   per thread.
 *
 * Callbacks. Callbacks (load progress, token streaming, abort) run on the calling thread. A
 *   callback can stop the work by returning false. Stopped work returns LUHD_ERR_CANCELLED and
 *   leaves every handle usable.
 *
 * Performance. OpenBLAS is loaded on first use, with the kernels chosen for the CPU. Debian's
 *   OpenBLAS 0.3.21 misdetects recent Intel CPUs and picks slow ones. When OPENBLAS_CORETYPE
 *   is not set and the host has not already loaded OpenBLAS, the library sets
 *   OPENBLAS_CORETYPE before loading it. luhd_model_properties.blas_core reports the choice.
 */
#ifndef LLAVAUHD_H
#define LLAVAUHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LUHD_API __attribute__((visibility("default")))
#else
#define LUHD_API
#endif

/* ------------------------------------------------------------------------------------------------
 * Versions
 * --------------------------------------------------------------------------------------------- */

/* The ABI this header describes. It changes only when an existing declaration changes
 * incompatibly. Appending functions or struct fields does not change it. */
#define LUHD_ABI_VERSION 1

/* The ABI version of the loaded library. A program should check at startup that it equals
 * LUHD_ABI_VERSION. Thread-safe, never fails. */
LUHD_API uint32_t luhd_abi_version(void);

/* The library's release, e.g. "0.1.0". A static string. Thread-safe, never fails. */
LUHD_API const char *luhd_version(void);

/* ------------------------------------------------------------------------------------------------
 * Status codes and errors
 * --------------------------------------------------------------------------------------------- */

typedef enum luhd_status {
    LUHD_OK = 0,
    /* A NULL pointer where one is required, a wrong struct_size, an out-of-range parameter. */
    LUHD_ERR_INVALID_ARGUMENT = 1,
    /* A file or directory could not be opened, read or memory-mapped (or a system library,
     * such as OpenBLAS, could not be loaded). */
    LUHD_ERR_IO = 2,
    /* A weight file is malformed: header length, JSON, dtype, data spans, overlaps, shard
     * index. */
    LUHD_ERR_BAD_WEIGHTS = 3,
    /* A tensor the model needs is not in the weight files. */
    LUHD_ERR_MISSING_TENSOR = 4,
    /* A tensor has the wrong shape or dtype. */
    LUHD_ERR_TENSOR_MISMATCH = 5,
    /* config.json is missing or malformed, lacks a required key, or contradicts itself. */
    LUHD_ERR_BAD_CONFIG = 6,
    /* The model (architecture, projector type, feature mode) is not one this library runs. */
    LUHD_ERR_UNSUPPORTED = 7,
    /* An image could not be decoded: corrupt, truncated, or an unknown format. */
    LUHD_ERR_BAD_IMAGE = 8,
    /* An image has more pixels than the limit (luhd_image_params.max_pixels). */
    LUHD_ERR_IMAGE_TOO_LARGE = 9,
    /* A tokenizer file is missing or malformed. */
    LUHD_ERR_BAD_TOKENIZER = 10,
    /* Text passed to the library is not valid UTF-8. */
    LUHD_ERR_INVALID_UTF8 = 11,
    /* The session's context window cannot hold the request. The session is unchanged. */
    LUHD_ERR_CONTEXT_FULL = 12,
    /* A callback asked to stop. The handle stays usable. */
    LUHD_ERR_CANCELLED = 13,
    /* A size computed from the input exceeds what the library will allocate. */
    LUHD_ERR_OUT_OF_MEMORY = 14,
    /* A caller-provided buffer is too small. The call reports the size it needs. */
    LUHD_ERR_BUFFER_TOO_SMALL = 15,
    /* A bug in the library: an internal invariant did not hold. Please report it. */
    LUHD_ERR_INTERNAL = 16
} luhd_status;

/* A short English name for a status, e.g. "bad image". Returns "unknown status" for a value
 * that is not in luhd_status. A static string. Thread-safe, never fails. */
LUHD_API const char *luhd_status_string(luhd_status status);

/* The detailed message of the calling thread's most recent failed call, or "" if no call on
 * this thread has failed. The string belongs to the library and stays valid until the next
 * failing luhd_ call on the same thread. Successful calls leave it unchanged. Never NULL. */
LUHD_API const char *luhd_last_error(void);

/* ------------------------------------------------------------------------------------------------
 * Logging
 * --------------------------------------------------------------------------------------------- */

typedef enum luhd_log_level {
    LUHD_LOG_DEBUG = 0,
    LUHD_LOG_INFO = 1,
    LUHD_LOG_WARNING = 2,
    LUHD_LOG_ERROR = 3,
    LUHD_LOG_NONE = 4
} luhd_log_level;

/* Receives one log message (UTF-8, no trailing newline). The message pointer is valid only
 * during the call. The callback may run on any thread that calls into the library, and on
 * several threads at once. */
typedef void (*luhd_log_callback)(luhd_log_level level, const char *message, void *user_data);

/* Routes the library's log messages at or above min_level to callback. With callback NULL,
 * messages go to standard error, which is the default, with min_level LUHD_LOG_WARNING. Use
 * min_level LUHD_LOG_NONE to silence the library. Applies process-wide. Thread-safe: messages
 * already being delivered may still reach the previous callback. */
LUHD_API void luhd_log_set(luhd_log_callback callback, void *user_data, luhd_log_level min_level);

/* ------------------------------------------------------------------------------------------------
 * Models
 * --------------------------------------------------------------------------------------------- */

/* A loaded model: config, tokenizer and memory-mapped weights. Immutable, and shareable by
 * any number of threads. */
typedef struct luhd_model luhd_model;

/* Called during loading with progress in [0, 1]. Return false to cancel the load. */
typedef bool (*luhd_progress_callback)(float progress, void *user_data);

typedef struct luhd_model_params {
    size_t struct_size;              /* sizeof(luhd_model_params); set by the defaults */
    /* Threads for compute. 0 means all online CPUs (the default). */
    int32_t n_threads;
    /* Optional load-progress callback, and its user data. Default NULL. */
    luhd_progress_callback progress_callback;
    void *progress_user_data;
} luhd_model_params;

/* The default model parameters, with struct_size set. Thread-safe, never fails. */
LUHD_API luhd_model_params luhd_model_default_params(void);

/* Loads the model directory at `path`. The directory is an upstream LLaVA-UHD checkpoint as
 * released: config.json, model.safetensors or model.safetensors.index.json plus its shards,
 * and tokenizer.model or tokenizer.json / vocab.json + merges.txt. The files are memory-mapped,
 * not copied. The load checks config.json, every safetensors header, and the presence, shape
 * and dtype of every tensor the model uses. params may be NULL.
 * On success, *out_model receives a model, which you free with luhd_model_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL path or out_model, bad struct_size), LUHD_ERR_IO,
 * LUHD_ERR_BAD_CONFIG, LUHD_ERR_UNSUPPORTED, LUHD_ERR_BAD_WEIGHTS, LUHD_ERR_MISSING_TENSOR,
 * LUHD_ERR_TENSOR_MISMATCH, LUHD_ERR_BAD_TOKENIZER, LUHD_ERR_CANCELLED (progress callback).
 * Thread-safe: several models may be loaded at once. */
LUHD_API luhd_status luhd_model_load(const char *path, const luhd_model_params *params, luhd_model **out_model);

/* Frees a model and unmaps its files. The caller must have freed every session made from the
 * model first. NULL is allowed. Not thread-safe with other uses of the same model. */
LUHD_API void luhd_model_free(luhd_model *model);

/* What a loaded model is. Strings belong to the model and live as long as it does. */
typedef struct luhd_model_properties {
    size_t struct_size;              /* set by the caller to sizeof(luhd_model_properties) */
    const char *architecture;        /* LLM: "llama" or "qwen2" */
    const char *projector;           /* "hiwin" (LLaVA-UHD v2) or "uhd_v1" */
    const char *token_layout;        /* "stitched_grid" (old-vicuna-7b branch) or "per_slice" */
    const char *chat_template;       /* "vicuna_v1" or "qwen2_chatml" */
    const char *weight_dtype;        /* dtype of most weight bytes, e.g. "BF16" */
    const char *blas_core;           /* OpenBLAS kernel set in use, e.g. "SkylakeX" */
    int32_t n_threads;               /* threads used for compute */
    /* LLM */
    int32_t hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, vocab_size;
    int32_t max_position_embeddings; /* the longest context a session may ask for */
    /* Vision tower (CLIP, inferred from tensor shapes) */
    int32_t vision_hidden_size, vision_intermediate_size, vision_n_layers, vision_n_heads;
    int32_t vision_patch_size, vision_image_size, vision_select_layer;
    /* Projector */
    int32_t feature_scale_mask;      /* VDIM levels: 1=1x, 2=2x, 4=4x, 8=8x (0 for uhd_v1) */
    int32_t tokens_per_view;         /* 144 */
    /* Weights */
    int64_t n_tensors;
    int64_t weight_bytes;            /* bytes of tensor data, all files */
} luhd_model_properties;

/* Fills *out with what the model is. Set out->struct_size = sizeof(luhd_model_properties)
 * first. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL model or out, struct_size too small).
 * Thread-safe. */
LUHD_API luhd_status luhd_model_info(const luhd_model *model, luhd_model_properties *out);

/* ------------------------------------------------------------------------------------------------
 * Tokenizer
 *
 * Token ids are int32_t. LUHD_IMAGE_TOKEN marks where an image goes in a prompt given as ids, as
 * upstream's IMAGE_TOKEN_INDEX does. It is never a vocabulary id.
 * --------------------------------------------------------------------------------------------- */

#define LUHD_IMAGE_TOKEN (-200)

/* Tokenizes `text_len` bytes of UTF-8 text, or a NUL-terminated string when text_len is -1,
 * with the model's tokenizer: SentencePiece for LLaMA/Vicuna, byte-level BPE for Qwen2. With
 * add_bos, the BOS id is put first when the tokenizer has one. Qwen2 has none. With
 * parse_special, special-token text such as "<|im_end|>" or "</s>" becomes its id (Hugging
 * Face's behaviour); otherwise it is tokenized as plain text.
 * Writes up to n_max ids to `tokens` and the number of ids to *n_tokens. When n_max is too
 * small, it returns LUHD_ERR_BUFFER_TOO_SMALL with *n_tokens set to the number needed, so a
 * call with n_max 0 (tokens may then be NULL) measures.
 * Errors: LUHD_ERR_INVALID_ARGUMENT, LUHD_ERR_INVALID_UTF8, LUHD_ERR_BUFFER_TOO_SMALL.
 * Thread-safe. */
LUHD_API luhd_status luhd_tokenize(const luhd_model *model, const char *text, int64_t text_len, bool add_bos,
                                   bool parse_special, int32_t *tokens, int32_t n_max, int32_t *n_tokens);

/* Decodes ids to UTF-8 text, as Hugging Face's decode(ids, skip_special_tokens=skip_special)
 * does for the model's tokenizer. Byte pieces are joined into characters, and invalid byte
 * sequences become U+FFFD. Writes the text and a terminating NUL to `buf` when it fits
 * (buf_size counts the NUL). *n_bytes receives the text's length without the NUL. If it does
 * not fit, returns LUHD_ERR_BUFFER_TOO_SMALL with *n_bytes set.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, an id outside the vocabulary),
 * LUHD_ERR_BUFFER_TOO_SMALL. Thread-safe. */
LUHD_API luhd_status luhd_detokenize(const luhd_model *model, const int32_t *tokens, int32_t n_tokens,
                                     bool skip_special, char *buf, size_t buf_size, size_t *n_bytes);

/* The bytes one id stands for: "▁the" becomes " the", and "<0x0A>" becomes "\n". A byte piece
 * can be part of a UTF-8 character, so the result is not NUL-terminated and may not be valid
 * UTF-8 on its own. Special tokens give their text with render_special, and nothing
 * otherwise. Writes up to buf_size bytes and the piece's length to *n_bytes; when the piece
 * does not fit, returns LUHD_ERR_BUFFER_TOO_SMALL. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL
 * pointers, an id outside the vocabulary), LUHD_ERR_BUFFER_TOO_SMALL. Thread-safe. */
LUHD_API luhd_status luhd_token_to_piece(const luhd_model *model, int32_t token, bool render_special, char *buf,
                                         size_t buf_size, size_t *n_bytes);

/* ------------------------------------------------------------------------------------------------
 * Images
 * --------------------------------------------------------------------------------------------- */

/* Decoded 8-bit RGB pixels. Immutable, and shareable by any number of threads. */
typedef struct luhd_image luhd_image;

typedef struct luhd_image_params {
    size_t struct_size;              /* sizeof(luhd_image_params); set by the defaults */
    /* Largest width x height accepted. It is checked against the image header before any
     * pixel memory is allocated, as a guard against decompression bombs. The default,
     * 178956970, matches Pillow's limit. */
    int64_t max_pixels;
} luhd_image_params;

/* The default image parameters, with struct_size set. Thread-safe, never fails. */
LUHD_API luhd_image_params luhd_image_default_params(void);

/* Decodes a JPEG or PNG file to RGB8 with the same pixels as Pillow's
 * Image.open(path).convert('RGB'): alpha is dropped, not composited; palette and greyscale
 * images are expanded; 16-bit images are reduced as Pillow reduces them; CMYK JPEGs are
 * converted as Pillow converts them; EXIF orientation is not applied. params may be NULL.
 * On success, *out_image receives an image, which you free with luhd_image_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT, LUHD_ERR_IO, LUHD_ERR_BAD_IMAGE (corrupt, truncated,
 * unknown format), LUHD_ERR_IMAGE_TOO_LARGE. Thread-safe. */
LUHD_API luhd_status luhd_image_load_file(const char *path, const luhd_image_params *params, luhd_image **out_image);

/* Like luhd_image_load_file, but for `size` bytes of an encoded JPEG or PNG in memory. The
 * bytes are not retained after the call. */
LUHD_API luhd_status luhd_image_load_memory(const void *data, size_t size, const luhd_image_params *params,
                                            luhd_image **out_image);

/* Copies raw RGB8 pixels: `height` rows of `width` pixels, 3 bytes each, with rows `stride`
 * bytes apart. A stride of 0 means 3 * width. The buffer is not retained after the call.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, width or height < 1, or stride < 3 * width),
 * LUHD_ERR_IMAGE_TOO_LARGE (more than the default max_pixels). Thread-safe. */
LUHD_API luhd_status luhd_image_from_rgb(const uint8_t *rgb, int32_t width, int32_t height, size_t stride,
                                         luhd_image **out_image);

/* Writes the image's width and height in pixels. Either out-pointer may be NULL.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL image). Thread-safe. */
LUHD_API luhd_status luhd_image_size(const luhd_image *image, int32_t *width, int32_t *height);

/* Points *out_rgb at the image's pixels: width * height * 3 bytes, rows packed. The pointer
 * belongs to the image and is valid until luhd_image_free. Errors: LUHD_ERR_INVALID_ARGUMENT.
 * Thread-safe. */
LUHD_API luhd_status luhd_image_rgb(const luhd_image *image, const uint8_t **out_rgb);

/* Frees an image. NULL is allowed. */
LUHD_API void luhd_image_free(luhd_image *image);

#ifdef __cplusplus
}
#endif

#endif /* LLAVAUHD_H */
