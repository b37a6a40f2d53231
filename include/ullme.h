/*
 * ullme.h — the public C interface of libullme.
 *
 * libullme turns decoder-only LLMs (GGUF files or Hugging Face directories) into text-embedding
 * models: it tokenizes, runs the decoder with causal or bidirectional attention, pools and
 * normalises. This header is the whole contract; nothing else is exported (`nm -D libullme.so`).
 *
 * Conventions (as sqlite3.h / llama.h):
 *  - Every call that can fail returns an `int` status (ULLME_OK or one of ULLME_E_*). On failure a
 *    message is left for `ullme_last_error()`, which is thread-local: read it on the same thread.
 *  - No call traps on bad input: pointers, sizes, enums and UTF-8 are validated.
 *  - Output goes to caller-owned buffers with explicit capacities. Sizes are in elements.
 *  - Params structs are made by a `*_default_params()` function and then edited, so fields can be
 *    added in later versions without breaking callers; `struct_size` lets the library see which
 *    version of a struct it was handed (leave it as the defaults constructor set it). The growth rules
 *    for every struct and enum of this header: docs/abi.md.
 *  - Text is UTF-8 with an explicit byte length (NUL bytes are allowed inside). A length of
 *    ULLME_NUL_TERMINATED means "up to the first NUL".
 *
 * Thread safety: a loaded `ullme_model` is immutable. Every function taking a `const ullme_model *`
 * may be called concurrently from many threads on the same handle, and gives bit-identical results to
 * the same call made from one thread (Tests/c/concurrency.c). `ullme_model_free` must not race
 * with other calls on that handle; using a handle after freeing it is undefined behaviour (as free()).
 * ullme_version, ullme_abi_version, ullme_status_name, ullme_*_default_params and ullme_*_from_name
 * may be called from any thread at any time; ullme_last_error is per thread. ullme_model_load may run
 * concurrently with other calls when params.n_threads is 0; a value > 0 sets libullme's process-wide
 * thread count for matrix products, so load such models before other threads start embedding.
 * (libullme runs OpenBLAS, used only for small per-head products, single-threaded.)
 */
#ifndef ULLME_H
#define ULLME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ULLME_API __attribute__((visibility("default")))

/* Bumped on any incompatible change of this header. Compare with ullme_abi_version() at run time. */
#define ULLME_ABI_VERSION 1

#define ULLME_NUL_TERMINATED ((size_t)-1)

/* ---- Status codes: a closed list. ---------------------------------------------------------- */
enum {
    ULLME_OK = 0,
    ULLME_E_ARG = 1,         /* an argument is invalid (NULL, out of range, buffer too small, ...) */
    ULLME_E_IO = 2,          /* a file could not be opened, read or written */
    ULLME_E_FORMAT = 3,      /* a file is malformed, truncated or inconsistent */
    ULLME_E_UNSUPPORTED = 4, /* valid input this version does not support (architecture, tensor type) */
    ULLME_E_OOM = 5,         /* an allocation failed or would exceed a limit */
    ULLME_E_CANCELLED = 6,   /* a progress callback returned non-zero */
    ULLME_E_STATE = 7,       /* the call is not valid in the object's current state */
    ULLME_E_INTERNAL = 8     /* a bug in libullme: please report it with the message */
};

/* Library version string, "MAJOR.MINOR.PATCH". Static storage; never NULL. */
ULLME_API const char *ullme_version(void);
/* ULLME_ABI_VERSION of the compiled library. */
ULLME_API int ullme_abi_version(void);
/* The message of the last failed call on this thread ("" if none). Valid until the next call on this
 * thread that fails. Never NULL. */
ULLME_API const char *ullme_last_error(void);
/* A short English name of a status code ("ULLME_E_ARG", ...). Static storage; never NULL. */
ULLME_API const char *ullme_status_name(int status);

