#include "gpu/device.h"

#include <cuda_runtime_api.h>

#include <cstdio>

namespace qs::gpu {
namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string cudaVersionString(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace

int cudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the error so later CUDA calls do not report it
    return 0;
  }
  return count;
}

std::string cudaDeviceDescription(int device) {
  const std::string tag = "cuda:" + std::to_string(device);
  cudaDeviceProp prop{};
  cudaError_t err = cudaGetDeviceProperties(&prop, device);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return tag + " unavailable (" + cudaGetErrorString(err) + ")";
  }
  std::string line = tag + " " + prop.name + " (sm_" + std::to_string(prop.major) +
                     std::to_string(prop.minor) + "), ";
  // cudaMemGetInfo works on the current device; restore it so callers see no side effect.
  int previous = 0;
  cudaGetDevice(&previous);
  size_t freeBytes = 0, totalBytes = 0;
  err = cudaSetDevice(device);
  if (err == cudaSuccess) err = cudaMemGetInfo(&freeBytes, &totalBytes);
  cudaSetDevice(previous);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return line + gib(prop.totalGlobalMem) + " total (free memory unknown: " +
           cudaGetErrorString(err) + ")";
  }
  return line + gib(freeBytes) + " free / " + gib(totalBytes) + " total";
}

bool cudaMemory(int device, int64_t* freeBytes, int64_t* totalBytes) {
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  size_t f = 0, t = 0;
  cudaError_t err = cudaSetDevice(device);
  if (err == cudaSuccess) err = cudaMemGetInfo(&f, &t);
  cudaSetDevice(previous);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *freeBytes = static_cast<int64_t>(f);
  *totalBytes = static_cast<int64_t>(t);
  return true;
}

std::string cudaSystemDescription() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  std::string out = "CUDA runtime " + cudaVersionString(runtime) + ", driver " +
                    (driver ? cudaVersionString(driver) : std::string("none")) +
                    (cudaDispatchCompiled() ? ", kernels dispatched from core"
                                            : ", kernels built but not dispatched (CPU LibTorch)");
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return out + "\nCUDA: no device (" + cudaGetErrorString(err) + ")";
  }
  if (count == 0) return out + "\nCUDA: no device";
  for (int i = 0; i < count; ++i) out += "\n" + cudaDeviceDescription(i);
  return out;
}

bool cudaDispatchCompiled() {
#ifdef QS_GPU_TORCH
  return true;
#else
  return false;
#endif
}

}  // namespace qs::gpu
