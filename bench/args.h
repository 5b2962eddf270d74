// Command-line reading shared by the benchmark programs in bench/: a cursor over the flags that
// hands out each flag's value (an error names a flag left without one), numbers that must parse
// whole (apps/args.h, so "4x" is refused rather than read as 4), and the one main() wrapper that
// prints "<program>: <error>" and exits 1.
#pragma once

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include "apps/args.h"

namespace glia::bench {

class Args {
 public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next flag; false when none is left.
  bool next() {
    if (++at_ >= argc_) return false;
    flag_ = argv_[at_];
    return true;
  }
  const std::string& flag() const { return flag_; }
  bool is(const char* name) const { return flag_ == name; }

  // The argument after the current flag, which it consumes.
  std::string value() {
    if (at_ + 1 >= argc_) throw std::invalid_argument(flag_ + " needs a value");
    return argv_[++at_];
  }
  int integer(long long minimum = 0) {
    return static_cast<int>(apps::parse_integer(flag_, value(), minimum));
  }
  double number() { return apps::parse_number(flag_, value()); }

  [[noreturn]] void unknown(const std::string& usage) const {
    throw std::invalid_argument("unknown argument '" + flag_ + "'; usage: " + usage);
  }

 private:
  int argc_;
  char** argv_;
  int at_ = 0;
  std::string flag_;
};

// Runs a benchmark's body, turning an exception into a message and exit status 1.
template <class Body>
int run_main(const char* program, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace glia::bench