/* ---- Enumerations ------------------------------------------------------------------------- */
typedef enum {
    ULLME_POOLING_AUTO = -1,        /* what the model's metadata says (sentence-transformers 1_Pooling, the preset),
                                     * else ULLME_POOLING_MEAN: the default of ullme_model_default_params() */
    ULLME_POOLING_MEAN = 0,         /* average over non-padding tokens */
    ULLME_POOLING_WEIGHTEDMEAN = 1, /* weight of the i-th real token is i (1-based) */
    ULLME_POOLING_CLS = 2,          /* first token */
    ULLME_POOLING_LASTTOKEN = 3     /* last non-padding token */
} ullme_pooling;

typedef enum {
    ULLME_ATTENTION_AUTO = -1,         /* model loads only: what the model's metadata says (causal for a
                                        * sentence-transformers directory, the preset's), else bidirectional;
                                        * the default of ullme_model_default_params() */
    ULLME_ATTENTION_BIDIRECTIONAL = 0, /* every real token sees every real token (the ULLME default) */
    ULLME_ATTENTION_CAUSAL = 1         /* ordinary decoder attention */
} ullme_attention;

/* How a loaded model keeps its linear weights (all give bit-identical results). */
typedef enum {
    ULLME_WEIGHTS_DEFAULT = 0,  /* what the ULLME_WEIGHTS environment variable ("dense" | "stored" |
                                 * "quantized") says, else ULLME_WEIGHTS_QUANTIZED */
    ULLME_WEIGHTS_DENSE = 1,    /* dequantised to float32 and packed at load: 4 bytes a weight; the
                                 * fewest instructions per product */
    ULLME_WEIGHTS_STORED = 2,   /* as stored in the file (GGUF quantised blocks, f16/bf16), dequantised
                                 * panel by panel inside each product: no copy of the weights at all
                                 * (QLoRA-style frozen base; least memory, slower) */
    ULLME_WEIGHTS_QUANTIZED = 3 /* the file's integer blocks (GGUF Q4_0 ... Q8_0, Q4_K ... Q6_K) re-laid out
                                 * at load as int8 panels + float32 group scales (1.25 bytes a weight): the
                                 * speed of dense at a third of its memory. Other types are dense.
                                 * Measurements: README "Fine-tuning with GRL" and bench/README.md. */
} ullme_weight_storage;

/* The arithmetic of a model's linear layers at inference (attention, norms, softmax and LoRA adapters are
 * float32 in every mode; training always uses exact). */
typedef enum {
    ULLME_PRECISION_DEFAULT = 0, /* ULLME_PRECISION_EXACT, or what the ULLME_PRECISION environment variable
                                  * ("exact" | "bf16" | "int8") says */
    ULLME_PRECISION_EXACT = 1,   /* float32 weights, one FMA chain per output element: the results checked
                                  * against transformers */
    ULLME_PRECISION_BF16 = 2,    /* opt-in fast mode: most linear layers in bfloat16 on AVX512_BF16 (README
                                  * "Fast mode: bf16": what stays float32, accuracy, speed). Without
                                  * AVX512_BF16, or with ULLME_WEIGHTS_STORED, the exact kernels run:
                                  * ullme_model_precision_path says which. Batch-invariant. A trainer refuses
                                  * such a model (ULLME_E_STATE). */
    ULLME_PRECISION_INT8 = 3     /* opt-in integer mode: linear layers with integer GGUF weights (Q4_0 ... Q6_K)
                                  * multiply them with int8-quantised activations (AVX512-VNNI, AVX-VNNI or
                                  * AVX2, chosen at run time; the same bits on each); other weights run exact.
                                  * ullme_model_precision_path names the kernel. Batch-invariant. A trainer
                                  * refuses such a model (ULLME_E_STATE). */
} ullme_precision;

