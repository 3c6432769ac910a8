// CUDA device queries for start-up decisions and `qscope info --system`. Never throws: a
// machine without a driver or device simply reports 0 devices.
#pragma once
#include <cstdint>
#include <string>

namespace qs::gpu {

// Number of usable CUDA devices; 0 when cudaGetDeviceCount fails (no driver, no device).
int cudaDeviceCount();

// "cuda:0 NVIDIA H100 80GB HBM3 (sm_90), 78.6 GiB free / 79.1 GiB total"; a line naming the
// CUDA error when the device cannot be queried.
std::string cudaDeviceDescription(int device);

// One line per device, or "CUDA: no device (<reason>)"; the runtime version comes first.
std::string cudaSystemDescription();

// Free and total memory of a device (cudaMemGetInfo; the current device is restored); false on
// any CUDA error. Registered into core as qs::deviceMemory (core/util/memory.h).
bool cudaMemory(int device, int64_t* freeBytes, int64_t* totalBytes);

// True when this build registers kernels into core's dispatch (built with a CUDA LibTorch).
bool cudaDispatchCompiled();

}  // namespace qs::gpu
