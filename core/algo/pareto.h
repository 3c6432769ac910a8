// Pareto fronts of minimisation problems: the points no other point dominates. a dominates b
// when a is no worse in every objective and strictly better in at least one; equal points do
// not dominate each other, so duplicates on the front are all kept. Points with a NaN objective
// are never on the front.
#pragma once
#include <cstddef>
#include <vector>

namespace qs::algo {

bool dominates(const std::vector<double>& a, const std::vector<double>& b);

// Indices of the non-dominated points, in input order. Throws qs::Error when the points do not
// all have the same number of objectives.
std::vector<size_t> paretoFront(const std::vector<std::vector<double>>& points);

}  // namespace qs::algo