/* Parse "mean" | "weightedmean" | "cls" | "lasttoken" | "auto"; ULLME_E_ARG with a message otherwise. */
ULLME_API int ullme_pooling_from_name(const char *name, ullme_pooling *out);
/* Parse "bidirectional" | "causal" | "auto"; ULLME_E_ARG with a message otherwise. */
ULLME_API int ullme_attention_from_name(const char *name, ullme_attention *out);

/* Progress callback for long calls: `done` of `total` units (texts for embedding). Return non-zero
 * to cancel: the call then returns ULLME_E_CANCELLED and leaves outputs unspecified. */
typedef int (*ullme_progress_fn)(void *user, size_t done, size_t total);

/* ---- Models ------------------------------------------------------------------------------- */
typedef struct ullme_model ullme_model;

typedef struct {
    uint32_t struct_size;      /* set by ullme_model_default_params() */
    int32_t n_threads;         /* threads for matrix products; 0 = all cores (default). The setting is
                                * process-wide: a value > 0 applies to every model. */
    ullme_pooling pooling;     /* default ULLME_POOLING_AUTO (the model's metadata, else mean) */
    ullme_attention attention; /* default ULLME_ATTENTION_AUTO (the model's metadata, else bidirectional, as
                                * the ULLME reference) */
    int32_t max_length;        /* tokens per text after formatting, BOS included; >= 1, or 0 (default): the
                                * model's metadata (sentence-transformers max_seq_length), else 512 */
    int32_t batch_size;        /* texts per forward pass inside ullme_embed; default 32; >= 1 */
    const char *adapter_path;  /* NULL (default) or a directory holding a PEFT LoRA adapter
                                * (adapter_config.json + adapter_model.safetensors, as
                                * PeftModel.save_pretrained writes it; optional projection_head.safetensors).
                                * Its adapters are applied by every forward pass (embeddings, hidden
                                * states, logits). Several directories separated by newlines ("\n") are
                                * stacked in that order (LLM2Vec's MNTP then supervised adapters): their
                                * updates add up, as merging each before loading the next does. Added after ABI 1's first release: a caller built
                                * against the older header passes the smaller struct_size and gets no
                                * adapter. The string is copied during ullme_model_load. */
    int32_t weight_storage;    /* an ullme_weight_storage; default ULLME_WEIGHTS_DEFAULT. Added after
                                * adapter_path (older struct sizes are accepted and get the default). */
    int32_t precision;         /* an ullme_precision; default ULLME_PRECISION_DEFAULT. Added after
                                * weight_storage (older struct sizes are accepted and get the default). */
    int32_t reserved0;         /* must be 0 */
    const char *preset;        /* NULL (default): a directory's sentence-transformers files (modules.json,
                                * 1_Pooling, 2_Normalize, sentence_bert_config.json,
                                * config_sentence_transformers.json) say how to embed, else "ullme"; or a
                                * named format: "ullme", "genc-llama3", "genc-mistral", "gritlm", "llm2vec",
                                * "e5-instruct", "qwen3-embedding" (README "Supported embedders"). It sets the
                                * AUTO values above, the prompt template, prompt exclusion and normalisation.
                                * Added after precision (older struct sizes get NULL). Copied during the load. */
} ullme_model_params;

ULLME_API ullme_model_params ullme_model_default_params(void);

/* Load a model from a .gguf file or a Hugging Face directory (config.json, *.safetensors
 * [+ model.safetensors.index.json], tokenizer.json [+ tokenizer_config.json]), with the LoRA adapter
 * of params->adapter_path applied when it is not NULL. A NULL path loads the default model: the cached
 * SmolLM2-135M-Instruct GGUF (`ullme fetch-model`) with libullme's trained adapter (installed at
 * <libdir>/../share/ullme/adapters/default, or $ULLME_DEFAULT_ADAPTER) unless params->adapter_path names
 * another (ULLME_E_IO when either is missing). The raw base model: pass the GGUF's path (ULLME_E_FORMAT / ULLME_E_UNSUPPORTED when the
 * adapter does not fit the model or uses PEFT options this version does not support).
 * `params` may be NULL for defaults. On success *out owns the model; free it with ullme_model_free. */
