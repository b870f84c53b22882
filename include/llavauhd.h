/*
 * llavauhd.h - the C interface of llava-uhd, a CPU runtime for the LLaVA-UHD v2 multimodal model.
 *
 * Link with -lllavauhd (pkg-config: llavauhd). Every symbol has the prefix luhd_ (types and
 * functions) or LUHD_ (macros and constants). The header compiles as C89, C99, C11 and C++11
 * or later.
 *
 * Conventions
 * -----------
 * Names. Functions are luhd_<object>_<verb> (luhd_model_load, luhd_session_chat); the
 *   parameters of a call come from luhd_<object>_default_params(); a struct a call fills is
 *   named after what it holds (luhd_model_properties, luhd_slice_plan, luhd_chat_stats).
 *
 * Status codes. Every call that can fail returns a luhd_status, and LUHD_OK (0) means success.
 *   Outputs are written through out-pointers, and only on success. On failure,
 *   luhd_last_error() gives a message that says what went wrong, naming the file, tensor, key,
 *   argument or field. No call aborts or exits the process, whatever it is given: every
 *   number is checked against its documented range first. The one known exception is a
 *   weight file changed or truncated on disk while a model maps it (see luhd_model_load).
 *
 * Ownership. A handle you receive (luhd_model, luhd_image, ...) is yours. Free it with the
 *   matching luhd_*_free function, named next to the function that made it. Every *_free
 *   accepts NULL. Strings the library returns as `const char *` belong to the library and stay
 *   valid as long as the function's comment says.
 *
 * Parameter structs. Each one starts with `size_t struct_size` and comes from a
 *   luhd_*_default_params() function, which sets struct_size. Fields are only ever appended, and
 *   no params struct embeds another by value, so a program built against an older header keeps
 *   working with a newer library: the library reads the first struct_size bytes and keeps the
 *   defaults of the fields it was not given. Passing NULL for a params pointer means "use the
 *   defaults". Structs the library fills (luhd_model_properties, luhd_slice_plan,
 *   luhd_chat_stats) also start with struct_size, which the caller sets to sizeof(the struct);
 *   the library writes only that many bytes.
 *
 * Threads. Every function's comment ends with its thread rule:
 *   - "Threads: any." The call may run on any thread, concurrently with any other call,
 *     including calls on the same handle.
 *   - "Threads: one call per session at a time." A session is used by one thread at a time.
 *     A second call that overlaps (from another thread, or from inside one of the session's
 *     callbacks) is refused with LUHD_ERR_INVALID_ARGUMENT instead of racing;
 *     luhd_session_cancel is the one exception and may be called at any time.
 *   - Freeing: a luhd_*_free call must not overlap another call that takes the same handle
 *     (the handle's memory would go away under it). Freeing a session from inside one of its
 *     own callbacks is allowed: it cancels the running call and the memory goes once the call
 *     has returned.
 *   A luhd_model and a luhd_image are immutable once made and may be shared by any number of
 *   threads and sessions. luhd_last_error() is per thread.
 *
 * Callbacks. Callbacks (load progress, token streaming, abort) run on the thread of the call
 *   that was given them, except abort callbacks, which may also run on the library's compute
 *   threads. A callback stops the work by returning false (progress, text) or true (abort).
 *   Stopped work returns LUHD_ERR_CANCELLED (or, for the text callback, LUHD_OK with
 *   LUHD_STOP_CALLBACK) and leaves every handle usable.
 *
 * Performance. OpenBLAS is loaded (dlopen) with the kernels chosen for the CPU. Debian's OpenBLAS
 *   0.3.21 misdetects recent Intel CPUs and picks slow ones. When OPENBLAS_CORETYPE is not set
 *   and the host has not already loaded OpenBLAS, the library sets OPENBLAS_CORETYPE for the
 *   duration of the load and then restores the environment. Because setenv races with getenv
 *   in other threads, it does so only while the process runs a single thread: OpenBLAS is
 *   loaded when the library itself is loaded if the process is single-threaded then, else on
 *   first use without touching the environment (OpenBLAS then picks its kernels itself; set
 *   OPENBLAS_CORETYPE, e.g. "SkylakeX", before starting threads to avoid that).
 *   luhd_model_properties.blas_core reports the choice.
 */
#ifndef LLAVAUHD_H
#define LLAVAUHD_H

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

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

/* The release this header belongs to (semantic versioning). */
#define LUHD_VERSION_MAJOR 1
#define LUHD_VERSION_MINOR 0
#define LUHD_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 10000 for 1.0.0, for comparisons in #if. */
#define LUHD_VERSION_NUMBER (LUHD_VERSION_MAJOR * 10000 + LUHD_VERSION_MINOR * 100 + LUHD_VERSION_PATCH)
#define LUHD_VERSION_STRINGIFY_(x) #x
#define LUHD_VERSION_STRINGIFY(x) LUHD_VERSION_STRINGIFY_(x)
/* "MAJOR.MINOR.PATCH", e.g. "1.0.0". */
#define LUHD_VERSION_STRING \
    LUHD_VERSION_STRINGIFY(LUHD_VERSION_MAJOR) "." LUHD_VERSION_STRINGIFY(LUHD_VERSION_MINOR) "." \
    LUHD_VERSION_STRINGIFY(LUHD_VERSION_PATCH)

/* The ABI this header describes. It changes only when an existing declaration changes
 * incompatibly. Appending functions or struct fields does not change it. */
#define LUHD_ABI_VERSION 2

/* The ABI version of the loaded library. A program should check at startup that it equals
 * LUHD_ABI_VERSION. Never fails. Threads: any. */
