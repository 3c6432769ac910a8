// Checks of GGUF files against llama.cpp itself (tests/support/llamacpp.h's tools): its logits of
// token windows, llama-quantize's files compared tensor by tensor, perplexity of logits.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "core/io/gguf.h"
#include "core/model/model.h"
#include "core/util/fs.h"
#include "tests/support/llamacpp.h"
#include "tests/support/tensor_checks.h"
#include "tests/support/test_paths.h"

namespace qs::test {

inline std::string quote(const std::string& s) { return shellQuote(s); }

// llama.cpp's logits of every position of each window of ids [W, T] (fresh cache per window).
inline at::Tensor llamaLogits(const std::string& gguf, const at::Tensor& ids, int64_t vocab) {
  const std::string dir = tempDir("gguf-logits");
  const at::Tensor flat = ids.to(at::kInt).contiguous();
  fs::writeAtomic(dir + "/ids.i32",
                  std::string(reinterpret_cast<const char*>(flat.data_ptr<int32_t>()), static_cast<size_t>(flat.numel() * 4)));
  std::string err;
  EXPECT_EQ(runLlamaTool("llama_logits", "logits " + quote(gguf) + " " + quote(dir + "/ids.i32") + " " +
                                             std::to_string(ids.size(1)) + " " + quote(dir + "/out.f32") + " kv-f32",
                         &err),
            0) << err;
  const std::string b = fs::readText(dir + "/out.f32");
  at::Tensor out = at::empty({ids.size(0), ids.size(1), vocab}, at::kFloat);
  EXPECT_EQ(b.size(), static_cast<size_t>(out.numel() * 4));
  if (b.size() == static_cast<size_t>(out.numel() * 4)) std::memcpy(out.data_ptr<float>(), b.data(), b.size());
  return out;
}

// llama-quantize's file of `type` from QuantScope's F32 export must be QuantScope's file of that
// type: the same tensors, types and bytes. Returns the count of each type in the file.
inline std::map<std::string, int> expectSameTensors(const std::string& ours, const std::string& theirs,
                                                    const std::string& type) {
  const auto a = io::GgufFile::open(ours), b = io::GgufFile::open(theirs);
  EXPECT_EQ(a->tensors().size(), b->tensors().size()) << type;
  std::map<std::string, int> types;
  for (const auto& t : b->tensors()) {
    const io::GgufTensorInfo* o = a->find(t.name);
    if (!o) {
      ADD_FAILURE() << type << ": " << t.name << " missing";
      continue;
    }
    EXPECT_EQ(o->ggmlType, t.ggmlType) << type << " " << t.name << ": " << io::ggmlTypeName(o->ggmlType) << " vs "
                                       << io::ggmlTypeName(t.ggmlType);
    EXPECT_EQ(o->shape, t.shape) << t.name;
    if (o->nbytes != t.nbytes) {
      ADD_FAILURE() << type << " " << t.name << ": " << o->nbytes << " vs " << t.nbytes << " bytes";
      continue;
    }
    EXPECT_EQ(std::memcmp(a->data(*o), b->data(t), t.nbytes), 0) << type << " " << t.name << ": bytes differ";
    ++types[io::ggmlTypeName(t.ggmlType)];
  }
  return types;
}

inline double perplexity(const at::Tensor& logits, const at::Tensor& ids) {
  const int64_t t = ids.size(1);
  const at::Tensor lp = at::log_softmax(logits.slice(1, 0, t - 1).to(at::kDouble), -1);
  const at::Tensor nll = -lp.gather(-1, ids.slice(1, 1, t).unsqueeze(-1)).squeeze(-1);
  return std::exp(nll.mean().item<double>());
}

// QuantScope's and llama.cpp's logits of one GGUF file on ids: max |diff|, perplexities, top-1.
struct Agreement {
  double maxAbs, pOurs, pTheirs, top1;
};
inline Agreement compareWithLlamaCpp(const std::string& file, const at::Tensor& ids) {
  auto m = model::openModel(file);
  const at::Tensor ours = inferenceLogits(*m, ids);
  const at::Tensor theirs = llamaLogits(file, ids, ours.size(-1));
  return {(ours - theirs).abs().max().item<double>(), perplexity(ours, ids), perplexity(theirs, ids),
          (ours.argmax(-1) == theirs.argmax(-1)).to(at::kDouble).mean().item<double>()};
}

}  // namespace qs::test