ULLME_API int ullme_model_load(const char *path, const ullme_model_params *params, ullme_model **out);
/* Free a model. NULL is a no-op. */
ULLME_API void ullme_model_free(ullme_model *model);

typedef struct {
    char architecture[32];   /* "llama", ... (NUL-terminated) */
    int32_t hidden_size;     /* = embedding dimension */
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t intermediate_size;
    int32_t vocab_size;
    int32_t max_positions;   /* the model's context length */
    int32_t bos_token_id;    /* -1 if none */
    int32_t eos_token_id;    /* -1 if none */
    int32_t pad_token_id;    /* EOS when the model defines no pad token */
    int64_t n_parameters;
} ullme_model_info;

ULLME_API int ullme_model_get_info(const ullme_model *model, ullme_model_info *out);
/* The parameters the model was loaded with. adapter_path then points to the library's copy of the
 * path (NULL if none), valid until ullme_model_free. If out->struct_size holds the size of the older
 * struct (without adapter_path), only that prefix is written. */
ULLME_API int ullme_model_get_params(const ullme_model *model, ullme_model_params *out);

/* How the model embeds when a call does not say (its sentence-transformers files or preset), as a JSON
 * object: {"name", "pooling", "attention", "query_template", "document_template", "no_instruction_template",
 * "add_special_tokens", "append_eos", "exclude_prompt", "prompt_rule", "normalize", "max_length", "prompts"
 * {name: text}, "default_prompt_name", "similarity_fn_name"}. *out is valid until ullme_model_free. */
ULLME_API int ullme_model_embedder(const ullme_model *model, const char **out);

/* Which kernels the model's linear layers run, for logs and tests: "exact", "avx512_bf16", or
 * "exact fallback: <why>" when precision bf16 was asked for and cannot run ("CPU has no AVX512_BF16",
 * "stored weights run the float32 kernels"). *out points to a string valid until ullme_model_free. */
ULLME_API int ullme_model_precision_path(const ullme_model *model, const char **out);

/* ---- Tokenizer ---------------------------------------------------------------------------- */
/* Tokenize UTF-8 text. Invalid UTF-8 is not an error: each maximal invalid subsequence becomes
 * U+FFFD, exactly as Python's bytes.decode("utf-8", errors="replace"). `add_special` adds BOS/EOS
 * as the model's tokenizer configuration says. Writes at most `cap` ids and sets *n_ids to the full
 * count; if *n_ids > cap the call returns ULLME_E_ARG and the caller retries with a larger buffer
 * (ids may be NULL with cap 0 to query the size). */
ULLME_API int ullme_tokenize(const ullme_model *model, const char *text, size_t text_len,
                             int add_special, int32_t *ids, size_t cap, size_t *n_ids);
/* Detokenize ids to UTF-8 (special tokens are skipped when skip_special != 0). Writes at most
 * `cap` bytes (no NUL terminator) and sets *n_bytes to the full length; too small a buffer gives
 * ULLME_E_ARG as for ullme_tokenize. */
ULLME_API int ullme_detokenize(const ullme_model *model, const int32_t *ids, size_t n_ids,
                               int skip_special, char *text, size_t cap, size_t *n_bytes);

