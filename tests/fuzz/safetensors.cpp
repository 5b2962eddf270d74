// Fuzz target: safetensors files as checkpoints and optimiser-state files are loaded. The bytes
// are parsed by io::decode_safetensors; the metadata then goes through UNetConfig::from_metadata
// (the architecture a checkpoint names) and the tensors are loaded, not strictly, into a small
// fixed model (nets::load_weights) and, as optimiser state, into an AdamW over that model
// (Optimizer::import_state), the two consumers of a checkpoint's tensors.
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/optim/adam.h"
#include "io/safetensors.h"
#include "nets/model/checkpoint.h"
#include "nets/model/unet.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// The model the tensors are loaded into: built once, as small as the architecture allows.
glia::nets::MultiTaskUNet& small_model() {
  static const std::shared_ptr<glia::nets::MultiTaskUNet> model = [] {
    glia::nets::UNetConfig config;
    config.base_filters = 2;
    config.depth = 1;
    config.cls_hidden = 4;
    return glia::nets::init_model(config, 0);
  }();
  return *model;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  glia::io::SafetensorsContent content;
  if (!glia::fuzz::accept_or_reject(
          [&] { content = glia::io::decode_safetensors(bytes, "input.safetensors"); })) {
    return 0;
  }
  glia::fuzz::accept_or_reject(
      [&] { (void)glia::nets::UNetConfig::from_metadata(content.metadata); });
  glia::nets::MultiTaskUNet& model = small_model();
  glia::fuzz::accept_or_reject(
      [&] { glia::nets::load_weights(model, content.tensors, false, "input.safetensors"); });
  glia::optim::AdamW optimizer({{.params = model.parameters()}});
  glia::fuzz::accept_or_reject([&] { optimizer.import_state(content.tensors); });
  return 0;
}
