#include "core/eval/system_info.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/util/memory.h"

namespace qs::eval {
namespace {

int collectLib(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name && *info->dlpi_name) out->push_back(info->dlpi_name);
  return 0;
}

std::string realPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf)) return buf;
  return p;
}

}  // namespace

SystemInfo systemInfo() {
  SystemInfo s;
#ifdef TORCH_VERSION
  s.torchVersion = TORCH_VERSION;
#else
  s.torchVersion = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                   std::to_string(TORCH_VERSION_PATCH);
#endif
  s.intraOpThreads = at::get_num_threads();
  s.cpuCores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("model name", 0) == 0) {
        s.cpu = line.substr(line.find(':') + 2);
        break;
      }
  }
  // The BLAS LibTorch calls is whatever libblas.so.3 resolves to (Debian alternatives).
  std::vector<std::string> libs;
  dl_iterate_phdr(collectLib, &libs);
  for (auto& l : libs) {
    std::string real = realPath(l);
    bool isBlas = l.find("libblas") != std::string::npos || l.find("openblas") != std::string::npos ||
                  l.find("libmkl") != std::string::npos || l.find("blis") != std::string::npos;
    if (!isBlas) continue;
    s.blasLibrary = real;
    if (real.find("openblas") != std::string::npos) {
      using ConfigFn = char* (*)();
      auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
      std::string cfg = fn ? fn() : "";
      s.blas = cfg.rfind("OpenBLAS", 0) == 0 ? cfg : "OpenBLAS " + cfg;
    } else if (real.find("mkl") != std::string::npos) {
      s.blas = "Intel MKL";
    } else if (real.find("blis") != std::string::npos) {
      s.blas = "BLIS";
    } else {
      s.blas = "reference BLAS (slow: apt-get install libopenblas0-pthread)";
      s.slowBlas = true;
    }
    break;
  }
  if (s.blas.empty()) s.blas = "none loaded (LibTorch's own kernels)";
  s.torchHasCuda = at::hasCUDA();
  if (s.torchHasCuda) {
    for (int i = 0; i < static_cast<int>(at::getNumGPUs()); ++i) s.cudaDevices.push_back("cuda:" + std::to_string(i));
  }
  return s;
}

long long peakRssBytes() { return qs::peakRssBytes(); }

}  // namespace qs::eval
