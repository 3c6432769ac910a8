// Reference conversions by llama.cpp's own ggml (the libggml-base.so node-llama-cpp ships):
//   ggml_ref quantize TYPE N IN.f32 OUT.bin     rows of N floats -> ggml_quantize_chunk(TYPE), no imatrix
//   ggml_ref dequantize TYPE N IN.bin OUT.f32   rows of TYPE -> floats (the type's to_float)
// TYPE is a GGML type id. Built by tests/llamacpp/install.sh; used by tests/io/ggml_quants_test.
#include <ggml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* slurp(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  void* p = malloc(*size ? *size : 1);
  if (*size && fread(p, 1, *size, f) != *size) { perror(path); exit(2); }
  fclose(f);
  return p;
}

static void spit(const char* path, const void* p, size_t size) {
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(p, 1, size, f) != size) { perror(path); exit(2); }
  fclose(f);
}

int main(int argc, char** argv) {
  if (argc != 6) { fprintf(stderr, "usage: ggml_ref quantize|dequantize TYPE N IN OUT\n"); return 2; }
  const enum ggml_type type = (enum ggml_type)atoi(argv[2]);
  const int64_t n = atoll(argv[3]);
  size_t size = 0;
  void* in = slurp(argv[4], &size);
  const size_t rowBytes = ggml_row_size(type, n);
  if (strcmp(argv[1], "quantize") == 0) {
    const int64_t rows = (int64_t)(size / sizeof(float)) / n;
    void* out = malloc(rowBytes * (size_t)rows + 1);
    ggml_quantize_init(type);
    const size_t written = ggml_quantize_chunk(type, (const float*)in, out, 0, rows, n, NULL);
    spit(argv[5], out, written);
  } else {
    const int64_t rows = (int64_t)(size / rowBytes);
    float* out = malloc(sizeof(float) * (size_t)(rows * n) + 1);
    const struct ggml_type_traits* t = ggml_get_type_traits(type);
    for (int64_t r = 0; r < rows; ++r) t->to_float((const char*)in + r * rowBytes, out + r * n, n);
    spit(argv[5], out, sizeof(float) * (size_t)(rows * n));
  }
  return 0;
}
