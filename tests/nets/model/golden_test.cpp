// The multi-task U-Net against PyTorch (golden files written by golden/make_golden.py, B=4, D=2,
// batch 2, 32x32): the weights load through the checkpoint loader, then eval-mode logits, one
// train-mode step's logits, joint loss (Dice+BCE + cross-entropy), every parameter gradient and
// the updated running statistics are reproduced on cpu and on sim. The train step runs with the
// head's dropout off, as the script does.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/grad_mode.h"
#include "engine/losses.h"
#include "engine/ops.h"
#include "nets/model/checkpoint.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using glia::testing::all_close;
using glia::testing::host_doubles;

const fs::path kGolden = GLIA_GOLDEN_DIR;

std::vector<double> ref(const io::SafetensorsContent& g, const std::string& key) {
  auto it = g.tensors.find(key);
  if (it == g.tensors.end()) throw std::runtime_error("golden file lacks " + key);
  return host_doubles(it->second);
}

class GoldenTest : public ::testing::TestWithParam<Device> {};

TEST_P(GoldenTest, ReproducesPyTorch) {
  const Device device = GetParam();
  GLIA_SKIP_UNLESS_USABLE(device);
  // PyTorch sums in another order; the default f32 tolerance covers that for every tensor.
  const glia::testing::Tolerance tol = glia::testing::default_tolerance<float>();

  // The architecture and weights through the loader used for every checkpoint.
  LoadedModel loaded = load_checkpoint(kGolden / "weights.safetensors", device);
  MultiTaskUNet& model = *loaded.model;
  EXPECT_EQ(model.config().base_filters, 4);
  EXPECT_EQ(model.config().depth, 2);
  const io::SafetensorsContent g = io::load_safetensors(kGolden / "golden.safetensors");
  const Tensor x = g.tensors.at("input").to(device);

  model.eval();
  {
    NoGradGuard no_grad;
    const MultiTaskOutput out = model.forward(x, true, true);
    EXPECT_TRUE(all_close(host_doubles(out.seg_logits), ref(g, "eval.seg_logits"), tol));
    EXPECT_TRUE(all_close(host_doubles(out.cls_logits), ref(g, "eval.cls_logits"), tol));
  }

  // The train step with dropout off: the same weights in a model whose head has p = 0.
  UNetConfig config = model.config();
  config.cls_dropout = 0.0;
  MultiTaskUNet train_model(config);
  load_weights(train_model, model.state_dict());
  train_model.to(device);
  train_model.train();
  const MultiTaskOutput out = train_model.forward(x, true, true);
  const Tensor loss = add(dice_bce_loss(out.seg_logits, g.tensors.at("seg_target").to(device)),
                          cross_entropy(out.cls_logits, g.tensors.at("cls_target").to(device)));
  loss.backward();
  EXPECT_TRUE(all_close(host_doubles(out.seg_logits), ref(g, "train.seg_logits"), tol));
  EXPECT_TRUE(all_close(host_doubles(out.cls_logits), ref(g, "train.cls_logits"), tol));
  EXPECT_TRUE(all_close(host_doubles(loss), ref(g, "train.loss"), tol));
  std::size_t grads = 0;
  for (const auto& [name, p] : train_model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_TRUE(all_close(host_doubles(p.grad()), ref(g, "grad." + name), tol)) << name;
    ++grads;
  }
  EXPECT_EQ(grads, train_model.named_parameters().size());
  for (const auto& [name, b] : train_model.named_buffers()) {
    EXPECT_TRUE(all_close(host_doubles(b), ref(g, "running." + name), tol)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, GoldenTest, ::testing::Values(Device::cpu()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Sim, GoldenTest, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, GoldenTest, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

}  // namespace
}  // namespace glia::nets
