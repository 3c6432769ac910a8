// Remaining-time estimate of a job from its progress fractions, for the GUI's Jobs dock. The rate
// is measured from the first update that shows progress (f > 0), so set-up time before it (reading
// data, opening the model) does not distort the estimate. Torch- and Qt-free; times in seconds.
#pragma once
#include <string>

namespace qs::jobs {

class EtaEstimator {
 public:
  // Feed every progress update: seconds since the job started and its fraction in [0, 1].
  void update(double elapsedS, double fraction);
  // Seconds left, or a negative number while unknown (no progress yet, or < minSpan of it).
  double remainingS() const;
  double fraction() const { return last_; }

  static constexpr double kMinSpanS = 0.5;      // measure at least this long before estimating
  static constexpr double kMinFraction = 0.01;  // ... and over at least this much progress

 private:
  double t0_ = -1, f0_ = 0;  // first update with progress
  double t_ = 0, last_ = 0;
};

// "0:07", "3:05", "1:02:03"; "—" for a negative (unknown) duration.
std::string formatDuration(double seconds);

}  // namespace qs::jobs
