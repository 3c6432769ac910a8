// Small string helpers shared across core/ and app/ (torch-free, header-only).
#pragma once
#include <cctype>
#include <string>

namespace qs::str {

inline bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// ASCII lower case (option values, file extensions); not a Unicode case fold.
inline std::string toLower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ASCII upper case (type names such as "Q4_K").
inline std::string toUpper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// s without leading/trailing characters from `chars`.
inline std::string trim(const std::string& s, const char* chars = " \t\r\n") {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

}  // namespace qs::str