LUHD_API uint32_t luhd_abi_version(void);

/* The loaded library's LUHD_VERSION_NUMBER. Never fails. Threads: any. */
LUHD_API uint32_t luhd_version_number(void);

/* The loaded library's LUHD_VERSION_STRING, e.g. "1.0.0". A static string. Never fails.
 * Threads: any. */
LUHD_API const char *luhd_version_string(void);

/* ------------------------------------------------------------------------------------------------
 * Status codes and errors
 * --------------------------------------------------------------------------------------------- */

typedef enum luhd_status {
    LUHD_OK = 0,
    /* A NULL pointer where one is required, a wrong struct_size, an out-of-range number, a call
     * the thread rules do not allow (an overlapping call on a busy session). */
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
    /* An image has more pixels than the limit (luhd_image_load_params.max_pixels). */
    LUHD_ERR_IMAGE_TOO_LARGE = 9,
    /* A tokenizer file is missing or malformed. */
    LUHD_ERR_BAD_TOKENIZER = 10,
    /* Text passed to the library is not valid UTF-8. */
    LUHD_ERR_INVALID_UTF8 = 11,
    /* The session's context window cannot hold the request. The session is unchanged. */
    LUHD_ERR_CONTEXT_FULL = 12,
    /* A callback or luhd_session_cancel asked to stop. The handle stays usable. */
    LUHD_ERR_CANCELLED = 13,
    /* A size computed from the input exceeds what the library will allocate, or an
     * allocation failed. */
    LUHD_ERR_OUT_OF_MEMORY = 14,
    /* A caller-provided buffer is too small. The call reports the size it needs. */
    LUHD_ERR_BUFFER_TOO_SMALL = 15,
    /* A bug in the library: an internal invariant did not hold. Please report it. */
    LUHD_ERR_INTERNAL = 16,
    /* A saved session file (luhd_session_load) is not one, or is damaged: truncated, a
     * checksum that does not match, a size or value that contradicts the rest of the file or
     * the model, or a format version this library does not read. */
    LUHD_ERR_BAD_SESSION_FILE = 17,
    /* A sound saved session file that was written with another model (its model digest
     * differs from the loaded model's; see luhd_session_save). */
    LUHD_ERR_SESSION_MISMATCH = 18
} luhd_status;

/* A short English name for a status, e.g. "bad image". Returns "unknown status" for a value
 * that is not in luhd_status. A static string. Never fails. Threads: any. */
LUHD_API const char *luhd_status_string(luhd_status status);

/* The detailed message of the calling thread's most recent failed call, or "" if no call on
 * this thread has failed. The string belongs to the library and stays valid until the next
 * failing luhd_ call on the same thread. Successful calls leave it unchanged. Never NULL.
 * Threads: any (each thread has its own message). */
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
 * several threads at once. It may call luhd_ functions (luhd_log_set excepted: it returns
 * LUHD_ERR_INVALID_ARGUMENT there); the messages those calls produce are not delivered. */
typedef void (*luhd_log_callback)(luhd_log_level level, const char *message, void *user_data);

/* Routes the library's log messages at or above min_level to callback. With callback NULL,
 * messages go to standard error, which is the default, with min_level LUHD_LOG_WARNING. Use
 * min_level LUHD_LOG_NONE (or any value above LUHD_LOG_ERROR) to silence the library. Applies
 * process-wide. When the call returns, the previous callback is no longer running on any
 * thread and will not be called again, so its user data may be freed.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (called from inside a log callback, which would wait for
 * itself; nothing changes). Threads: any. */
LUHD_API luhd_status luhd_log_set(luhd_log_callback callback, void *user_data, luhd_log_level min_level);

/* ------------------------------------------------------------------------------------------------
 * Models
 * --------------------------------------------------------------------------------------------- */

/* A loaded model: config, tokenizer and memory-mapped weights. Immutable, and shareable by
 * any number of threads. */
typedef struct luhd_model luhd_model;

/* A vocabulary id. LUHD_IMAGE_TOKEN marks where an image goes in a prompt given as ids, as
 * upstream's IMAGE_TOKEN_INDEX does. It is never a vocabulary id. (It mirrors the Swift
 * ChatTemplate.imageTokenId; Tests/TokenizerTests/HeaderMirrorTests.swift checks they agree.) */
typedef int32_t luhd_token;

#define LUHD_IMAGE_TOKEN (-200)

/* Called during loading with progress in [0, 1]. Return false to cancel the load. */
typedef bool (*luhd_progress_callback)(float progress, void *user_data);

/* Arithmetic of the large matrix products. */
typedef enum luhd_precision {
    /* float32 products: the exact path, tested against the reference. The default. */
    LUHD_PRECISION_EXACT = 0,
    /* The fastest reduced-precision kernels this CPU has, within a stated bound, chosen at
     * load from the CPU's features and a short calibration (a few milliseconds, once per
     * process), never slower than LUHD_PRECISION_EXACT:
     * - vision tower, on CPUs with AVX-512 VNNI: its projections (and the Hiwin projector's
     *   cat_proj and out_proj) run in int8 (Q8_0 copies of their weights made at load, about
     *   400 MB more memory for ViT-L/14-336 and a 7B model's projector; activations quantized
     *   per block of 32; int8 dot products), with the projector output within 2e-2 of the
     *   exact path's relative to its largest magnitude;
     * - otherwise the vision tower, and the LLM's prefill (products of many rows, not
     *   decoding), on CPUs with AVX512_BF16 where bf16 products measure faster than float32:
     *   against BF16 weights the activations are rounded to bf16 and multiplied with bf16 dot
     *   products and float32 sums (the error of PyTorch's bf16 matmul, relative 2^-9 per
     *   activation).
     * Elsewhere, and for other weight types, the same as LUHD_PRECISION_EXACT. Decoding, and
     * the projector apart from the two int8 products above, are float32 either way. */
    LUHD_PRECISION_FAST = 1
} luhd_precision;

