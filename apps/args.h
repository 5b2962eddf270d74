// Number and switch arguments of the command-line apps: the whole text must parse, and the error
// names the flag and the text; and the cuDNN and --precision flags that glia-infer and glia-serve
// share (glia-train passes --precision on as the config key `precision`). Used by apps/eval,
// apps/infer, apps/model, apps/serve and apps/train.
#pragma once

#include <stdexcept>
#include <string>

#include "engine/policy.h"
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

// "true" or "false".
inline bool parse_bool(const std::string& flag, const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  throw std::invalid_argument(flag + " needs true or false, got '" + text + "'");
}

// --cudnn-deterministic true|false and --cudnn-find true|false (engine/policy.h CudnnChoices):
// whether `flag` is one of them; its value, taken with `value()`, is then parsed into `choices`.
template <class Value>
bool parse_cudnn_flag(const std::string& flag, Value&& value, CudnnChoices& choices) {
  if (flag == "--cudnn-deterministic") {
    choices.deterministic = parse_bool(flag, value());
  } else if (flag == "--cudnn-find") {
    choices.find = parse_bool(flag, value());
  } else {
    return false;
  }
  return true;
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
