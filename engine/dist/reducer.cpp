// The bucketed gradient all-reduce; see reducer.h. Tested in tests/dist/ddp_test.cpp.
#include "engine/dist/reducer.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "engine/memory.h"
#include "engine/ops.h"

namespace glia::dist {
namespace {

std::size_t nbytes(const Tensor& t) {
  return static_cast<std::size_t>(t.numel()) * element_bytes(t, "gradient reducer");
}

// Element `offset` of a contiguous 1-D buffer.
void* at(const Tensor& buffer, std::size_t offset) {
  return static_cast<char*>(buffer.raw_data()) + offset * element_bytes(buffer, "bucket");
}

}  // namespace

GradReducer::GradReducer(std::shared_ptr<Communicator> comm, std::vector<Tensor> params,
                         ReducerOptions options)
    : comm_(std::move(comm)), params_(std::move(params)) {
  if (!comm_) throw std::invalid_argument("GradReducer: no communicator");
  if (params_.empty()) throw std::invalid_argument("GradReducer: no parameters to reduce");
  const Tensor& first = params_.front();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined() || !p.requires_grad() || !p.is_leaf()) {
      throw std::invalid_argument("GradReducer: parameter " + std::to_string(i) +
                                  " is not a leaf that requires grad");
    }
    if (p.dtype() != first.dtype() || p.device() != first.device()) {
      throw std::invalid_argument("GradReducer: parameter " + std::to_string(i) + " is " +
                                  p.describe() + ", parameter 0 is " + first.describe() +
                                  ": all must share one dtype and device");
    }
    if (!comm_->carries(p.device())) {
      throw std::invalid_argument("GradReducer: the " + comm_->backend() +
                                  " communicator does not carry " + p.describe());
    }
    if (!param_of_.emplace(p.impl(), i).second) {
      throw std::invalid_argument("GradReducer: parameter " + std::to_string(i) +
                                  " is listed twice");
    }
  }
  // Reverse registration order: the last layers' gradients are final first.
  bucket_of_.assign(params_.size(), 0);
  std::size_t bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {
    if (buckets_.empty() || (bytes > 0 && bytes + nbytes(params_[k]) > options.bucket_bytes)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.offsets.push_back(b.params.empty()
                            ? 0
                            : b.offsets.back() +
                                  static_cast<std::size_t>(params_[b.params.back()].numel()));
    b.params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += nbytes(params_[k]);
  }
  for (Bucket& b : buckets_) {
    const index_t elements =
        static_cast<index_t>(b.offsets.back()) + params_[b.params.back()].numel();
    b.buffer = Tensor({elements}, first.dtype(), first.device());
  }
  marked_.assign(params_.size(), false);
}

GradReducer::~GradReducer() = default;

void GradReducer::backward(const Tensor& loss) {
  begin();
  try {
    loss.backward();
  } catch (...) {
    hook_.reset();
    throw;
  }
  finish();
}

void GradReducer::begin() {
  for (Bucket& b : buckets_) {
    if (b.request) {
      throw std::logic_error("GradReducer::begin: the previous pass was not finished");
    }
    b.ready = 0;
  }
  marked_.assign(params_.size(), false);
  next_to_start_ = 0;
  started_in_backward_ = 0;
  hook_.emplace([this](const std::shared_ptr<TensorImpl>& leaf) { on_grad_ready(leaf); });
}

void GradReducer::on_grad_ready(const std::shared_ptr<TensorImpl>& leaf) {
  const auto it = param_of_.find(leaf.get());
  if (it == param_of_.end() || marked_[it->second]) return;
  marked_[it->second] = true;
  ++buckets_[bucket_of_[it->second]].ready;
  const std::size_t before = next_to_start_;
  start_ready_buckets();
  started_in_backward_ += next_to_start_ - before;
  // MPI progresses a non-blocking collective only inside MPI calls: poke the ones in flight.
  for (std::size_t b = 0; b < next_to_start_; ++b) {
    if (buckets_[b].request) buckets_[b].request->test();
  }
}

void GradReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() &&
         buckets_[next_to_start_].ready == buckets_[next_to_start_].params.size()) {
    start(buckets_[next_to_start_++]);
  }
}

void GradReducer::start(Bucket& bucket) {
  // A parameter without a gradient this pass (a branch the batch did not use) contributes zeros.
  for (const std::size_t k : bucket.params) {
    if (!params_[k].grad().defined()) {
      fill_(bucket.buffer, 0.0);
      break;
    }
  }
  for (std::size_t j = 0; j < bucket.params.size(); ++j) {
    const Tensor grad = params_[bucket.params[j]].grad();
    if (!grad.defined()) continue;
    copy_bytes(at(bucket.buffer, bucket.offsets[j]), bucket.buffer.device(), grad.raw_data(),
               grad.device(), nbytes(grad));
  }
  bucket.request = comm_->all_reduce_async(bucket.buffer, ReduceOp::sum);
}

void GradReducer::finish() {
  hook_.reset();
  for (Bucket& b : buckets_) b.ready = b.params.size();
  start_ready_buckets();
  const double scale = 1.0 / static_cast<double>(comm_->size());
  NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    b.request->wait();
    b.request.reset();
    const Tensor mean = mul(b.buffer, scale);
    for (std::size_t j = 0; j < b.params.size(); ++j) {
      Tensor& p = params_[b.params[j]];
      Tensor grad = p.grad();
      if (!grad.defined()) {
        grad = Tensor(p.shape(), p.dtype(), p.device());
        p.impl()->grad = grad.impl_ptr();
      }
      copy_bytes(grad.raw_data(), grad.device(), at(mean, b.offsets[j]), mean.device(),
                 nbytes(grad));
      grad.bump_version();
    }
  }
}

std::int64_t GradReducer::bytes_per_step() const {
  std::int64_t total = 0;
  for (const Bucket& b : buckets_) total += static_cast<std::int64_t>(nbytes(b.buffer));
  return total;
}

std::vector<std::vector<std::size_t>> GradReducer::bucket_layout() const {
  std::vector<std::vector<std::size_t>> layout;
  for (const Bucket& b : buckets_) layout.push_back(b.params);
  return layout;
}

void broadcast_module(Communicator& comm, nn::Module& module, int root) {
  NoGradGuard no_grad;
  for (auto& [name, t] : module.named_parameters()) {
    Tensor value = t;
    comm.broadcast(value, root);
    value.bump_version();
  }
  for (auto& [name, t] : module.named_buffers()) {
    Tensor value = t;
    comm.broadcast(value, root);
    value.bump_version();
  }
}

}  // namespace glia::dist
