// A CPU allocator that wraps LibTorch's and records the bytes live at once: tests measure the
// peak tensor memory of a job with it (what streaming block by block is meant to bound). Install
// once per process (it stays installed; each scope resets the peak).
#pragma once
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace qs::test {

class CountingCpuAllocator final : public c10::Allocator {
 public:
  // Installs the allocator process-wide (idempotent) and returns it.
  static CountingCpuAllocator& install() {
    static CountingCpuAllocator* self = [] {
      auto* a = new CountingCpuAllocator(c10::GetCPUAllocator());  // never freed: tensors outlive tests
      c10::SetCPUAllocator(a, /*priority=*/100);
      return a;
    }();
    return *self;
  }

  c10::DataPtr allocate(size_t n) const override {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    auto* ctx = new Ctx{std::move(inner), static_cast<int64_t>(n), const_cast<CountingCpuAllocator*>(this)};
    const int64_t now = current_.fetch_add(ctx->bytes) + ctx->bytes;
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return {data, ctx, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }
  // Starts a new measurement: the peak becomes what is live now.
  void resetPeak() { peak_.store(current_.load()); }

 private:
  explicit CountingCpuAllocator(c10::Allocator* base) : base_(base) {}
  struct Ctx {
    c10::DataPtr inner;
    int64_t bytes;
    CountingCpuAllocator* owner;
  };
  static void release(void* p) {
    auto* ctx = static_cast<Ctx*>(p);
    ctx->owner->current_.fetch_sub(ctx->bytes);
    delete ctx;  // frees the inner allocation
  }
  c10::Allocator* base_;
  mutable std::atomic<int64_t> current_{0}, peak_{0};
};

}  // namespace qs::test
