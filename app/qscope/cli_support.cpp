#include "app/qscope/cli_support.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/memory.h"

namespace qs::cli {
namespace {

std::atomic<ProgressBar*> g_active{nullptr};
std::atomic<int> g_interrupts{0};

void onSigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    const char msg[] = "\nqscope: interrupted twice, exiting now\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
  // No job running yet (still tokenizing or loading): the next ProgressBar starts cancelled.
  if (auto* p = g_active.load()) p->requestCancel();
  const char msg[] = "\nqscope: cancelling (Ctrl-C again to exit at once)...\n";
  (void)!::write(2, msg, sizeof msg - 1);
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), tty_(::isatty(2) != 0) {
  installInterruptHandler();
  g_active.store(this);
  if (g_interrupts.load() > 0) requestCancel();  // Ctrl-C came before the job started
}

void installInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = onSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

ProgressBar::~ProgressBar() {
  finish();
  g_active.store(nullptr);
}

void ProgressBar::update(double fraction, const std::string& message) {
  if (!enabled_) return;
  fraction = std::min(1.0, std::max(0.0, fraction));
  if (tty_) {
    double t = now();
    if (fraction < 1.0 && t - lastDraw_ < 0.1) return;
    lastDraw_ = t;
    const int width = 30;
    int filled = static_cast<int>(fraction * width + 0.5);
    std::string bar(filled, '#');
    bar += std::string(width - filled, ' ');
    std::fprintf(stderr, "\r\033[K%s [%s] %3d%%  %s", label_.c_str(), bar.c_str(),
                 static_cast<int>(fraction * 100), message.c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else {
    int decile = static_cast<int>(fraction * 10);
    if (decile == lastDecile_) return;
    lastDecile_ = decile;
    std::fprintf(stderr, "%s %3d%%  %s\n", label_.c_str(), decile * 10, message.c_str());
  }
}

void ProgressBar::finish() {
  if (drawn_ && tty_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

void addRunOptions(CLI::App& cmd, RunOptions& o) {
  cmd.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "float32, bfloat16 or float16 (weights and compute)")
      ->capture_default_str();
  cmd.add_option("--threads", o.threads, "CPU threads for LibTorch (0 = all cores)")->capture_default_str();
  cmd.add_option("--exec", o.exec, "auto: whole model when it fits the memory budget, else block by block; whole; "
                                   "stream (block by block: peak memory one block + activations)")
      ->capture_default_str();
  cmd.add_option("--max-memory", o.maxMemory, "memory budget on the compute device, e.g. 24G or 3.5GiB (default: "
                                              "85% of the free RAM / GPU memory)");
}

model::ExecOptions resolveExecOptions(const RunOptions& o) {
  model::ExecOptions e;
  e.mode = model::parseExecMode(o.exec, "--exec");
  if (!o.maxMemory.empty()) e.maxMemoryBytes = parseMemorySize(o.maxMemory, "--max-memory");
  return e;
}

model::LoadOptions resolveRunOptions(const RunOptions& o) {
  model::LoadOptions lo;
  if (o.threads < 0) throw Error("--threads: must not be negative");
  if (o.threads > 0) at::set_num_threads(o.threads);
  const std::string& d = o.dtype;
  if (d == "float32" || d == "fp32" || d == "f32") lo.dtype = at::kFloat;
  else if (d == "bfloat16" || d == "bf16") lo.dtype = at::kBFloat16;
  else if (d == "float16" || d == "fp16" || d == "f16" || d == "half") lo.dtype = at::kHalf;
  else throw Error("--dtype: unknown value '" + d + "' (use float32, bfloat16 or float16)");
  try {
    lo.device = c10::Device(o.device);
  } catch (const std::exception&) {
    throw Error("--device: unknown value '" + o.device + "' (use cpu, cuda or cuda:N)");
  }
  if (lo.device.is_cuda()) {
    if (!at::hasCUDA())
      throw Error("--device " + o.device +
                  ": this LibTorch build has no CUDA support (Debian's LibTorch is CPU-only); "
                  "build QuantScope against a CUDA LibTorch (see README, GPU build) or use --device cpu");
    int n = static_cast<int>(at::getNumGPUs());
    if (lo.device.has_index() && lo.device.index() >= n)
      throw Error("--device " + o.device + ": only " + std::to_string(n) + " CUDA device(s) present");
  } else if (!lo.device.is_cpu()) {
    throw Error("--device: unsupported device '" + o.device + "' (use cpu or cuda)");
  }
  if (lo.device.is_cpu() && lo.dtype == at::kHalf)
    log::info("--dtype float16 on the CPU: weights are stored in float16 and multiplied in float32 "
              "(LibTorch has no CPU float16 matrix product)");
  return lo;
}

void printJson(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

std::string formatThousands(long long n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

}  // namespace qs::cli
