// EtaEstimator: see eta.h.
#include "core/jobs/eta.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qs::jobs {

void EtaEstimator::update(double elapsedS, double fraction) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  if (t0_ < 0 && fraction > 0) {
    t0_ = elapsedS;
    f0_ = fraction;
  }
  t_ = elapsedS;
  last_ = std::max(last_, fraction);  // a stage that restarts its fraction does not rewind the bar
}

double EtaEstimator::remainingS() const {
  if (t0_ < 0) return -1;
  const double span = t_ - t0_, done = last_ - f0_;
  if (last_ >= 1.0) return 0;
  if (span < kMinSpanS || done < kMinFraction) return -1;
  return span * (1.0 - last_) / done;
}

std::string formatDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "\u2014";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

}  // namespace qs::jobs
