// llama.cpp itself (the libllama node-llama-cpp ships, CPU backend) on a GGUF file:
//   llama_logits logits MODEL.gguf TOKENS.i32 NCTX OUT.f32 [kv-f32]
//       each window of NCTX tokens from a fresh cache; the logits of every position, in order
//   llama_logits tokenize MODEL.gguf TEXT OUT.i32
//       llama.cpp's tokenization of the text file (BOS as the vocabulary says)
//   llama_logits ppl MODEL.gguf TEXT NCTX NWINDOWS
//       llama.cpp's perplexity of the text (its own tokenization), GPTQ's protocol: the first
//       NWINDOWS non-overlapping windows of NCTX tokens, exp of the mean of per-window mean NLL
//   llama_logits quantize IN.gguf OUT.gguf FTYPE
//       llama-quantize's conversion (llama_model_quantize, no importance matrix) to a llama_ftype
// Built by tests/llamacpp/install.sh with QS_LLAMA_LIBDIR (where the backends are loaded from).
#include <ggml-backend.h>
#include <llama.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* slurp(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char* p = malloc(*size + 1);
  if (*size && fread(p, 1, *size, f) != *size) { perror(path); exit(2); }
  p[*size] = 0;
  fclose(f);
  return p;
}

static void quiet(enum ggml_log_level level, const char* text, void* user) {
  (void)user;
  if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: llama_logits logits MODEL TOKENS NCTX OUT [kv-f32] | tokenize MODEL TEXT OUT | "
                    "ppl MODEL TEXT NCTX NWINDOWS | quantize IN OUT FTYPE\n");
    return 2;
  }
  llama_log_set(quiet, NULL);
  ggml_backend_load_all_from_path(QS_LLAMA_LIBDIR);
  llama_backend_init();
  if (strcmp(argv[1], "quantize") == 0) {
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = (enum llama_ftype)atoi(argv[4]);
    qp.nthread = 2;
    return llama_model_quantize(argv[2], argv[3], &qp) == 0 ? 0 : 1;
  }
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model* model = llama_model_load_from_file(argv[2], mp);
  if (!model) { fprintf(stderr, "llama.cpp could not load %s\n", argv[2]); return 1; }
  const struct llama_vocab* vocab = llama_model_get_vocab(model);

  if (strcmp(argv[1], "tokenize") == 0) {
    size_t size = 0;
    const char* text = slurp(argv[3], &size);
    int32_t cap = (int32_t)size + 16;
    llama_token* ids = malloc(sizeof(llama_token) * (size_t)cap);
    const int32_t n = llama_tokenize(vocab, text, (int32_t)size, ids, cap, true, false);
    if (n < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    FILE* f = fopen(argv[4], "wb");
    fwrite(ids, sizeof(llama_token), (size_t)n, f);
    fclose(f);
    return 0;
  }

  if (strcmp(argv[1], "ppl") == 0) {
    if (argc < 6) { fprintf(stderr, "ppl: MODEL TEXT NCTX NWINDOWS\n"); return 2; }
    size_t size = 0;
    const char* text = slurp(argv[3], &size);
    const int32_t cap = (int32_t)size + 16;
    llama_token* ids = malloc(sizeof(llama_token) * (size_t)cap);
    const int32_t n = llama_tokenize(vocab, text, (int32_t)size, ids, cap, true, false);
    const int32_t nctx = atoi(argv[4]);
    int32_t windows = atoi(argv[5]);
    if (n < 0 || nctx < 2) { fprintf(stderr, "tokenize failed\n"); return 1; }
    if (windows > n / nctx) windows = n / nctx;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)nctx;
    cp.n_batch = cp.n_ubatch = (uint32_t)nctx;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    struct llama_context* ctx = llama_init_from_model(model, cp);
    const int32_t nvocab = llama_vocab_n_tokens(vocab);
    struct llama_batch batch = llama_batch_init(nctx, 0, 1);
    double sum = 0;
    for (int32_t w = 0; w < windows; ++w) {
      llama_memory_clear(llama_get_memory(ctx), true);
      batch.n_tokens = nctx;
      for (int32_t i = 0; i < nctx; ++i) {
        batch.token[i] = ids[w * nctx + i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
      }
      if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
      double nll = 0;
      for (int32_t i = 0; i + 1 < nctx; ++i) {
        const float* l = llama_get_logits_ith(ctx, i);
        double mx = l[0], z = 0;
        for (int32_t v = 1; v < nvocab; ++v) mx = l[v] > mx ? l[v] : mx;
        for (int32_t v = 0; v < nvocab; ++v) z += exp(l[v] - mx);
        nll += -(l[ids[w * nctx + i + 1]] - mx - log(z));
      }
      sum += nll / (nctx - 1);
    }
    printf("%.6f %d\n", exp(sum / windows), windows);
    return 0;
  }
  if (argc < 6) { fprintf(stderr, "logits: MODEL TOKENS NCTX OUT [kv-f32]\n"); return 2; }
  size_t size = 0;
  const llama_token* tokens = slurp(argv[3], &size);
  const int32_t total = (int32_t)(size / sizeof(llama_token));
  const int32_t nctx = atoi(argv[4]);
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)nctx;
  cp.n_batch = cp.n_ubatch = (uint32_t)nctx;
  cp.n_threads = cp.n_threads_batch = 2;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  if (argc > 6 && strcmp(argv[6], "kv-f32") == 0) cp.type_k = cp.type_v = GGML_TYPE_F32;
  struct llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) { fprintf(stderr, "llama.cpp could not create a context\n"); return 1; }
  const int32_t nvocab = llama_vocab_n_tokens(vocab);
  FILE* out = fopen(argv[5], "wb");
  struct llama_batch batch = llama_batch_init(nctx, 0, 1);
  for (int32_t w = 0; w + nctx <= total; w += nctx) {
    llama_memory_clear(llama_get_memory(ctx), true);
    batch.n_tokens = nctx;
    for (int32_t i = 0; i < nctx; ++i) {
      batch.token[i] = tokens[w + i];
      batch.pos[i] = i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
    for (int32_t i = 0; i < nctx; ++i) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)nvocab, out);
  }
  fclose(out);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
