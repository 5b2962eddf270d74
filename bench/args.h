// Command-line reading shared by the benchmark programs in bench/: a cursor over the flags that
// hands out each flag's value (an error names a flag left without one), numbers that must parse
// whole (apps/args.h, so "4x" is refused rather than read as 4), comma-separated precision lists
// (engine/precision.h names; a program that reads one links glia_engine), and the one main()
// wrapper that prints "<program>: <error>" and exits 1. The precision list is exercised by the
// ctests cpu:bench.layers_quick and cpu:bench.model_quick.
#pragma once

#include <algorithm>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/args.h"
#include "engine/precision.h"

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
  // A list such as "fp32,tf32,bf16,fp16", in the order given; an empty item, an unknown name or a
  // repeated one is an error naming the flag.
  std::vector<Precision> precisions() {
    const std::string text = value();
    std::vector<Precision> list;
    for (std::size_t begin = 0;;) {
      const std::size_t end = std::min(text.find(',', begin), text.size());
      const std::string item = text.substr(begin, end - begin);
      Precision p;
      try {
        p = parse_precision(item);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(flag_ + " '" + text + "': " + e.what());
      }
      if (std::find(list.begin(), list.end(), p) != list.end()) {
        throw std::invalid_argument(flag_ + " '" + text + "' names " + item + " twice");
      }
      list.push_back(p);
      if (end == text.size()) break;
      begin = end + 1;
    }
    return list;
  }

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
