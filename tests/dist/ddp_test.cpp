// Data-parallel training (engine/dist) against single-process references, run by ctest under
// `mpirun --oversubscribe -np 2` (and, with any world size W, including 1 without a launcher):
// - the shards of an epoch's order (data/input/sampler.h) against PyTorch's DistributedSampler
//   rule (disjoint, padded with the order's beginning, together the order);
// - host collectives against their definition (sums, max, gather in rank order);
// - sharded evaluation: gathered per-sample results summarise exactly as one process's;
// - broadcast_module: every rank ends with rank 0's initialisation;
// - the gradient reducer: W ranks with per-rank batch B, after several SGD-with-momentum steps,
//   have the weights of one process that trains on the doubled (W * B) batch in the same order;
//   and its buckets start during backward (the overlap), not after it;
// - SyncBatchNorm: forward, input / weight / bias gradients and running statistics equal those of
//   batch_norm2d over the whole global batch; a model with SyncBatchNorm trains like one process
//   with plain batch norm on the global batch.
// Every rank computes the single-process reference itself from the same seeds. The Cuda tests
// (NCCL) run where a GPU is present and skip otherwise.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "data/input/sample_rng.h"
#include "data/input/sampler.h"
#include "engine/dist/communicator.h"
#include "engine/dist/reducer.h"
#include "engine/losses.h"
#include "engine/nn/activation.h"
#include "engine/nn/layers.h"
#include "engine/nn/sequential.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "engine/random.h"
#include "nets/eval/sample_scores.h"
#include "tests/common/tolerance.h"

#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/runtime.h"
#endif

namespace glia {
namespace {

using testing::all_close;

std::shared_ptr<dist::Communicator> world() {
  if (!dist::mpi_built()) return dist::local_communicator();
  return dist::init_distributed(DeviceType::cpu, std::chrono::seconds(60)).comm;
}

// --- shards -----------------------------------------------------------------------------------

TEST(ShardTest, ShardsAreDisjointPaddedAndTogetherTheOrder) {
  for (std::size_t n : {1u, 5u, 12u, 13u}) {
    for (int world_size : {1, 2, 3, 4}) {
      std::vector<std::size_t> order(n);
      for (std::size_t i = 0; i < n; ++i) order[i] = (7 * i + 3) % n;
      const std::size_t per_rank = (n + world_size - 1) / world_size;
      // PyTorch: indices += (indices * ceil(padding / n))[:padding]
      std::vector<std::size_t> padded = order;
      while (padded.size() < per_rank * world_size) padded.push_back(order[padded.size() % n]);
      for (int r = 0; r < world_size; ++r) {
        const auto shard = data::shard_indices(order, r, world_size, true);
        ASSERT_EQ(shard.size(), per_rank);
        for (std::size_t k = 0; k < shard.size(); ++k) {
          EXPECT_EQ(shard[k], padded[k * world_size + r]) << "n " << n << " rank " << r;
        }
        // Without padding (evaluation): every item exactly once over all ranks.
        const auto unpadded = data::shard_indices(order, r, world_size, false);
        for (std::size_t k = 0; k < unpadded.size(); ++k) {
          EXPECT_EQ(unpadded[k], order[k * world_size + r]);
        }
        EXPECT_EQ(unpadded.size(), n / world_size + (static_cast<std::size_t>(r) < n % world_size));
      }
    }
  }
  EXPECT_THROW(data::shard_indices({1, 2}, 2, 2, true), std::invalid_argument);
}

// --- host collectives ---------------------------------------------------------------------------

TEST(DdpTest, HostCollectivesFollowTheirDefinition) {
  auto comm = world();
  const int w = comm->size(), r = comm->rank();
  std::vector<double> v{static_cast<double>(r + 1), static_cast<double>(-r)};
  comm->all_reduce_host(v, dist::ReduceOp::sum);
  EXPECT_EQ(v[0], w * (w + 1) / 2.0);
  EXPECT_EQ(v[1], -w * (w - 1) / 2.0);
  EXPECT_EQ(comm->all_reduce_host(static_cast<double>(r), dist::ReduceOp::max), w - 1);
  EXPECT_EQ(comm->any(r == w - 1), true);
  EXPECT_EQ(comm->any(false), false);
  // Rank r contributes r + 1 values r, r, ...: the gather is in rank order.
  const auto all = comm->all_gather_host(std::vector<double>(static_cast<std::size_t>(r + 1), r));
  std::vector<double> expected;
  for (int q = 0; q < w; ++q) expected.insert(expected.end(), static_cast<std::size_t>(q + 1), q);
  EXPECT_EQ(all, expected);

  Tensor t = full({3}, static_cast<double>(r + 1));
  comm->all_reduce(t);
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(3, static_cast<float>(w * (w + 1) / 2)));
}

// --- models -------------------------------------------------------------------------------------

constexpr index_t kChannels = 3, kSide = 6, kClasses = 4;

std::shared_ptr<nn::Sequential> make_model(std::uint64_t seed, bool batch_norm) {
  Generator g(seed);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(1, kChannels, 3,
                                            nn::Conv2dOptions{.padding = 1, .generator = &g}));
  if (batch_norm) m->push_back(std::make_shared<nn::BatchNorm2d>(kChannels));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Conv2d>(kChannels, kChannels, 3,
                                            nn::Conv2dOptions{.padding = 1, .generator = &g}));
  m->push_back(std::make_shared<nn::GlobalAvgPool>());
  return m;
}