typedef struct luhd_model_params {
    size_t struct_size;              /* sizeof(luhd_model_params); set by the defaults */
    /* Threads for compute: 0 (the default) means all online CPUs; at most 1024. */
    int32_t n_threads;
    /* Optional load-progress callback, and its user data. Default NULL. */
    luhd_progress_callback progress_callback;
    void *progress_user_data;
    /* LUHD_PRECISION_EXACT (the default) or LUHD_PRECISION_FAST. */
    luhd_precision precision;
    /* Bytes of encoded images (projector tokens, 4 bytes per float) that the model keeps for
     * all its sessions, on any thread: a session asking about a picture that another session
     * of the model already encoded (same pixels, same image options) skips the vision stage.
     * Least recently used first out; an image larger than the bound is not kept. The default,
     * 268435456 (256 MiB), holds about 15 seven-view images of a 7B model; 0 turns the shared
     * cache off. Negative: LUHD_ERR_INVALID_ARGUMENT. Sessions with image_cache_size 0 neither
     * read nor fill it. Callers built against the struct without this field get the default. */
    int64_t image_cache_bytes;
    /* Bytes of computed KV rows that the model keeps for all its sessions, on any thread, as
     * vLLM's prefix caching and llama.cpp's server prompt cache do: a session whose prompt
     * starts with positions another session of the model already evaluated (same system
     * prompt, same images: compared token by token and image by content hash) copies their
     * rows instead of recomputing them, and luhd_chat_stats.n_reused_positions counts them.
     * Rows are shared in blocks of 16 positions, only between sessions of the same kv_type.
     * The rows were computed in another session's prefill pass, whose matrix products round
     * differently with its number of positions, so the results equal recomputing them to float
     * rounding (as a session's own follow-up turns do), not bit for bit: greedy answers are the
     * same (tested), logits agree within the bounds Tests/RuntimeTests/PrefixCacheTests.swift
     * states. Sessions offer the rows of every prompt
     * they evaluate (luhd_session_chat, luhd_session_eval) and of every session loaded with
     * luhd_session_load. Least recently used first out. The default, 0, turns it off, so that
     * a session's results never depend on what other sessions did; a server that sees the
     * same system prompt or image in many conversations should turn it on: 536870912 (512 MiB)
     * holds about 2000 positions of a 7B model in 16-bit storage (two prompts with a
     * seven-view image). Negative: LUHD_ERR_INVALID_ARGUMENT. Callers built against the
     * struct without this field get the default. */
    int64_t prefix_cache_bytes;
    /* Batched decoding: sessions of this model that decode at the same time (each on its own
     * thread) share each pass over the LLM's weights, up to this many sessions per pass.
     * Decoding is bound by reading the weights, so a pass for several sessions costs little more
     * than one for a single session. Each session's tokens and logits are exactly the ones it
     * gets alone; a session never waits for others that are not already decoding (a lone
     * session is not slowed), and cancelling or freeing one affects only that one. A session
     * whose step runs in another session's pass sees its abort callback polled on its own
     * thread every 2 ms while it waits. A session's abort callback is also polled between the
     * layers of the passes its own thread runs, which may hold other sessions' steps: they wait
     * while it runs. It may make any call on another session (a decode step started there runs
     * at once in a pass of its own), but must not wait for another thread's call on a session
     * of the same model to return, which may be waiting for that very pass. Default 8; 1 turns
     * batching off; 1...64, else LUHD_ERR_INVALID_ARGUMENT. Callers built against the struct
     * without this field get the default. */
    int32_t max_decode_batch;
    /* The chat template of a text-only LLM, by name: one of the text-only names that
     * luhd_model_properties.chat_template lists ("chatml", "llama2", "llama2-sys", "llama3",
     * "mistral-v1", "mistral-v3", "mistral-v7", "vicuna"; "vicuna_v1" and "qwen2_chatml" also
     * work). It replaces the template recognised from the model's Jinja chat_template: pass it
     * when none is recognised (luhd_session_chat would fail with LUHD_ERR_UNSUPPORTED) or when
     * the recognised one is wrong. NULL (the default): recognise it. Another name:
     * LUHD_ERR_INVALID_ARGUMENT naming the valid ones; not UTF-8: LUHD_ERR_INVALID_UTF8.
     * Ignored by LLaVA-UHD models, whose template config.json fixes. Read during the load only;
     * the caller keeps ownership. Callers built against the struct without this field get the
     * default. */
    const char *chat_template;
} luhd_model_params;

/* The default model parameters, with struct_size set. Never fails. Threads: any. */
LUHD_API luhd_model_params luhd_model_default_params(void);

