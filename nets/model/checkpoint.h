// Model checkpoints: a MultiTaskUNet's state dict (parameters and batch-norm running statistics,
// by their dotted names) in a safetensors file (io/safetensors.h) whose metadata holds the
// architecture (UNetConfig::to_metadata) and, when training saves it, stage, epoch and metrics.
// Loading is strict by default: a missing or unexpected key, or a shape or dtype that does not
// match the model, throws listing the names. PyTorch's "<bn>.num_batches_tracked" counters are
// accepted and ignored (the engine's batch norm uses a fixed momentum and keeps no counter), so a
// torch state dict loads unchanged; PyTorch in turn fills them with 0 when loading ours.
// Tested in tests/nets/model/checkpoint_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "engine/device.h"
#include "engine/optim/optimizer.h"
#include "io/safetensors.h"
#include "nets/model/unet.h"

namespace glia::nets {

// A freshly initialised model: every layer drawn from a Philox generator seeded with `seed`.
std::shared_ptr<MultiTaskUNet> init_model(const UNetConfig& config, std::uint64_t seed);

// The model's state dict with its architecture (plus `extra`, e.g. stage, epoch, metrics) as
// metadata, written atomically.
void save_checkpoint(const std::filesystem::path& path, const MultiTaskUNet& model,
                     const io::Metadata& extra = {});
// init_model + save_checkpoint, with "seed" in the metadata: the checkpoint of an untrained model.
// Returns the model written.
std::shared_ptr<MultiTaskUNet> write_initial_checkpoint(const std::filesystem::path& path,
                                                        const UNetConfig& config,
                                                        std::uint64_t seed);

// Copies `state` into the model. strict: every model key must be present and no other key may
// be; either way a shape or dtype mismatch throws. `what` (a file name) prefixes the message.
void load_weights(MultiTaskUNet& model, const io::TensorMap& state, bool strict = true,
                  const std::string& what = "checkpoint");

struct LoadedModel {
  std::shared_ptr<MultiTaskUNet> model;
  io::Metadata metadata;
};
// Builds the architecture the checkpoint's metadata names, loads its weights and moves the model
// to `device`. Errors name the file.
LoadedModel load_checkpoint(const std::filesystem::path& path, Device device = Device::cpu(),
                            bool strict = true);

// The optimiser-state file kept beside a checkpoint: "run/best.safetensors" ->
// "run/best.optim.safetensors".
std::filesystem::path optimizer_state_path(const std::filesystem::path& checkpoint);
// Writes the optimiser's export_state() (with `metadata`) to `path`, atomically.
void save_optimizer_state(const std::filesystem::path& path, const optim::Optimizer& optimizer,
                          const io::Metadata& metadata = {});
// Reads `path` into the optimiser (import_state checks names, shapes and dtypes against its
// groups) and returns the file's metadata.
io::Metadata load_optimizer_state(const std::filesystem::path& path, optim::Optimizer& optimizer);

}  // namespace glia::nets
