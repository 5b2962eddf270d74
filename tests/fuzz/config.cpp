// Fuzz target: YAML training configurations. The bytes are a config file, loaded for the stage it
// names by nets::load_training_config (io::Config: YAML parsing, every key checked against the
// training schema, stage sections merged) and turned into the trainer's typed view
// (nets::to_train_config).
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>

#include "nets/train/train_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = glia::fuzz::write_input(data, size, "input.yaml");
  glia::fuzz::accept_or_reject([&] {
    const glia::io::Config config = glia::nets::load_training_config(path, 0);
    (void)glia::nets::to_train_config(config);
  });
  return 0;
}