struct Head {
  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> linear;
  std::vector<Tensor> parameters() const {
    auto p = body->parameters();
    for (const Tensor& t : linear->parameters()) p.push_back(t);
    return p;
  }
  Tensor loss(const Tensor& x, const Tensor& target) const {
    const Tensor features = reshape((*body)(x), {x.size(0), kChannels});
    return cross_entropy(linear->forward(features), target);
  }
};

Head make_net(std::uint64_t seed, bool batch_norm) {
  Generator g(seed + 100);
  return {make_model(seed, batch_norm),
          std::make_shared<nn::Linear>(kChannels, kClasses, true, &g)};
}

// The data set: n images [1, side, side] and class targets, the same on every rank.
struct Data {
  std::vector<float> images;
  std::vector<std::int32_t> targets;
};

Data make_data(std::size_t n) {
  Generator g(42);
  Data d;
  d.images = randn({static_cast<index_t>(n), 1, kSide, kSide}, {}, &g).to_vector<float>();
  for (std::size_t i = 0; i < n; ++i) d.targets.push_back(static_cast<std::int32_t>(i % kClasses));
  return d;
}

std::pair<Tensor, Tensor> batch(const Data& d, const std::vector<std::size_t>& items) {
  const std::size_t plane = kSide * kSide;
  std::vector<float> x;
  std::vector<std::int32_t> y;
  for (std::size_t i : items) {
    x.insert(x.end(), d.images.begin() + i * plane, d.images.begin() + (i + 1) * plane);
    y.push_back(d.targets[i]);
  }
  const auto n = static_cast<index_t>(items.size());
  return {from_vector(x, {n, 1, kSide, kSide}), from_vector(y, {n})};
}

std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t epoch) {
  data::SampleRng rng(7, epoch, 0, data::RngStream::sampler);
  return data::random_permutation(n, rng);
}

std::vector<float> flat_state(const Head& net) {
  std::vector<float> all;
  auto add = [&](const Tensor& t) {
    const auto v = t.to_vector<float>();
    all.insert(all.end(), v.begin(), v.end());
  };
  for (const auto& [name, t] : net.body->state_dict()) add(t);
  for (const Tensor& t : net.linear->parameters()) add(t);
  return all;
}

