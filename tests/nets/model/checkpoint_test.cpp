// Model checkpoints: save -> load is bit-exact and restores the architecture, seeded
// initialisation is reproducible, and wrong files (missing, unexpected, mis-shaped or mis-typed
// keys, no architecture) are reported by name; the optimiser-state file beside a checkpoint
// resumes exactly (an SGD step after a save/load equals one without it).
#include "nets/model/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "engine/random.h"
#include "io/atomic_file.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using glia::testing::all_equal;
using glia::testing::error_of;
using glia::testing::random_tensor;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("glia_checkpoint_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  const UNetConfig small_{.base_filters = 2, .depth = 2, .cls_hidden = 8, .cls_dropout = 0.25};
};

void expect_same_state(const MultiTaskUNet& a, const MultiTaskUNet& b) {
  const auto sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) {
    ASSERT_TRUE(sb.count(name)) << name;
    EXPECT_TRUE(all_equal(sb.at(name).to(Device::cpu()).to_vector<float>(),
                          t.to(Device::cpu()).to_vector<float>()))
        << name;
  }
}

TEST_F(CheckpointTest, SaveLoadRoundTripIsBitExact) {
  auto model = init_model(small_, 42);
  // Running statistics away from their initial values, so buffers are part of the check.
  model->train();
  model->forward(glia::testing::random_tensor({2, 1, 8, 8}, -1, 1, 5), true, true);
  save_checkpoint(dir_ / "m.safetensors", *model, {{"stage", "2"}, {"epoch", "7"}});

  const LoadedModel loaded = load_checkpoint(dir_ / "m.safetensors");
  EXPECT_EQ(loaded.model->config(), small_);
  EXPECT_EQ(loaded.metadata.at("stage"), "2");
  EXPECT_EQ(loaded.metadata.at("epoch"), "7");
  EXPECT_EQ(loaded.metadata.at("base_filters"), "2");
  expect_same_state(*model, *loaded.model);

  const LoadedModel on_sim = load_checkpoint(dir_ / "m.safetensors", Device::sim());
  EXPECT_EQ(on_sim.model->state_dict().at("decoder.head.weight").device(), Device::sim());
  expect_same_state(*model, *on_sim.model);
}

TEST_F(CheckpointTest, LoadingLeavesTheDefaultGeneratorAlone) {
  save_checkpoint(dir_ / "m.safetensors", *init_model(small_, 3));
  const std::uint64_t before = default_generator().offset();
  load_checkpoint(dir_ / "m.safetensors");
  EXPECT_EQ(default_generator().offset(), before) << "dropout masks after a resume would shift";
}

TEST_F(CheckpointTest, InitialCheckpointIsReproducibleFromTheSeed) {
  write_initial_checkpoint(dir_ / "a.safetensors", small_, 9);
  write_initial_checkpoint(dir_ / "b.safetensors", small_, 9);
  write_initial_checkpoint(dir_ / "c.safetensors", small_, 10);
  EXPECT_EQ(io::read_file(dir_ / "a.safetensors"), io::read_file(dir_ / "b.safetensors"));
  EXPECT_NE(io::read_file(dir_ / "a.safetensors"), io::read_file(dir_ / "c.safetensors"));
  EXPECT_EQ(io::read_safetensors_metadata(dir_ / "a.safetensors").at("seed"), "9");
  expect_same_state(*init_model(small_, 9), *load_checkpoint(dir_ / "a.safetensors").model);
}