/* ---- Embedding ---------------------------------------------------------------------------- */
typedef struct {
    uint32_t struct_size;      /* set by ullme_embed_default_params() */
    const char *instruction;   /* NULL (with instruction_len 0 or the default) or "" for no instruction */
    size_t instruction_len;    /* bytes, or ULLME_NUL_TERMINATED (default) */
    int is_query;              /* 1 (default): "{instruction}\n{text}";
                                * 0: "{instruction}\nCandidate:\n{text}". With no instruction the
                                * text is embedded alone in both cases. These are the "ullme" profile's
                                * templates; a preset's (genc-*, gritlm, e5-instruct, ...) apply instead
                                * when the model was loaded with one (ullme_model_embedder shows them). */
    int normalize;             /* 1: L2-normalise each embedding; 0: do not; -1 (default): the model's metadata
                               * (a sentence-transformers Normalize module), else 1 */
    ullme_progress_fn progress;/* optional; called after each forward batch with texts done */
    void *progress_user;
    /* Fields below were added after ABI 1's first release; a caller built against the older header passes
     * the older struct_size and gets their defaults. */
    const char *prompt;        /* NULL (default) or sentence-transformers' prompt: prepended to every text as
                                * it is (then `instruction` and `is_query` are not used). A prompt containing
                                * "{text}" is a template: "{instruction}" in it becomes `instruction`. */
    size_t prompt_len;         /* bytes, or ULLME_NUL_TERMINATED (default) */
    const char *prompt_name;   /* NULL (default) or the name of one of the model's prompts
                                * (config_sentence_transformers.json), used when `prompt` is NULL; unknown names
                                * are ULLME_E_ARG. With neither and no instruction, the model's
                                * default_prompt_name applies, if it has one. NUL-terminated. */
    int32_t exclude_prompt;    /* -1 (default): the model's metadata (include_prompt: false, the preset);
                                * 1: leave the prompt's tokens out of pooling (the prompt tokenised alone, BOS
                                * included, a trailing special token not counted: sentence-transformers' rule;
                                * a text that is all prompt embeds as zeros); 0: pool every token */
    int32_t truncate_dim;      /* 0 (default): hidden_size floats per text; d in [1, hidden_size]: the first d
                                * (Matryoshka), re-normalised when normalising; `out` then holds n_texts * d */
} ullme_embed_params;

ULLME_API ullme_embed_params ullme_embed_default_params(void);

typedef struct {
    size_t n_texts;
    size_t n_tokens;           /* tokens run through the model, after truncation */
    size_t n_truncated;        /* texts cut to max_length */
} ullme_embed_stats;

/* Embed `n_texts` texts (texts[i] has text_lens[i] bytes; text_lens may be NULL for NUL-terminated
 * texts) into out[n_texts * hidden_size] (n_texts * truncate_dim when set), row-major. out_len is the capacity of `out` in floats.
 * `params` and `stats` may be NULL. n_texts == 0 succeeds and writes nothing. An empty text embeds
 * its formatted prompt (BOS alone when there is no instruction). A text's embedding does not depend
 * on the other texts of the call: batches are length-sorted, never padded internally, and every matrix
 * product computes each row with one fixed FMA order, so a text alone and inside any batch gives the
 * same bits (tested); the same call repeated, from any thread, is bit-identical too.
 * Thread-safe on one model. */
ULLME_API int ullme_embed(const ullme_model *model, const char *const *texts, const size_t *text_lens,
                          size_t n_texts, const ullme_embed_params *params, float *out, size_t out_len,
                          ullme_embed_stats *stats);

/* Final-norm hidden states of one token sequence: out[n_ids * hidden_size]. No formatting and no
 * truncation is applied (n_ids must be between 1 and the model's max_positions). */
ULLME_API int ullme_hidden_states(const ullme_model *model, const int32_t *ids, size_t n_ids,
                                  ullme_attention attention, float *out, size_t out_len);
/* Next-token logits of one token sequence with causal attention: out[n_ids * vocab_size]; row t
 * scores the token that follows ids[0..t]. */
ULLME_API int ullme_logits(const ullme_model *model, const int32_t *ids, size_t n_ids,
                           float *out, size_t out_len);

/* GRL's generation score of (query, passage): the token-mean log-likelihood of the generation example
 * "Please write a query that can be used to retrieve above passage.. Query:\n{query}\n\n{passage}\n" under
 * causal attention (with the model's adapter, if loaded). Higher means more relevant: usable as a reranker.
 * Lengths may be ULLME_NUL_TERMINATED. Thread-safe on one model. */