// Trains `net` for `epochs` over n items with global batch `per_rank * world`: with `reducer`
// on this rank's shard, without it (the reference) on the whole global batch.
void train(Head& net, const Data& d, std::size_t n, std::size_t per_rank, int epochs,
           dist::Communicator& comm, dist::GradReducer* reducer) {
  optim::Sgd sgd({{.params = net.parameters(), .lr = 0.1}}, {.momentum = 0.9});
  const int w = reducer ? comm.size() : 1, r = reducer ? comm.rank() : 0;
  const std::size_t b = per_rank * (reducer ? 1 : comm.size());
  for (int e = 0; e < epochs; ++e) {
    const auto shard = data::shard_indices(epoch_order(n, e), r, w, true);
    for (std::size_t start = 0; start + b <= shard.size(); start += b) {
      const auto [x, y] = batch(d, {shard.begin() + start, shard.begin() + start + b});
      sgd.zero_grad();
      const Tensor loss = net.loss(x, y);
      if (reducer) {
        reducer->backward(loss);
      } else {
        loss.backward();
      }
      sgd.step();
    }
  }
}

TEST(DdpTest, RanksTrainLikeOneProcessWithTheDoubledBatch) {
  auto comm = world();
  const std::size_t n = 12, per_rank = 3;
  const Data d = make_data(n * comm->size());
  // Each rank starts from its own initialisation: the broadcast must make them rank 0's.
  Head ddp = make_net(1000 + comm->rank(), false);
  dist::broadcast_module(*comm, *ddp.body);
  dist::broadcast_module(*comm, *ddp.linear);
  dist::GradReducer reducer(comm, ddp.parameters(), {.bucket_bytes = 200});
  ASSERT_GT(reducer.bucket_count(), 2u);
  train(ddp, d, n * comm->size(), per_rank, 2, *comm, &reducer);

  Head single = make_net(1000, false);
  train(single, d, n * comm->size(), per_rank, 2, *comm, nullptr);
  EXPECT_TRUE(all_close(flat_state(ddp), flat_state(single)));
  // The training moved the weights (the comparison is not of two initialisations).
  EXPECT_FALSE(all_close(flat_state(single), flat_state(make_net(1000, false))));
}

TEST(DdpTest, BucketsStartWhileBackwardRuns) {
  auto comm = world();
  Head net = make_net(5, false);
  dist::GradReducer reducer(comm, net.parameters(), {.bucket_bytes = 1});
  ASSERT_EQ(reducer.bucket_count(), net.parameters().size());
  // Reverse registration order: the linear layer's bias first.
  EXPECT_EQ(reducer.bucket_layout().front(), std::vector<std::size_t>{net.parameters().size() - 1});
  const Data d = make_data(4);
  const auto [x, y] = batch(d, {0, 1, 2, 3});
  reducer.backward(net.loss(x, y));
  EXPECT_EQ(reducer.started_during_backward(), reducer.bucket_count());
  std::int64_t bytes = 0;
  for (const Tensor& p : net.parameters()) bytes += p.numel() * 4;
  EXPECT_EQ(reducer.bytes_per_step(), bytes);
}

TEST(DdpTest, BroadcastGivesEveryRankRankZerosState) {
  auto comm = world();
  auto model = make_model(77 + comm->rank(), true);
  fill_(std::dynamic_pointer_cast<nn::BatchNorm2d>(model->submodule("1"))->running_mean,
        comm->rank());
  dist::broadcast_module(*comm, *model);
  auto reference = make_model(77, true);
  const auto got = model->state_dict(), want = reference->state_dict();
  for (const auto& [name, t] : want) {
    EXPECT_TRUE(all_close(got.at(name).to_vector<float>(), t.to_vector<float>())) << name;
  }
}

// --- evaluation ---------------------------------------------------------------------------------