/* Loads the model at `path` (NUL-terminated): a LLaVA-UHD model directory, or a text-only LLM.
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
 * sampling and stop rules are the same; anything that needs an image (luhd_session_chat with
 * images, the luhd_image_* stage calls, luhd_session_eval with LUHD_IMAGE_TOKEN) fails with
 * LUHD_ERR_UNSUPPORTED. Its chat template is recognised from the Jinja `chat_template` as
 * llama.cpp recognises its built-in families (chat_template in luhd_model_properties); when
 * none is recognised, luhd_session_chat fails with LUHD_ERR_UNSUPPORTED and raw
 * luhd_session_eval still works.
 *
 * The load checks config.json, every weight file header, and the presence, shape and dtype of
 * every tensor the model uses. params may be NULL. The weight files are memory-mapped, not
 * copied. This is the one known way to take the host down: if a mapped file is truncated or
 * rewritten in place while the model is loaded, reading the missing pages raises SIGBUS.
 * Replace model files by writing new ones and renaming them, never in place, and free the
 * model before deleting its files.
 * On success, *out_model receives a model, which you free with luhd_model_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL path or out_model, bad struct_size, n_threads or
 * precision out of range), LUHD_ERR_IO, LUHD_ERR_BAD_CONFIG, LUHD_ERR_UNSUPPORTED,
 * LUHD_ERR_BAD_WEIGHTS, LUHD_ERR_MISSING_TENSOR, LUHD_ERR_TENSOR_MISMATCH,
 * LUHD_ERR_BAD_TOKENIZER, LUHD_ERR_CANCELLED (progress callback).
 * Beyond never modifying loaded files, a host can copy them to a private tmpfs first, or install a
 * SIGBUS handler that ends the process cleanly.
 * Threads: any (several models may be loaded at once). */
LUHD_API luhd_status luhd_model_load(const char *path, const luhd_model_params *params, luhd_model **out_model);

/* Releases the caller's reference to a model. Its files are unmapped once no session uses it
 * either. NULL is allowed. Threads: any, but not overlapping another call that takes this
 * model handle. */
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
 * first. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL model or out, struct_size too small or too
 * large). Threads: any. */
LUHD_API luhd_status luhd_model_get_properties(const luhd_model *model, luhd_model_properties *out);

/* ------------------------------------------------------------------------------------------------
 * Tokenizer
 * --------------------------------------------------------------------------------------------- */

/* Tokenizes `text_length` bytes of UTF-8 text, or a NUL-terminated string when text_length is
 * -1, with the model's tokenizer: SentencePiece for LLaMA/Vicuna, byte-level BPE for Qwen2.
 * With an explicit length, NUL bytes are text like any other. With add_bos, the BOS id is put
 * first when the tokenizer has one. Qwen2 has none. With parse_special, special-token text
 * such as "<|im_end|>" or "</s>" becomes its id (Hugging Face's behaviour); otherwise it is
 * tokenized as plain text.
 * Writes up to n_max ids to `tokens` and the number of ids to *n_tokens. When n_max is too
 * small, it returns LUHD_ERR_BUFFER_TOO_SMALL with *n_tokens set to the number needed, so a
 * call with n_max 0 (tokens may then be NULL) measures.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, text_length < -1, n_max < 0),
 * LUHD_ERR_INVALID_UTF8, LUHD_ERR_BUFFER_TOO_SMALL. Threads: any. */
LUHD_API luhd_status luhd_model_tokenize(const luhd_model *model, const char *text, int64_t text_length,
                                         bool add_bos, bool parse_special, luhd_token *tokens, int32_t n_max,
                                         int32_t *n_tokens);

/* Decodes ids to UTF-8 text as the model's tokenizer library does: Hugging Face's
 * decode(ids, skip_special_tokens=skip_special) for byte-level BPE (Qwen2); sentencepiece's
 * decode for tokenizer.model (LLaMA), where control pieces such as <s> and </s> give no text
 * whatever skip_special says. Byte pieces are joined into characters, and invalid byte
 * sequences become U+FFFD. Writes the text and a terminating NUL to `buf` when it fits
 * (buf_size counts the NUL). *n_bytes receives the text's length without the NUL (the text
 * itself may contain NUL bytes). If it does not fit, returns LUHD_ERR_BUFFER_TOO_SMALL with
 * *n_bytes set.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, n_tokens < 0, an id outside the
 * vocabulary), LUHD_ERR_BUFFER_TOO_SMALL. Threads: any. */
LUHD_API luhd_status luhd_model_detokenize(const luhd_model *model, const luhd_token *tokens, int32_t n_tokens,
                                           bool skip_special, char *buf, size_t buf_size, size_t *n_bytes);

/* The bytes one id stands for: "▁the" becomes " the", and "<0x0A>" becomes "\n". A byte piece
 * can be part of a UTF-8 character, so the result is not NUL-terminated and may not be valid
 * UTF-8 on its own. Special tokens give their text with render_special, and nothing
 * otherwise. Writes up to buf_size bytes and the piece's length to *n_bytes; when the piece
 * does not fit, returns LUHD_ERR_BUFFER_TOO_SMALL. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL
 * pointers, an id outside the vocabulary), LUHD_ERR_BUFFER_TOO_SMALL. Threads: any. */
LUHD_API luhd_status luhd_model_token_to_piece(const luhd_model *model, luhd_token token, bool render_special,
                                               char *buf, size_t buf_size, size_t *n_bytes);

/* ------------------------------------------------------------------------------------------------
 * Images
 * --------------------------------------------------------------------------------------------- */

/* Decoded 8-bit RGB pixels. Immutable, and shareable by any number of threads. */
typedef struct luhd_image luhd_image;

/* How an encoded image is decoded (luhd_image_load_file, luhd_image_load_memory). */
typedef struct luhd_image_load_params {
    size_t struct_size;              /* sizeof(luhd_image_load_params); set by the defaults */
    /* Largest width x height accepted: 1 or more. It is checked against the image header
     * before any pixel memory is allocated, as a guard against decompression bombs. The
     * default, 178956970, matches Pillow's limit. */
    int64_t max_pixels;
} luhd_image_load_params;

