#include "core/algo/pareto.h"

#include <cmath>

#include "core/util/error.h"

namespace qs::algo {

bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool strictly = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) strictly = true;
  }
  return strictly;
}

std::vector<size_t> paretoFront(const std::vector<std::vector<double>>& points) {
  for (const auto& p : points)
    if (p.size() != points.front().size())
      throw Error("paretoFront: points have " + std::to_string(points.front().size()) + " and " +
                  std::to_string(p.size()) + " objectives");
  auto valid = [](const std::vector<double>& p) {
    for (double v : p)
      if (std::isnan(v)) return false;
    return true;
  };
  // O(n^2 m): searches store tens to hundreds of trials.
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    if (!valid(points[i])) continue;
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j)
      dominated = j != i && valid(points[j]) && dominates(points[j], points[i]);
    if (!dominated) front.push_back(i);
  }
  return front;
}

}  // namespace qs::algo
