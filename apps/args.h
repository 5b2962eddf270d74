// Number arguments of the command-line apps: the whole text must parse, and the error names the
// flag and the text. Used by apps/eval, apps/infer and apps/model. Also --precision for
// glia-infer and glia-serve (glia-train passes it on as the config key `precision`).
#pragma once

#include <stdexcept>
#include <string>

#include "engine/precision.h"

namespace glia::apps {

inline double parse_number(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    throw std::invalid_argument(flag + " needs a number, got '" + text + "'");
  }
  return v;
}

inline long long parse_integer(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    throw std::invalid_argument(flag + " needs an integer, got '" + text + "'");
  }
  return v;
}

// An integer of at least `minimum`.
inline long long parse_integer(const std::string& flag, const std::string& text,
                               long long minimum) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < minimum) {
    throw std::invalid_argument(flag + " needs an integer >= " + std::to_string(minimum) +
                                ", got '" + text + "'");
  }
  return v;
}

// --precision fp32|tf32|bf16|fp16: the format of convolutions and GEMMs for the whole process.
inline void set_precision_flag(const std::string& flag, const std::string& text) {
  try {
    set_precision(parse_precision(text));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(flag + ": " + e.what());
  }
}

}  // namespace glia::apps