/* The default image-decoding parameters, with struct_size set. Never fails. Threads: any. */
LUHD_API luhd_image_load_params luhd_image_load_default_params(void);

/* Decodes a JPEG or PNG file (path NUL-terminated) to RGB8 with the same pixels as Pillow's
 * Image.open(path).convert('RGB'): alpha is dropped, not composited; palette and greyscale
 * images are expanded; 16-bit images are reduced as Pillow reduces them; CMYK JPEGs are
 * converted as Pillow converts them; EXIF orientation is not applied. params may be NULL.
 * On success, *out_image receives an image, which you free with luhd_image_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT, LUHD_ERR_IO, LUHD_ERR_BAD_IMAGE (corrupt, truncated,
 * unknown format), LUHD_ERR_IMAGE_TOO_LARGE, LUHD_ERR_OUT_OF_MEMORY. Threads: any. */
LUHD_API luhd_status luhd_image_load_file(const char *path, const luhd_image_load_params *params,
                                          luhd_image **out_image);

/* Like luhd_image_load_file, but for `size` bytes of an encoded JPEG or PNG in memory (size at
 * most PTRDIFF_MAX). The bytes are not retained after the call. Threads: any. */
LUHD_API luhd_status luhd_image_load_memory(const void *data, size_t size, const luhd_image_load_params *params,
                                            luhd_image **out_image);

/* Copies raw RGB8 pixels: `height` rows of `width` pixels, 3 bytes each, with rows `stride`
 * bytes apart. A stride of 0 means 3 * width. The buffer is not retained after the call.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, width or height < 1, stride < 3 * width or
 * above PTRDIFF_MAX), LUHD_ERR_IMAGE_TOO_LARGE (more than the default max_pixels, or a buffer
 * span that overflows). Threads: any. */
LUHD_API luhd_status luhd_image_from_rgb(const uint8_t *rgb, int32_t width, int32_t height, size_t stride,
                                         luhd_image **out_image);

/* Writes the image's width and height in pixels. Either out-pointer may be NULL.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL image). Threads: any. */
LUHD_API luhd_status luhd_image_size(const luhd_image *image, int32_t *width, int32_t *height);

/* Points *out_rgb at the image's pixels: width * height * 3 bytes, rows packed. The pointer
 * belongs to the image and is valid until luhd_image_free. Errors: LUHD_ERR_INVALID_ARGUMENT.
 * Threads: any. */
LUHD_API luhd_status luhd_image_rgb(const luhd_image *image, const uint8_t **out_rgb);

/* Frees an image. NULL is allowed. A session that has encoded the image keeps its own copy of
 * what it needs. Threads: any, but not overlapping another call that takes this image. */
LUHD_API void luhd_image_free(luhd_image *image);

/* ------------------------------------------------------------------------------------------------
 * Slicing and image stages, for inspection and feature extraction
 *
 * Each stage function runs an image through the pipeline up to its stage and returns every
 * view's result. Views come in upstream's order: slices row-major, then the overview. These
 * calls do not use a session's or the model's image cache.
 * --------------------------------------------------------------------------------------------- */

/* Called from inside long computations, which stop with LUHD_ERR_CANCELLED when it returns
 * true. It may run on the library's compute threads, several at once. */
typedef bool (*luhd_abort_callback)(void *user_data);

#define LUHD_MAX_SLICES 64

/* How an image is cut into slices (the UHD adaptive partition). The same two fields are in
 * luhd_session_params. */
typedef struct luhd_slice_params {
    size_t struct_size;              /* sizeof(luhd_slice_params); set by the defaults */
    /* Upstream's eval pre-resize: a long side shorter than this is upscaled to it (PIL
     * BICUBIC). 0 to 65536; the default is 1024; 0 turns it off, as upstream does for MME and
     * AI2D. */
    int32_t preresize_long_side;
    /* Most slices per image: 1 to LUHD_MAX_SLICES. The default is 9, upstream's inference
     * setting. */
    int32_t max_slices;
} luhd_slice_params;

/* The default slicing parameters, with struct_size set. Never fails. Threads: any. */
LUHD_API luhd_slice_params luhd_slice_default_params(void);

/* How an image is cut (the UHD adaptive partition, docs/MODEL.md section 1). Sizes are width x
 * height in pixels. */
typedef struct luhd_slice_plan {
    size_t struct_size;              /* set by the caller to sizeof(luhd_slice_plan) */
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
    luhd_token overview_separator;
    luhd_token separators[LUHD_MAX_SLICES];
} luhd_slice_plan;

/* Computes the slicing plan of an image for this model (no pixels are processed).
 * Set out->struct_size = sizeof(luhd_slice_plan) first. params may be NULL.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, params out of range, bad struct_size),
 * LUHD_ERR_UNSUPPORTED (a text-only model: has_vision false). Threads: any. */
LUHD_API luhd_status luhd_image_get_slice_plan(const luhd_model *model, const luhd_image *image,
                                               const luhd_slice_params *params, luhd_slice_plan *out);

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

/* Frees a list returned by the functions below, with all its arrays. NULL is allowed.
 * Threads: any, but not overlapping another use of the list. */
LUHD_API void luhd_tensor_list_free(luhd_tensor_list *list);

/* The CLIP-normalised pixels of every view: one tensor (3, H, W) per view. params may be NULL;
 * abort_callback may be NULL and is polled during the work.
 * On success, *out receives a list, which you free with luhd_tensor_list_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT, LUHD_ERR_CANCELLED, LUHD_ERR_OUT_OF_MEMORY,
 * LUHD_ERR_UNSUPPORTED (a text-only model: has_vision false). Threads: any. */
