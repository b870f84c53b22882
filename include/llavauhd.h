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
    /* Arithmetic of the large matrix products. false (the default): float32 products, the
     * exact path. true: on CPUs with AVX512_BF16, the vision tower's projections and the LLM's
     * prefill (products of many rows, not decoding) against BF16 weights round the activations
     * to bf16 and use bf16 dot products with float32 sums: about twice as fast, with the error
     * of PyTorch's bf16 matmul (relative 2^-9 per activation). Ignored for other weight types
     * and on other CPUs; the projector and decoding are float32 either way. */
    bool bf16_matmul;
} luhd_model_params;

/* The default model parameters, with struct_size set. Thread-safe, never fails. */
LUHD_API luhd_model_params luhd_model_default_params(void);

/* Loads the model at `path`: a LLaVA-UHD model directory, or a text-only LLM.
 *
 * A LLaVA-UHD directory is an upstream checkpoint as released: config.json, model.safetensors
 * or model.safetensors.index.json plus its shards, and tokenizer.model or tokenizer.json /
 * vocab.json + merges.txt. Also accepted: a directory written by `llavauhd quantize` (Q8_0/Q4_0
 * LLM weights), and a directory whose LLM is a LLaMA- or Qwen2-architecture GGUF file (named by
 * config.json's "llm_gguf", or its only *.gguf file; its tokenizer is used when the directory
 * has no tokenizer files).
 *
 * A text-only LLM (luhd_model_properties.has_vision false) is a LLaMA- or Qwen2-architecture
 * .gguf file (tokenizer and chat template from its metadata), or a directory holding only an
 * LLM: one *.gguf file, or safetensors with a config.json whose model_type is "llama" or
 * "qwen2" (LlamaForCausalLM, Qwen2ForCausalLM) and its tokenizer files. Sessions, streaming,
 * sampling and stop rules are the same; anything that needs an image (luhd_chat with images,
 * the image stage calls, luhd_eval with LUHD_IMAGE_TOKEN) fails with LUHD_ERR_UNSUPPORTED. Its
 * chat template is recognised from the Jinja `chat_template` as llama.cpp recognises its
 * built-in families (chat_template in luhd_model_properties); when none is recognised, luhd_chat
 * fails with LUHD_ERR_UNSUPPORTED and raw luhd_eval still works.
 *
 * The files are memory-mapped, not copied. The load checks config.json, every safetensors
 * header, and the presence, shape and dtype of every tensor the model uses. params may be NULL.
 * On success, *out_model receives a model, which you free with luhd_model_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL path or out_model, bad struct_size), LUHD_ERR_IO,
 * LUHD_ERR_BAD_CONFIG, LUHD_ERR_UNSUPPORTED, LUHD_ERR_BAD_WEIGHTS, LUHD_ERR_MISSING_TENSOR,
 * LUHD_ERR_TENSOR_MISMATCH, LUHD_ERR_BAD_TOKENIZER, LUHD_ERR_CANCELLED (progress callback).
 * Thread-safe: several models may be loaded at once. */
LUHD_API luhd_status luhd_model_load(const char *path, const luhd_model_params *params, luhd_model **out_model);

/* Releases the caller's reference to a model. Its files are unmapped once no session uses it
 * either. NULL is allowed. Do not call it while another thread is inside a call that takes
 * this model handle. */
LUHD_API void luhd_model_free(luhd_model *model);