ULLME_API int ullme_gen_score(const ullme_model *model, const char *query, size_t query_len,
                              const char *passage, size_t passage_len, float *score_out);

/* ---- Training (LoRA + projection head on a frozen model) ---------------------------------- */
/* A trainer holds LoRA adapters on every attention and MLP linear layer of a loaded model (PEFT's module
 * names per family), a projection head Linear-ReLU-Linear, their gradients, AdamW and the reference's
 * learning-rate schedule. Backward calls accumulate gradients; ullme_trainer_step applies them.
 * A trainer is not thread-safe (one thread at a time); the model it was made from must outlive it and
 * may keep serving concurrent embedding calls (training never changes the model's own weights). */
typedef struct ullme_trainer ullme_trainer;

/* Defaults: those of the YAML training config (docs/training-config.md), one set for every interface. */
typedef struct {
    uint32_t struct_size;         /* set by ullme_trainer_default_params() */
    int32_t lora_rank;            /* 16 */
    float lora_alpha;             /* 32 (scale alpha / rank) */
    float lora_dropout;           /* 0.1, on the LoRA input; masks keyed by (seed, step, example, layer) */
    uint64_t seed;                /* 777 */
    double learning_rate;         /* 1e-4 */
    double min_learning_rate;     /* 1e-7 */
    double weight_decay;          /* 0 */
    double grad_clip;             /* 1.0 (global norm; <= 0 disables) */
    double warmup_proportion;     /* 0.05 of steps_per_epoch, at most 500 steps */
    int32_t steps_per_epoch;      /* 100 */
    int32_t max_epochs;           /* 10 */
    int is_cosine_annealing;      /* 1: restart the warmup + cosine cycle every epoch; 0: one cycle */
    /* Fields below were added after ABI 1's first release; a caller built against the older header
     * passes the older struct_size and gets their defaults. */
    int32_t activation_checkpointing; /* 0 (default): the backward tape keeps every layer's activations;
                                       * 1: it keeps only each layer's input and backward recomputes the
                                       * layer (one more forward pass, a fraction of the memory; the
                                       * gradients are bit-identical) */
    int32_t base_precision;       /* an ullme_precision for the frozen base's forward and backward products:
                                   * ULLME_PRECISION_DEFAULT / _EXACT (default: float32, whatever the
                                   * ULLME_PRECISION environment variable says) or _BF16 (operands rounded to
                                   * bfloat16 with float32 sums on AVX512_BF16; LoRA, head, gradients and AdamW
                                   * stay float32; one more copy of the linear weights); _INT8 is refused.
                                   * ullme_trainer_base_precision_path says what runs. */
} ullme_trainer_params;

ULLME_API ullme_trainer_params ullme_trainer_default_params(void);
/* Creates a trainer on a loaded model (the model's pooling applies to the embedding objective). */
ULLME_API int ullme_trainer_new(ullme_model *model, const ullme_trainer_params *params, ullme_trainer **out);
ULLME_API void ullme_trainer_free(ullme_trainer *trainer);
/* What the frozen base's training products run: "exact", "avx512_bf16", or "exact fallback: <why>" when
 * base_precision bf16 cannot run ("CPU has no AVX512_BF16"). *out is valid until ullme_trainer_free. */
ULLME_API int ullme_trainer_base_precision_path(const ullme_trainer *trainer, const char **out);
/* Trainable parameter count (LoRA A and B of every target plus the head). */
ULLME_API int ullme_trainer_parameter_count(const ullme_trainer *trainer, int64_t *out);

/* Token sequences are passed packed: ids holds n_seqs sequences back to back, lengths[i] tokens each.
 * example_ids (may be NULL: 0, 1, 2, ...) name each sequence for its dropout masks, so a sequence gets the
 * same masks in every call of one step (what GradCache needs). */