LUHD_API luhd_status luhd_image_pixels(const luhd_model *model, const luhd_image *image,
                                       const luhd_slice_params *params, luhd_abort_callback abort_callback,
                                       void *abort_user_data, luhd_tensor_list **out);

/* The CLIP layer -2 patch features of every view (CLS dropped): one tensor (h*w, C) per view,
 * where h x w is the view's patch grid. Same arguments, ownership and errors as
 * luhd_image_pixels. Threads: any. */
LUHD_API luhd_status luhd_image_features(const luhd_model *model, const luhd_image *image,
                                         const luhd_slice_params *params, luhd_abort_callback abort_callback,
                                         void *abort_user_data, luhd_tensor_list **out);

/* The feature pyramid of every view: per view, one tensor (C, h_L, w_L) per level. Level 1 is
 * the CLIP features; VDIM adds levels 2 and 4 for Hiwin checkpoints. The v1 projector has only
 * level 1. Same arguments, ownership and errors as luhd_image_pixels.
 * Threads: any. */
LUHD_API luhd_status luhd_image_pyramid(const luhd_model *model, const luhd_image *image,
                                        const luhd_slice_params *params, luhd_abort_callback abort_callback,
                                        void *abort_user_data, luhd_tensor_list **out);

/* The projector tokens of every view: one tensor (144, hidden) per view, in the LLM's
 * embedding space. Same arguments, ownership and errors as luhd_image_pixels.
 * Threads: any. */
LUHD_API luhd_status luhd_image_embed(const luhd_model *model, const luhd_image *image,
                                      const luhd_slice_params *params, luhd_abort_callback abort_callback,
                                      void *abort_user_data, luhd_tensor_list **out);

/* ------------------------------------------------------------------------------------------------
 * Sessions
 * --------------------------------------------------------------------------------------------- */

/* One conversation: a KV cache, the chat history and a cache of image embeddings. Used by
 * one thread at a time. Any number of sessions may share a model. */
typedef struct luhd_session luhd_session;

/* How a session's KV cache stores keys and values. 16-bit storage halves the cache's memory
 * and what decoding reads per cached position; its logits stay within the bounds stated in
 * Tests/LanguageTests/KVCacheTypeTests.swift of the float32 cache. */
typedef enum luhd_kv_type {
    LUHD_KV_F32 = 0,                 /* float32: exact */
    LUHD_KV_F16 = 1,                 /* IEEE half (the default); values beyond 65504 become inf */
    LUHD_KV_BF16 = 2                 /* bfloat16 (float32's range, 8-bit mantissa) */
} luhd_kv_type;

typedef struct luhd_session_params {
    size_t struct_size;              /* sizeof(luhd_session_params); set by the defaults */
    /* Positions the context holds: 1 to max_position_embeddings. The default 0 means
     * min(4096, max_position_embeddings). The KV cache takes
     * 2 * n_layers * n_ctx * n_kv_heads * head_dim * (4 or 2, see kv_type) bytes, reserved up
     * front and committed as it fills. */
    int32_t n_ctx;
    /* Encoded images this session keeps for its own reuse, keyed by a SHA-256 of their pixels,
     * least recently used first out, whatever other sessions do. The session also reads and
     * fills the model's shared image cache (luhd_model_params.image_cache_bytes). The default
     * is 4; 0 turns image caching off for this session: it neither keeps images nor uses the
     * model's cache, and encodes every image it is given. */
    int32_t image_cache_size;
    /* The system prompt (UTF-8, NUL-terminated, copied). NULL, the default, means the
     * template's own: the vicuna_v1 system text, or "You are a helpful assistant." for Qwen2. */
    const char *system_prompt;
    /* How images are sliced: the fields of luhd_slice_params, same ranges and defaults. */
    int32_t preresize_long_side;
    int32_t max_slices;
    /* Optional abort callback, polled in the vision tower, VDIM, projector, prefill and decode.
     * Work it stops returns LUHD_ERR_CANCELLED. */
    luhd_abort_callback abort_callback;
    void *abort_user_data;
    /* KV cache storage; default LUHD_KV_F16. Other values: LUHD_ERR_INVALID_ARGUMENT. */
    luhd_kv_type kv_type;
} luhd_session_params;

/* The default session parameters, with struct_size set. Never fails. Threads: any. */
LUHD_API luhd_session_params luhd_session_default_params(void);

/* Creates a session on a model. params may be NULL. The session holds a reference to the
 * model: luhd_model_free may run before luhd_session_free, and the model's memory is released
 * when the last session using it is freed.
 * On success, *out_session receives a session, which you free with luhd_session_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, n_ctx, image_cache_size or slicing fields
 * out of range), LUHD_ERR_INVALID_UTF8 (system prompt), LUHD_ERR_OUT_OF_MEMORY (the KV cache
 * cannot be reserved). Threads: any. */
LUHD_API luhd_status luhd_session_create(const luhd_model *model, const luhd_session_params *params,
                                         luhd_session **out_session);

/* Forgets the conversation and the context. The image-embedding cache is kept. Errors:
 * LUHD_ERR_INVALID_ARGUMENT (NULL session, or the session is busy). Threads: one call per
 * session at a time. */
LUHD_API luhd_status luhd_session_reset(luhd_session *session);

/* Frees a session. NULL is allowed. From inside one of the session's own callbacks it cancels
 * the running call, and the memory is released when that call returns (with
 * LUHD_ERR_CANCELLED); the handle must not be used again either way. Threads: any, but not
 * overlapping another call on this session from another thread (luhd_session_cancel
 * included). */