// Each rank scores its unpadded shard; gathered, the results are every sample's in dataset order
// with its source, so summarize() gives exactly the single-process summary.
TEST(DdpTest, GatheredEvaluationEqualsOneProcess) {
  auto comm = world();
  data::InMemoryDataset dataset;
  std::vector<nets::SampleResult> all;
  for (std::size_t i = 0; i < 11; ++i) {
    data::Sample s;
    s.height = s.width = 1;
    s.image = {0.0f};
    s.label = static_cast<int>(i % 2);
    s.source = i % 3 == 0 ? "kaggle" : "brats";
    dataset.add(s);
    nets::SampleResult r;
    r.index = i;
    r.source = s.source;
    r.label = s.label;
    r.probability = static_cast<double>((i * 7) % 11) / 11.0;
    r.has_mask = s.source == "brats";
    r.overlap = {static_cast<std::int64_t>(i), static_cast<std::int64_t>(2 * i), 5};
    r.seg = r.overlap.scores();
    all.push_back(r);
  }
  std::vector<std::size_t> order(all.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<nets::SampleResult> mine;
  for (std::size_t i : data::shard_indices(order, comm->rank(), comm->size(), false)) {
    mine.push_back(all[i]);
  }
  const auto gathered = nets::gather_results(mine, *comm, dataset);
  ASSERT_EQ(gathered.size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(gathered[i].index, all[i].index);
    EXPECT_EQ(gathered[i].source, all[i].source);
    EXPECT_EQ(gathered[i].probability, all[i].probability);
    EXPECT_EQ(gathered[i].overlap.predicted, all[i].overlap.predicted);
  }
  const auto got = nets::summarize(gathered), want = nets::summarize(all);
  for (const auto& [name, s] : want) {
    EXPECT_EQ(got.at(name).count, s.count) << name;
    // NaN where undefined (no masked sample in "kaggle"): then NaN in both.
    auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
    EXPECT_TRUE(same(got.at(name).dice.mean, s.dice.mean)) << name;
    EXPECT_TRUE(same(got.at(name).roc_auc, s.roc_auc)) << name;
    EXPECT_EQ(got.at(name).counts.tp, s.counts.tp) << name;
  }
}

// --- SyncBatchNorm ------------------------------------------------------------------------------

std::vector<float> rows(const std::vector<float>& all, index_t first, index_t count, index_t row) {
  return {all.begin() + first * row, all.begin() + (first + count) * row};
}

TEST(SyncBatchNormTest, EqualsBatchNormOverTheWholeBatch) {
  auto comm = world();
  const index_t per_rank = 2, c = 3, h = 4, w = 5, row = c * h * w;
  const index_t global = per_rank * comm->size();
  Generator g(9);
  const auto x_all = add(mul(randn({global, c, h, w}, {}, &g), 2.0), 0.5).to_vector<float>();
  const auto gy_all = randn({global, c, h, w}, {}, &g).to_vector<float>();
  const auto weight_init = rand({c}, {}, &g).to_vector<float>();
  const auto bias_init = randn({c}, {}, &g).to_vector<float>();

  // The reference: one process, the whole batch.
  Tensor x_ref = from_vector(x_all, {global, c, h, w}, Device::cpu(), true);
  Tensor w_ref = from_vector(weight_init, {c}, Device::cpu(), true);
  Tensor b_ref = from_vector(bias_init, {c}, Device::cpu(), true);
  Tensor rm_ref = zeros({c}), rv_ref = ones({c});
  Tensor y_ref = batch_norm2d(x_ref, w_ref, b_ref, rm_ref, rv_ref, true, 0.1, 1e-5);
  y_ref.backward(from_vector(gy_all, {global, c, h, w}));

  // This rank's rows.
  const index_t first = comm->rank() * per_rank;
  Tensor x =
      from_vector(rows(x_all, first, per_rank, row), {per_rank, c, h, w}, Device::cpu(), true);
  Tensor wt = from_vector(weight_init, {c}, Device::cpu(), true);
  Tensor b = from_vector(bias_init, {c}, Device::cpu(), true);
  Tensor rm = zeros({c}), rv = ones({c});
  Tensor y = sync_batch_norm2d(x, wt, b, rm, rv, true, 0.1, 1e-5, comm);
  y.backward(from_vector(rows(gy_all, first, per_rank, row), {per_rank, c, h, w}));

  EXPECT_TRUE(
      all_close(y.to_vector<float>(), rows(y_ref.to_vector<float>(), first, per_rank, row)));
  EXPECT_TRUE(all_close(x.grad().to_vector<float>(),
                        rows(x_ref.grad().to_vector<float>(), first, per_rank, row)));
  EXPECT_TRUE(all_close(rm.to_vector<float>(), rm_ref.to_vector<float>()));
  EXPECT_TRUE(all_close(rv.to_vector<float>(), rv_ref.to_vector<float>()));
  // Weight and bias gradients are this rank's sums: over the ranks, the whole batch's.
  Tensor gw = wt.grad().clone(), gb = b.grad().clone();
  comm->all_reduce(gw);
  comm->all_reduce(gb);
  EXPECT_TRUE(all_close(gw.to_vector<float>(), w_ref.grad().to_vector<float>()));
  EXPECT_TRUE(all_close(gb.to_vector<float>(), b_ref.grad().to_vector<float>()));

  // Evaluation mode: the running statistics, no collective.
  Tensor y_eval =
      sync_batch_norm2d(x.detach(), wt.detach(), b.detach(), rm, rv, false, 0.1, 1e-5, comm);
  Tensor y_eval_ref = batch_norm2d(x.detach(), wt.detach(), b.detach(), rm, rv, false, 0.1, 1e-5);
  EXPECT_TRUE(all_close(y_eval.to_vector<float>(), y_eval_ref.to_vector<float>()));
}

TEST(SyncBatchNormTest, ModelTrainsLikeOneProcessWithBatchNormOverTheGlobalBatch) {
  auto comm = world();
  const std::size_t n = 12, per_rank = 3;
  const Data d = make_data(n * comm->size());
  Head ddp = make_net(300, true);
  EXPECT_EQ(nn::convert_sync_batchnorm(*ddp.body, comm), 1);
  dist::GradReducer reducer(comm, ddp.parameters());
  train(ddp, d, n * comm->size(), per_rank, 2, *comm, &reducer);

  Head single = make_net(300, true);
  train(single, d, n * comm->size(), per_rank, 2, *comm, nullptr);
  // The state includes the running statistics.
  EXPECT_TRUE(all_close(flat_state(ddp), flat_state(single)));
}

// --- NCCL ---------------------------------------------------------------------------------------

TEST(DdpTest, CudaNcclAllReduceAndReducer) {
#if defined(GLIA_HAVE_NCCL)
  if (cudart::device_count() == 0) GTEST_SKIP() << "no GPU: the NCCL transport is not run";
  const dist::DistributedSetup setup =
      dist::init_distributed(DeviceType::cuda, std::chrono::seconds(60));
  auto comm = setup.comm;
  ASSERT_EQ(comm->backend(), "nccl");
  Tensor t = full({1000}, comm->rank() + 1.0, {.device = setup.device});
  comm->all_reduce(t);
  const float w = static_cast<float>(comm->size());
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(1000, w * (w + 1) / 2));

  // The reducer on cuda against the cpu reference of the doubled batch.
  const std::size_t n = 12, per_rank = 3;
  const Data d = make_data(n * comm->size());
  Head single = make_net(1000, false);
  train(single, d, n * comm->size(), per_rank, 1, *comm, nullptr);
  Head ddp = make_net(1000, false);
  ddp.body->to(setup.device);
  ddp.linear->to(setup.device);
  dist::GradReducer reducer(comm, ddp.parameters(), {.bucket_bytes = 200});
  optim::Sgd sgd({{.params = ddp.parameters(), .lr = 0.1}}, {.momentum = 0.9});
  const auto shard =
      data::shard_indices(epoch_order(n * comm->size(), 0), comm->rank(), comm->size(), true);
  for (std::size_t start = 0; start + per_rank <= shard.size(); start += per_rank) {
    const auto [x, y] = batch(d, {shard.begin() + start, shard.begin() + start + per_rank});
    sgd.zero_grad();
    reducer.backward(ddp.loss(x.to(setup.device), y.to(setup.device)));
    sgd.step();
  }
  ddp.body->to(Device::cpu());
  ddp.linear->to(Device::cpu());
  // Looser than cpu: cuda's convolution sums in another order.
  EXPECT_TRUE(all_close(flat_state(ddp), flat_state(single), {1e-4, 1e-3}));
#else
  GTEST_SKIP() << "built without NCCL (GLIA_CUDA=OFF or no MPI): the NCCL transport is not run";
#endif
}

}  // namespace
}  // namespace glia
