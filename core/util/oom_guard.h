// withOomMessage(context, f): runs f and turns an allocator failure (LibTorch's
// c10::OutOfMemoryError, an older LibTorch's "CUDA out of memory" c10::Error, std::bad_alloc)
// into qs::Error with outOfMemoryMessage, so a job stops with "lower the samples/seqlen/batch"
// instead of a raw stack trace. Header-only: included by the torch modules' job entry points
// (pipeline, evaluation, analysis); core/util itself stays torch-free.
#pragma once
#include <c10/util/Exception.h>

#include <new>
#include <utility>

#include "core/util/error.h"
#include "core/util/oom.h"

namespace qs {

template <class F>
auto withOomMessage(const OomContext& context, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const c10::OutOfMemoryError& e) {
    throw Error(outOfMemoryMessage(context, e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    if (!isOutOfMemoryText(e.what_without_backtrace())) throw;
    throw Error(outOfMemoryMessage(context, e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    OomContext host = context;
    host.device = "the host";
    throw Error(outOfMemoryMessage(host, "std::bad_alloc"));
  }
}

}  // namespace qs