LUHD_API void luhd_session_free(luhd_session *session);

/* Stops the session's current luhd_session_chat or luhd_session_eval, which returns
 * LUHD_ERR_CANCELLED. Has no effect when nothing is running. Errors: LUHD_ERR_INVALID_ARGUMENT
 * (NULL session). Threads: any, at any time, also while another thread uses the session
 * (but not overlapping luhd_session_free). */
LUHD_API luhd_status luhd_session_cancel(luhd_session *session);

/* Positions used and positions available in the session's context. Either out-pointer may be
 * NULL. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL session, or the session is busy). Threads: one
 * call per session at a time. */
LUHD_API luhd_status luhd_session_context(luhd_session *session, int32_t *n_used, int32_t *n_ctx);

/* ------------------------------------------------------------------------------------------------
 * Sampling and chat
 * --------------------------------------------------------------------------------------------- */

typedef struct luhd_sampling_params {
    size_t struct_size;              /* sizeof(luhd_sampling_params); set by the defaults */
    /* 0, the default, means greedy: always the most likely token, upstream's eval setting.
     * Finite and >= 0. */
    float temperature;
    int32_t top_k;                   /* keep the k most likely tokens; 0 (default) = off */
    float top_p;                     /* nucleus: smallest set with probability >= top_p; 1 (default) = off */
    float min_p;                     /* drop tokens below min_p * the top probability; 0 (default) = off */
    /* Repetition penalty, as in HF and llama.cpp: seen tokens have positive logits divided by
     * it and negative ones multiplied. 1 (default) = off. */
    float repetition_penalty;
    int32_t penalty_last_n;          /* history the penalty looks at; 0 (default) = all of it */
    uint64_t seed;                   /* for sampled (temperature > 0) generation; default 0 */
    int32_t max_new_tokens;          /* 0 or more; default 128, as upstream's eval */
    /* Texts (UTF-8, NUL-terminated) that end the answer (not included in it).
     * NULL / 0 (default) = none. */
    const char *const *stop_strings;
    int32_t n_stop_strings;
} luhd_sampling_params;

/* The default sampling parameters (greedy, 128 new tokens), with struct_size set.
 * Never fails. Threads: any. */
LUHD_API luhd_sampling_params luhd_sampling_default_params(void);

/* Receives one piece of the answer as it is generated: `length` bytes of UTF-8 that never end
 * inside a character, NUL-terminated as well (the piece may itself contain NUL bytes: use
 * length). Return false to stop the answer there. In that case luhd_session_chat still returns
 * LUHD_OK, with stop_reason LUHD_STOP_CALLBACK. The callback may call luhd_session_cancel and
 * luhd_session_free on its session; any other call on that session is refused. */
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
    int32_t n_images_cached;         /* images found in the session's or the model's image cache */
    double image_seconds;            /* slicing, vision tower, VDIM, projector */
    double prefill_seconds;
    double decode_seconds;
} luhd_chat_stats;

/* One turn of chat. `text` is the user's message: text_length bytes of UTF-8, or a
 * NUL-terminated string when text_length is -1 (with an explicit length, NUL bytes are text).
 * It may contain "<image>" placeholders, one per image, placed where each image goes.
 * Otherwise each image is put before the text as "<image>\n", as upstream's eval scripts do.
 * "<image>" anywhere else (a turn without images, the system prompt, earlier answers) is
 * plain text.
 * The answer is streamed to `on_text` (may be NULL). With out_text non-NULL it is also
 * returned whole: *out_text receives the answer, NUL-terminated, which you free with
 * luhd_string_free, and *out_text_length (when not NULL) its length in bytes without the NUL;
 * the answer may contain NUL bytes, so use the length. out_stats may be NULL. The turn joins
 * the session's history. Earlier turns stay in the KV cache and are not recomputed. An image
 * already in the session's image cache, or in the model's shared one, is not encoded again. Afterwards luhd_session_logits
 * gives the logits after the last evaluated position (the prompt or the last evaluated answer
 * token).
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL session or text, text_length < -1, NULL entries in
 * images, n_images < 0, placeholder count differs from n_images, sampling fields out of range,
 * the session is busy), LUHD_ERR_INVALID_UTF8, LUHD_ERR_CONTEXT_FULL (the prompt does not fit:
 * the session is unchanged), LUHD_ERR_CANCELLED (abort callback or luhd_session_cancel: what
 * was generated is kept in the history, so the session stays usable), LUHD_ERR_OUT_OF_MEMORY,
 * LUHD_ERR_UNSUPPORTED (images given to a text-only model, or a text-only model whose chat
 * template was not recognised: the session is unchanged).
 * Threads: one call per session at a time; the images may be shared with other threads. */
LUHD_API luhd_status luhd_session_chat(luhd_session *session, const char *text, int64_t text_length,
                                       const luhd_image *const *images, int32_t n_images,
                                       const luhd_sampling_params *sampling, luhd_text_callback on_text,
                                       void *user_data, char **out_text, size_t *out_text_length,
                                       luhd_chat_stats *out_stats);

/* Frees a string the library returned. NULL is allowed. Threads: any. */
LUHD_API void luhd_string_free(char *string);

/* The low-level path, like upstream's generate loop. Appends ids to the session's context, with
 * LUHD_IMAGE_TOKEN wherever one of `images` goes, in order. Afterwards luhd_session_logits gives
 * the next-token logits. No chat template is applied.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, n_tokens < 1, n_images < 0, marker count
 * differs from n_images, ids outside the vocabulary, the session is busy),
 * LUHD_ERR_CONTEXT_FULL and LUHD_ERR_CANCELLED (nothing appended in either case),
 * LUHD_ERR_UNSUPPORTED (LUHD_IMAGE_TOKEN or images given to a text-only model; nothing appended).
 * Threads: one call per session at a time. */
