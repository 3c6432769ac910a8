#include "core/util/oom.h"

namespace qs {

std::string outOfMemoryMessage(const OomContext& c, const std::string& detail) {
  std::string m = "out of memory on " + (c.device.empty() ? std::string("the compute device") : c.device) +
                  " during " + c.what;
  if (!c.lower.empty()) {
    m += "; lower ";
    for (size_t i = 0; i < c.lower.size(); ++i) {
      if (i > 0) m += i + 1 == c.lower.size() ? " or " : ", ";
      const OomContext::Knob& k = c.lower[i];
      m += "the " + k.name + " (" + (k.flag.empty() ? std::string() : k.flag + ", ") + "now " +
           std::to_string(k.now) + ")";
    }
  }
  if (!c.hint.empty()) m += "; " + c.hint;
  const std::string first = detail.substr(0, detail.find('\n'));
  if (!first.empty()) m += " [" + first + "]";
  return m;
}

bool isOutOfMemoryText(const std::string& what) {
  return what.find("out of memory") != std::string::npos || what.find("Out of memory") != std::string::npos ||
         what.find("OutOfMemory") != std::string::npos || what.find("can't allocate memory") != std::string::npos;
}

}  // namespace qs