/* Embedding objective: forward (attention as given), pool, project, L2-normalise into reps_out[n_seqs * dim]
 * (may be NULL), then back-propagate d_reps[n_seqs * dim] = dLoss/dreps into the LoRA and head gradients. */
ULLME_API int ullme_trainer_embedding_backward(ullme_trainer *trainer, const int32_t *ids, const size_t *lengths,
                                               size_t n_seqs, const int64_t *example_ids, ullme_attention attention,
                                               const float *d_reps, size_t d_reps_len, float *reps_out, size_t reps_len);
/* Embedding forward only with the current adapters and head, no dropout: reps_out[n_seqs * dim]. */
ULLME_API int ullme_trainer_encode(ullme_trainer *trainer, const int32_t *ids, const size_t *lengths, size_t n_seqs,
                                   ullme_attention attention, float *reps_out, size_t reps_len);
/* Causal LM objective: mean next-token cross-entropy over labelled tokens (labels packed like ids; -100 =
 * ignored; row t predicts labels[t + 1] as Hugging Face shifts them). Writes the loss, accumulates gradients. */
ULLME_API int ullme_trainer_lm_backward(ullme_trainer *trainer, const int32_t *ids, const int32_t *labels,
                                        const size_t *lengths, size_t n_seqs, float *loss_out);
/* Clips, applies one AdamW step at the scheduled rate and clears the gradients. lr_out and grad_norm_out
 * (before clipping) may be NULL. A non-finite gradient norm, or an update that would make a parameter or
 * AdamW moment non-finite, skips the update (nothing changes, the gradients are dropped) and returns
 * ULLME_E_STATE. */
ULLME_API int ullme_trainer_step(ullme_trainer *trainer, double *lr_out, float *grad_norm_out);

/* ---- GRL fine-tuning runs ------------------------------------------------------------------- */
/* One logged optimiser step of a run. */
typedef struct {
    int32_t step, total_steps, epoch;
    float loss, contrastive, generative, kl;   /* total and each term (0 when off) */
    double learning_rate;
    float grad_norm;                            /* before clipping */
    double seconds, tokens_per_second;
    int32_t nonfinite;                          /* 0; 1: the loss, gradient norm or updated parameters were not
                                                 * finite and the update was not applied (see nonfinite_policy) */
} ullme_train_log;

/* Called after every step, also a non-finite one; return non-zero to stop (a checkpoint is written first;
 * the call then returns ULLME_E_CANCELLED). */
typedef int (*ullme_train_log_fn)(void *user, const ullme_train_log *record);

/* Runs GRL fine-tuning from a YAML config (the reference's keys plus ours: model, data, output_dir; see
 * examples/grl-wordnet.yaml): loads the model and data, trains LoRA + projection head with GradCache, writes
 * output_dir/log.jsonl, atomic checkpoints (output_dir/checkpoint.safetensors) and at the end the PEFT adapter
 * (output_dir/adapter). resume != 0 continues from the checkpoint in output_dir (bit-identical to an
 * uninterrupted run). Unknown config keys are warnings, not errors (the CLI prints them).
 * A step whose loss, gradient norm or updated parameters are NaN/inf is never applied and never reaches a
 * checkpoint; it is logged (log.jsonl "nonfinite", the record's nonfinite = 1), then the config key
 * nonfinite_policy decides: stop (default) writes the last good state as the checkpoint and returns
 * ULLME_E_STATE naming the step; skip drops the step's update and continues. A failed checkpoint or log
 * write (disk full: ENOSPC, EFBIG) returns ULLME_E_IO naming the file and errno; the previous checkpoint
 * stays intact. */
ULLME_API int ullme_train_run(const char *config_path, int resume, ullme_train_log_fn log, void *user);

#ifdef __cplusplus
}
#endif
#endif /* ULLME_H */