TEST_F(CheckpointTest, MismatchesAreReportedByName) {
  auto model = init_model(small_, 1);
  io::TensorMap state = model->state_dict();

  io::TensorMap missing = state;
  missing.erase("decoder.ups.1.weight");
  missing.erase("cls_head.fc2.bias");
  std::string msg = error_of([&] { load_weights(*model, missing, true, "f.safetensors"); });
  EXPECT_NE(msg.find("f.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing keys cls_head.fc2.bias, decoder.ups.1.weight"), std::string::npos)
      << msg;
  EXPECT_NO_THROW(load_weights(*model, missing, false));

  io::TensorMap extra = state;
  extra["decoder.extra.weight"] = zeros({1});
  msg = error_of([&] { load_weights(*model, extra); });
  EXPECT_NE(msg.find("unexpected keys decoder.extra.weight"), std::string::npos) << msg;

  io::TensorMap shape = state;
  shape["encoder.blocks.1.conv1.weight"] = zeros({4, 2, 3, 1});
  msg = error_of([&] { load_weights(*model, shape, false); });
  EXPECT_NE(msg.find("encoder.blocks.1.conv1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 2, 3, 1]"), std::string::npos) << msg;

  io::TensorMap dtype = state;
  dtype["cls_head.fc1.bias"] = zeros({8}, {.dtype = DType::i32});
  msg = error_of([&] { load_weights(*model, dtype); });
  EXPECT_NE(msg.find("cls_head.fc1.bias"), std::string::npos) << msg;

  // A checkpoint of another architecture names the keys that do not fit.
  save_checkpoint(dir_ / "big.safetensors",
                  *init_model(UNetConfig{.base_filters = 4, .depth = 2}, 1));
  io::SafetensorsContent big = io::load_safetensors(dir_ / "big.safetensors");
  msg = error_of([&] { load_weights(*model, big.tensors); });
  EXPECT_NE(msg.find("encoder.blocks.0.conv1.weight"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, PyTorchBatchNormCountersAreAccepted) {
  auto model = init_model(small_, 1);
  io::TensorMap state = model->state_dict();
  state["encoder.blocks.0.bn1.num_batches_tracked"] = zeros({}, {.dtype = DType::i32});
  EXPECT_NO_THROW(load_weights(*model, state));
  // Only beside a batch norm.
  state["cls_head.fc1.num_batches_tracked"] = zeros({}, {.dtype = DType::i32});
  EXPECT_NE(error_of([&] { load_weights(*model, state); }).find("cls_head.fc1.num_batches_tracked"),
            std::string::npos);
}

TEST_F(CheckpointTest, FilesWithoutAnArchitectureAreRejected) {
  io::save_safetensors(dir_ / "plain.safetensors", {{"x", zeros({2})}});
  EXPECT_NE(
      error_of([&] { load_checkpoint(dir_ / "plain.safetensors"); }).find("plain.safetensors"),
      std::string::npos);
  io::save_safetensors(dir_ / "bad.safetensors", {{"x", zeros({2})}},
                       {{"base_filters", "two"}, {"depth", "2"}});
  const std::string msg = error_of([&] { load_checkpoint(dir_ / "bad.safetensors"); });
  EXPECT_NE(msg.find("base_filters"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, OptimizerStatePathSitsBesideTheCheckpoint) {
  EXPECT_EQ(optimizer_state_path("run/best.safetensors"), fs::path("run/best.optim.safetensors"));
  EXPECT_EQ(optimizer_state_path("run/last"), fs::path("run/last.optim.safetensors"));
}

// Resuming from the saved state must continue exactly as an uninterrupted run.
TEST_F(CheckpointTest, OptimizerStateRoundTripResumesIdentically) {
  auto make = [](Tensor& p) {
    return std::make_unique<optim::Sgd>(std::vector<optim::ParamGroup>{{.params = {p}, .lr = 0.1}},
                                        optim::SgdOptions{.momentum = 0.9});
  };
  Tensor p1 = random_tensor({4, 3}, -1, 1, 7).set_requires_grad(true);
  Tensor p2 = p1.detach().clone().set_requires_grad(true);
  const Tensor g = random_tensor({4, 3}, -1, 1, 8);
  auto opt1 = make(p1);
  sum(mul(p1, g)).backward();
  opt1->step();
  save_optimizer_state(dir_ / "o.safetensors", *opt1, {{"epoch", "1"}});

  // p2 reaches p1's state by the same first step, then takes its optimiser state from the file.
  auto opt2 = make(p2);
  sum(mul(p2, g)).backward();
  opt2->step();
  auto opt3 = make(p2);
  EXPECT_EQ(load_optimizer_state(dir_ / "o.safetensors", *opt3).at("epoch"), "1");
  opt1->zero_grad();
  opt3->zero_grad();
  sum(mul(p1, g)).backward();
  sum(mul(p2, g)).backward();
  opt1->step();
  opt3->step();
  EXPECT_TRUE(all_equal(p2.to_vector<float>(), p1.to_vector<float>()));
}

TEST(UNetConfigTest, MetadataRoundTrip) {
  const UNetConfig c{.in_channels = 3,
                     .base_filters = 8,
                     .depth = 4,
                     .out_channels = 2,
                     .cls_hidden = 64,
                     .num_classes = 3,
                     .cls_dropout = 0.1};
  EXPECT_EQ(UNetConfig::from_metadata(c.to_metadata()), c);
  EXPECT_EQ(UNetConfig::from_metadata({}), UNetConfig{});
  EXPECT_FALSE(error_of([] { UNetConfig::from_metadata({{"cls_dropout", "1.5"}}); }).empty());
}

TEST(UNetConfigTest, MetadataCannotAskForAModelBeyondTheLimits) {
  // A checkpoint's metadata decides the architecture built before any weight is read.
  auto error = [](std::map<std::string, std::string> metadata) {
    return error_of([&] { UNetConfig::from_metadata(metadata); });
  };
  EXPECT_NE(error({{"base_filters", "1000000"}}).find("base_filters"), std::string::npos);
  EXPECT_NE(error({{"base_filters", "512"}, {"depth", "4"}}).find("base_filters * 2^depth"),
            std::string::npos);
  EXPECT_NE(error({{"cls_hidden", "100000000"}}).find("cls_hidden"), std::string::npos);
  EXPECT_NE(error({{"in_channels", "100000"}}).find("in_channels"), std::string::npos);
  EXPECT_NO_THROW(UNetConfig::from_metadata({{"base_filters", "256"}, {"depth", "4"}}));
}

}  // namespace
}  // namespace glia::nets