LUHD_API luhd_status luhd_session_eval(luhd_session *session, const luhd_token *tokens, int32_t n_tokens,
                                       const luhd_image *const *images, int32_t n_images);

/* Points *out_logits at the logits after the last evaluated position (n_vocab floats), by
 * luhd_session_eval or luhd_session_chat. The array belongs to the session and is valid until
 * the session's next call. Errors: LUHD_ERR_INVALID_ARGUMENT (NULL pointers, the session is
 * busy, or no logits: nothing evaluated since the session was made or reset, or the last chat
 * failed after it had started evaluating). Threads: one call per session at a time. */
LUHD_API luhd_status luhd_session_logits(luhd_session *session, const float **out_logits, int32_t *n_vocab);

/* Samples the next token from the session's logits (greedy when temperature is 0). The
 * evaluated ids are the repetition-penalty history. The seeded random stream continues across
 * calls while the parameters stay the same. Only max_new_tokens and stop_strings are ignored.
 * The token is not evaluated: pass it to luhd_session_eval to continue. Errors:
 * LUHD_ERR_INVALID_ARGUMENT (as luhd_session_logits, or sampling fields out of range).
 * Threads: one call per session at a time. */
LUHD_API luhd_status luhd_session_sample(luhd_session *session, const luhd_sampling_params *sampling,
                                         luhd_token *out_token);

/* ------------------------------------------------------------------------------------------------
 * Saved sessions
 * --------------------------------------------------------------------------------------------- */

/* Writes the session's conversation to the file at `path` (NUL-terminated), replacing it: the
 * KV cache rows in use (in the session's kv_type), what each cached position holds (tokens, and
 * for images their content hash, slicing and slot), the chat history, the encoded images of
 * the conversation, the repetition-penalty history, the last logits, and the luhd_session_sample
 * random stream. A header ties the file to the model with a digest (SHA-256 of the LLM's
 * hyper-parameters, the chat template, the image-token layout, the tokenizer's vocabulary and
 * special ids, and every tensor's name, dtype, shape and first and last 256 bytes) and carries
 * a format version, the sizes and CRC-32C checksums. Size: about the KV rows, 2 * n_layers * n_used * n_kv_heads * head_dim * (4 or 2)
 * bytes (a seven-view image prompt of a 7B model in 16 bits: about 280 MB), plus 4 * hidden
 * bytes per image token. The file is written under a new temporary name in the same
 * directory (created with O_EXCL: never through a link or over another file), synced and
 * renamed over `path`, so a reader never sees a partial file; the temporary file is removed on
 * failure. The session is unchanged. A session with nothing evaluated saves too.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL session or path, the session is busy),
 * LUHD_ERR_INVALID_UTF8 (path), LUHD_ERR_IO (the file cannot be written or renamed).
 * Threads: one call per session at a time. */
LUHD_API luhd_status luhd_session_save(luhd_session *session, const char *path);

/* Creates a session of `model` that continues the conversation saved at `path` by
 * luhd_session_save with the same model: the next luhd_session_chat answers exactly as the
 * saving session would have, and luhd_session_logits and luhd_session_sample continue where
 * it stood. Loading copies the saved KV rows instead of recomputing the prompt, so it takes
 * about the time of reading the file. params (may be NULL) give the new session's n_ctx,
 * image_cache_size, abort callback and kv_type, checked as luhd_session_create checks them;
 * the system prompt and slicing (system_prompt, preresize_long_side, max_slices) are the
 * saved conversation's, and the params' values of those fields are not used. When kv_type
 * differs from the saved rows' type the rows are converted: widening (16 bits to LUHD_KV_F32)
 * is exact, narrowing rounds each value to nearest even as a 16-bit cache rounds what it
 * stores; the continuation then stays within the bounds of the narrower type but is not
 * bit-identical to the saving session's (keep the saved kv_type for that). The saved
 * conversation's images go into the session's image cache and, unless image_cache_size is 0,
 * the model's shared one; its rows are offered to the model's prefix cache
 * (luhd_model_params.prefix_cache_bytes). The file is read once, front to back: its header is
 * checked (magic, version, checksum, sizes against the file's length) before anything is sized
 * from it; then the state section (checksum, model digest, every count, id and size against
 * the file and the model); then the KV rows go straight into the new session's cache, and
 * their checksum and the file's end are checked before the session is returned (a damaged
 * file yields no session).
 * On success, *out_session receives a session, which you free with luhd_session_free.
 * Errors: LUHD_ERR_INVALID_ARGUMENT (NULL model, path or out_session, params fields out of
 * range), LUHD_ERR_INVALID_UTF8 (path or system prompt), LUHD_ERR_IO (the file cannot be
 * opened or read), LUHD_ERR_BAD_SESSION_FILE (not a session file, truncated or damaged, a
 * checksum or size that does not match, a value out of range for the model, another format
 * version), LUHD_ERR_SESSION_MISMATCH (a session saved with another model),
 * LUHD_ERR_CONTEXT_FULL (the saved conversation holds more positions than params' n_ctx),
 * LUHD_ERR_OUT_OF_MEMORY. Threads: any. */
LUHD_API luhd_status luhd_session_load(const luhd_model *model, const char *path, const luhd_session_params *params,
                                       luhd_session **out_session);

#ifdef __cplusplus
}
#endif

#endif /* LLAVAUHD_H */
