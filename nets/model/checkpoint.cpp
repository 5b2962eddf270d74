// Model checkpoints over safetensors; see checkpoint.h.
#include "nets/model/checkpoint.h"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"

namespace glia::nets {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::shared_ptr<MultiTaskUNet> init_model(const UNetConfig& config, std::uint64_t seed) {
  // Borrowed for the construction only: the model keeps no reference to it.
  Generator generator(seed);
  return std::make_shared<MultiTaskUNet>(config, &generator);
}

void save_checkpoint(const std::filesystem::path& path, const MultiTaskUNet& model,
                     const io::Metadata& extra) {
  io::Metadata metadata = extra;
  for (const auto& [key, value] : model.config().to_metadata()) metadata[key] = value;
  io::save_safetensors(path, model.state_dict(), metadata);
}

std::shared_ptr<MultiTaskUNet> write_initial_checkpoint(const std::filesystem::path& path,
                                                        const UNetConfig& config,
                                                        std::uint64_t seed) {
  auto model = init_model(config, seed);
  save_checkpoint(path, *model, {{"seed", std::to_string(seed)}});
  return model;
}

void load_weights(MultiTaskUNet& model, const io::TensorMap& state, bool strict,
                  const std::string& what) {
  const std::map<std::string, Tensor> own = model.state_dict();
  std::vector<std::string> missing, unexpected, mismatched;
  io::TensorMap accepted;
  for (const auto& [name, t] : state) {
    auto it = own.find(name);
    if (it == own.end()) {
      // PyTorch's batch-norm step counter: no counterpart here, deliberately skipped.
      const std::string prefix = name.substr(0, name.rfind('.') + 1);
      if (ends_with(name, ".num_batches_tracked") && own.count(prefix + "running_mean")) continue;
      unexpected.push_back(name);
      continue;
    }
    if (t.shape() != it->second.shape() || t.dtype() != it->second.dtype()) {
      mismatched.push_back(
          name + " (file " + dtype_name(t.dtype()) + " " + shape_to_string(t.shape()) + ", model " +
          dtype_name(it->second.dtype()) + " " + shape_to_string(it->second.shape()) + ")");
      continue;
    }
    accepted.emplace(name, t);
  }
  for (const auto& [name, t] : own) {
    if (!state.count(name)) missing.push_back(name);
  }
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::string msg = what + " does not match the model (" +
                      std::to_string(model.config().base_filters) + " base filters, depth " +
                      std::to_string(model.config().depth) + "):";
    if (!mismatched.empty()) msg += " mismatched " + join(mismatched) + ";";
    if (strict && !missing.empty()) msg += " missing keys " + join(missing) + ";";
    if (strict && !unexpected.empty()) msg += " unexpected keys " + join(unexpected) + ";";
    msg.pop_back();
    throw std::invalid_argument(msg);
  }
  model.load_state_dict(accepted, false);
}

LoadedModel load_checkpoint(const std::filesystem::path& path, Device device, bool strict) {
  io::SafetensorsContent content = io::load_safetensors(path);
  UNetConfig config;
  try {
    config = UNetConfig::from_metadata(content.metadata);
  } catch (const std::exception& e) {
    throw std::invalid_argument(path.string() + ": " + e.what());
  }
  if (!content.metadata.count("base_filters") || !content.metadata.count("depth")) {
    throw std::invalid_argument(path.string() +
                                ": no model architecture in the metadata (base_filters, depth): "
                                "not a glia model checkpoint");
  }
  // A private generator for the placeholder initialisation, which the weights then replace: the
  // process-wide one is left where it was.
  Generator scratch(0);
  auto model = std::make_shared<MultiTaskUNet>(config, &scratch);
  load_weights(*model, content.tensors, strict, path.string());
  model->to(device);
  return {model, std::move(content.metadata)};
}

std::filesystem::path optimizer_state_path(const std::filesystem::path& checkpoint) {
  std::filesystem::path p = checkpoint;
  const std::string stem = checkpoint.extension() == ".safetensors"
                               ? checkpoint.stem().string()
                               : checkpoint.filename().string();
  return p.replace_filename(stem + ".optim.safetensors");
}

void save_optimizer_state(const std::filesystem::path& path, const optim::Optimizer& optimizer,
                          const io::Metadata& metadata) {
  io::save_safetensors(path, optimizer.export_state(), metadata);
}

io::Metadata load_optimizer_state(const std::filesystem::path& path, optim::Optimizer& optimizer) {
  io::SafetensorsContent content = io::load_safetensors(path);
  try {
    optimizer.import_state(content.tensors);
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  return std::move(content.metadata);
}

}  // namespace glia::nets