/* What a loaded model is. Strings belong to the model and live as long as it does. */
typedef struct luhd_model_properties {
    size_t struct_size;              /* set by the caller to sizeof(luhd_model_properties) */
    const char *architecture;        /* LLM: "llama" or "qwen2" */
    const char *projector;           /* "hiwin" (LLaVA-UHD v2) or "uhd_v1" */
    const char *token_layout;        /* "stitched_grid" (old-vicuna-7b branch) or "per_slice" */
    const char *chat_template;       /* "vicuna_v1", "qwen2_chatml"; text-only LLMs: "chatml",
                                      * "llama2", "llama2-sys", "llama3", "mistral-v1",
                                      * "mistral-v3", "mistral-v7", "vicuna", or "" (none) */
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
    int64_t weight_bytes;            /* bytes of tensor data, all files (safetensors and GGUF) */
    /* false for a text-only LLM: then projector, token_layout are "", the vision_* fields,
     * feature_scale_mask and tokens_per_view are 0, and image calls fail with
     * LUHD_ERR_UNSUPPORTED. */
    bool has_vision;
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

/* Decodes ids to UTF-8 text as the model's tokenizer library does: Hugging Face's
 * decode(ids, skip_special_tokens=skip_special) for byte-level BPE (Qwen2); sentencepiece's
 * decode for tokenizer.model (LLaMA), where control pieces such as <s> and </s> give no text
 * whatever skip_special says. Byte pieces are joined into characters, and invalid byte
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

/* ------------------------------------------------------------------------------------------------
 * Image stages, for inspection and feature extraction
 *
 * Each function runs an image through the pipeline up to its stage and returns every view's
 * result. Views come in upstream's order: slices row-major, then the overview. These calls do
 * not use a session's image cache.
 * --------------------------------------------------------------------------------------------- */

/* Called from inside long computations, which stop with LUHD_ERR_CANCELLED when it returns
 * true. */
typedef bool (*luhd_abort_callback)(void *user_data);

typedef struct luhd_image_options {
    size_t struct_size;              /* sizeof(luhd_image_options); set by the defaults */
    /* Upstream's eval pre-resize: a long side shorter than this is upscaled to it (PIL
     * BICUBIC). The default is 1024; 0 turns it off, as upstream does for MME and AI2D. */
    int32_t preresize_long_side;
    /* Most slices per image: 1 to LUHD_MAX_SLICES. The default is 9, upstream's inference
     * setting. */
    int32_t max_slices;
    /* Optional abort callback, polled in the vision tower, VDIM and projector. */
    luhd_abort_callback abort_callback;
    void *abort_user_data;
} luhd_image_options;

#define LUHD_MAX_SLICES 64

/* The default image options, with struct_size set. Thread-safe, never fails. */
LUHD_API luhd_image_options luhd_image_default_options(void);

/* How an image is cut (the UHD adaptive partition, SPEC §1). Sizes are width x height in
 * pixels. */
typedef struct luhd_plan {
    size_t struct_size;              /* set by the caller to sizeof(luhd_plan) */
    int32_t image_width, image_height;       /* the input */
    int32_t resized_width, resized_height;   /* after the eval pre-resize */
    int32_t grid_columns, grid_rows;         /* 0 x 0 when the image is not sliced */
    int32_t slice_width, slice_height;       /* every slice; 0 when not sliced */
    int32_t refine_width, refine_height;     /* the image resized before cutting; 0 when not sliced */
    int32_t overview_width, overview_height;
    int32_t n_views;                         /* slices + 1 */
    /* Positions the image takes in the LLM input under the model's token layout. */
    int32_t n_image_tokens;
    /* Separator ids: separators[i] follows slice i (29892 "," inside a row, 13 "\n" at a
     * row's end). overview_separator precedes the overview in the stitched layout (13 when
     * there is a single column, an upstream quirk); it is 0 when nothing precedes the overview
     * (no slices, or the model's per-slice layout). */
    int32_t overview_separator;
    int32_t separators[LUHD_MAX_SLICES];
} luhd_plan;

/* Computes the slicing plan of an image for this model (no pixels are processed).
 * Set out->struct_size = sizeof(luhd_plan) first. options may be NULL.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, bad options or struct_size).
 * Thread-safe. */
LUHD_API luhd_status luhd_image_plan(const luhd_model *model, const luhd_image *image, const luhd_image_options *options,
                                     luhd_plan *out);

/* A float32 array the library returns. */
typedef struct luhd_tensor {
    float *data;                     /* row-major; owned by the list it belongs to */
    int32_t n_dims;
    int64_t shape[4];
    int32_t view;                    /* view index: slices row-major, then the overview */
    int32_t level;                   /* pyramid level scale (1, 2, 4, 8); 0 when not a pyramid */
    int32_t used_by_projector;       /* pyramid levels: 1 when the projector attends to it */
} luhd_tensor;

typedef struct luhd_tensor_list {
    int32_t n_tensors;
    luhd_tensor *tensors;
} luhd_tensor_list;

/* Frees a list returned by the functions below, with all its arrays. NULL is allowed. */
LUHD_API void luhd_tensor_list_free(luhd_tensor_list *list);

/* The CLIP-normalised pixels of every view: one tensor (3, H, W) per view.
 * On success, *out receives a list, which you free with luhd_tensor_list_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT, LUHD_ERR_CANCELLED. Thread-safe. */
LUHD_API luhd_status luhd_image_pixels(const luhd_model *model, const luhd_image *image,
                                       const luhd_image_options *options, luhd_tensor_list **out);

/* The CLIP layer -2 patch features of every view (CLS dropped): one tensor (h*w, C) per view,
 * where h x w is the view's patch grid. Same ownership and errors as luhd_image_pixels. */
LUHD_API luhd_status luhd_vision_features(const luhd_model *model, const luhd_image *image,
                                          const luhd_image_options *options, luhd_tensor_list **out);

/* The feature pyramid of every view: per view, one tensor (C, h_L, w_L) per level. Level 1 is
 * the CLIP features; VDIM adds levels 2 and 4 for Hiwin checkpoints. The v1 projector has only
 * level 1. Same ownership and errors as luhd_image_pixels. */
LUHD_API luhd_status luhd_image_pyramid(const luhd_model *model, const luhd_image *image,
                                        const luhd_image_options *options, luhd_tensor_list **out);

/* The projector tokens of every view: one tensor (144, hidden) per view, in the LLM's
 * embedding space. Same ownership and errors as luhd_image_pixels. */
LUHD_API luhd_status luhd_image_embed(const luhd_model *model, const luhd_image *image,
                                      const luhd_image_options *options, luhd_tensor_list **out);

/* ------------------------------------------------------------------------------------------------
 * Sessions
 * --------------------------------------------------------------------------------------------- */

/* One conversation: a KV cache, the chat history and a cache of image embeddings. Used by
 * one thread at a time. Any number of sessions may share a model. */
typedef struct luhd_session luhd_session;

typedef struct luhd_session_params {
    size_t struct_size;              /* sizeof(luhd_session_params); set by the defaults */
    /* Positions the context holds: 1 to max_position_embeddings. The default 0 means
     * min(4096, max_position_embeddings). The KV cache takes
     * 2 * n_layers * n_ctx * n_kv_heads * head_dim * 4 bytes, reserved up front and committed
     * as it fills. */
    int32_t n_ctx;
    /* Encoded images kept for reuse, keyed by a SHA-256 of their pixels, least recently used
     * first out. The default is 4; 0 turns the cache off. */
    int32_t image_cache_size;
    /* The system prompt (UTF-8, copied). NULL, the default, means the template's own: the
     * vicuna_v1 system text, or "You are a helpful assistant." for Qwen2. */
    const char *system_prompt;
    /* How images are sliced (see luhd_image_options). Its abort callback is ignored here. */
    luhd_image_options image_options;
    /* Optional abort callback, polled in the vision tower, VDIM, projector, prefill and decode.
     * Work it stops returns LUHD_ERR_CANCELLED. */
    luhd_abort_callback abort_callback;
    void *abort_user_data;
} luhd_session_params;

/* The default session parameters, with struct_size set. Thread-safe, never fails. */
LUHD_API luhd_session_params luhd_session_default_params(void);

/* Creates a session on a model. params may be NULL. The session holds a reference to the
 * model: luhd_model_free may run before luhd_session_free, and the model's memory is released
 * when the last session using it is freed.
 * On success, *out_session receives a session, which you free with luhd_session_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, n_ctx out of range, bad image options),
 * LUHD_ERR_INVALID_UTF8 (system prompt), LUHD_ERR_OUT_OF_MEMORY (the KV cache cannot be
 * reserved).
 * Thread-safe on the model. */
LUHD_API luhd_status luhd_session_create(const luhd_model *model, const luhd_session_params *params,
                                         luhd_session **out_session);

/* Forgets the conversation and the context. The image-embedding cache is kept. Errors:
 * LUHD_ERR_INVALID_ARGUMENT (NULL session). */
LUHD_API luhd_status luhd_session_reset(luhd_session *session);

/* Frees a session. NULL is allowed. */
LUHD_API void luhd_session_free(luhd_session *session);

/* Stops the session's current luhd_session_chat or luhd_session_eval, which returns
 * LUHD_ERR_CANCELLED. This is the one session function another thread may call while the
 * session is in use. Has no effect when nothing is running. Errors: LUHD_ERR_INVALID_ARGUMENT
 * (NULL session). */
LUHD_API luhd_status luhd_session_cancel(luhd_session *session);

/* Positions used and positions available in the session's context. Either out-pointer may be
 * NULL. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL session). */
LUHD_API luhd_status luhd_session_context(const luhd_session *session, int32_t *n_used, int32_t *n_ctx);

/* ------------------------------------------------------------------------------------------------
 * Sampling and chat
 * --------------------------------------------------------------------------------------------- */

typedef struct luhd_sampling_params {
    size_t struct_size;              /* sizeof(luhd_sampling_params); set by the defaults */
    /* 0, the default, means greedy: always the most likely token, upstream's eval setting. */
    float temperature;
    int32_t top_k;                   /* keep the k most likely tokens; 0 (default) = off */
    float top_p;                     /* nucleus: smallest set with probability >= top_p; 1 (default) = off */
    float min_p;                     /* drop tokens below min_p * the top probability; 0 (default) = off */
    /* Repetition penalty, as in HF and llama.cpp: seen tokens have positive logits divided by
     * it and negative ones multiplied. 1 (default) = off. */
    float repetition_penalty;
    int32_t penalty_last_n;          /* history the penalty looks at; 0 (default) = all of it */
    uint64_t seed;                   /* for sampled (temperature > 0) generation; default 0 */
    int32_t max_new_tokens;          /* default 128, as upstream's eval */
    /* Texts that end the answer (not included in it). NULL / 0 (default) = none. */
    const char *const *stop_strings;
    int32_t n_stop_strings;
} luhd_sampling_params;

/* The default sampling parameters (greedy, 128 new tokens), with struct_size set.
 * Thread-safe, never fails. */
LUHD_API luhd_sampling_params luhd_sampling_default_params(void);

/* Receives one piece of the answer as it is generated: `length` bytes of UTF-8 that never end
 * inside a character, NUL-terminated as well. Return false to stop the answer there. In that
 * case luhd_session_chat still returns LUHD_OK, with stop_reason LUHD_STOP_CALLBACK. */
typedef bool (*luhd_text_callback)(const char *piece, size_t length, void *user_data);

typedef enum luhd_stop_reason {
    LUHD_STOP_EOS = 0,               /* the model ended its answer */
    LUHD_STOP_MAX_TOKENS = 1,        /* max_new_tokens reached */
    LUHD_STOP_STRING = 2,            /* a stop string appeared */
    LUHD_STOP_CALLBACK = 3,          /* the text callback returned false */
    LUHD_STOP_CONTEXT_FULL = 4       /* the context filled up during the answer */
} luhd_stop_reason;

/* What one chat turn did and how long it took. */
typedef struct luhd_chat_stats {
    size_t struct_size;              /* set by the caller to sizeof(luhd_chat_stats) */
    luhd_stop_reason stop_reason;
    int32_t n_prompt_positions;      /* the whole conversation's prompt, images included */
    int32_t n_reused_positions;      /* of those, taken from the cache (not recomputed) */
    int32_t n_generated;             /* answer tokens */
    int32_t n_images_encoded;        /* images run through the vision tower and projector */
    int32_t n_images_cached;         /* images found in the image cache */
    double image_seconds;            /* slicing, vision tower, VDIM, projector */
    double prefill_seconds;
    double decode_seconds;
} luhd_chat_stats;

/* One turn of chat. `text` is the user's message (UTF-8, NUL-terminated). It may contain
 * "<image>" placeholders, one per image, placed where each image goes. Otherwise each image
 * is put before the text as "<image>\n", as upstream's eval scripts do. The answer is
 * streamed to `on_text` (may be NULL), and with out_text non-NULL it is also returned whole,
 * NUL-terminated: free it with luhd_string_free. stats may be NULL. The turn joins the
 * session's history. Earlier turns stay in the KV cache and are not recomputed. An image
 * already in the session's image cache is not encoded again.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL session or text, NULL entries in images, placeholder
 * count differs from n_images, bad sampling parameters), LUHD_ERR_INVALID_UTF8,
 * LUHD_ERR_CONTEXT_FULL (the prompt does not fit: the session is unchanged),
 * LUHD_ERR_CANCELLED (abort callback or luhd_session_cancel: what was generated is kept in
 * the history, so the session stays usable). One thread at a time per session. */
LUHD_API luhd_status luhd_session_chat(luhd_session *session, const char *text, const luhd_image *const *images,
                                       int32_t n_images, const luhd_sampling_params *sampling,
                                       luhd_text_callback on_text, void *user_data, char **out_text,
                                       luhd_chat_stats *stats);

/* Frees a string the library returned. NULL is allowed. */
LUHD_API void luhd_string_free(char *string);

/* The low-level path, like upstream's generate loop. Appends ids to the session's context, with
 * LUHD_IMAGE_TOKEN wherever one of `images` goes, in order. Afterwards luhd_session_logits gives
 * the next-token logits. No chat template is applied.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, n_tokens < 1, marker count differs from
 * n_images, ids outside the vocabulary), LUHD_ERR_CONTEXT_FULL and LUHD_ERR_CANCELLED (nothing
 * appended in either case). */
LUHD_API luhd_status luhd_session_eval(luhd_session *session, const int32_t *tokens, int32_t n_tokens,
                                       const luhd_image *const *images, int32_t n_images);

/* Points *out_logits at the logits after the last evaluated position (n_vocab floats). The
 * array belongs to the session and is valid until its next call. Errors:
 * LUHD_ERR_INVALID_ARGUMENT (NULL pointers, or nothing evaluated yet). */
LUHD_API luhd_status luhd_session_logits(const luhd_session *session, const float **out_logits, int32_t *n_vocab);

/* Samples the next token from the session's logits (greedy when temperature is 0). The
 * evaluated ids are the repetition-penalty history. The seeded random stream continues across
 * calls while the parameters stay the same. Only max_new_tokens and stop_strings are ignored.
 * The token is not evaluated: pass it to luhd_session_eval to continue. Errors:
 * LUHD_ERR_INVALID_ARGUMENT. */
LUHD_API luhd_status luhd_session_sample(luhd_session *session, const luhd_sampling_params *sampling,
                                         int32_t *out_token);

#ifdef __cplusplus
}
#endif

#endif /* LLAVAUHD_H */
