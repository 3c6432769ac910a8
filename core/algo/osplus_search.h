// How OS+ searches its clipping threshold on the grid of search_steps + 1 candidates (os_plus.h).
#pragma once
#include <string>

namespace qs::algo {

enum class OsPlusSearch {
  Refine,  // "refine": every ceil(steps / 10)-th candidate, then halving steps around the best
  Grid,    // "grid": every candidate (the paper's search)
};
const char* osPlusSearchName(OsPlusSearch s);
OsPlusSearch parseOsPlusSearch(const std::string& name);  // "refine" | "grid"; throws qs::Error naming both

}  // namespace qs::algo
