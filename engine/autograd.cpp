// The tape: recording nodes, the autograd members of Tensor, and the backward pass; see
// autograd.h. Tested in tests/engine/autograd_test.cpp.
#include "engine/autograd.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "engine/ops.h"

namespace glia {
namespace {

thread_local bool t_grad_enabled = true;
thread_local GradReadyHook* t_grad_ready_hook = nullptr;

// Adds `g` into impl->grad. The first gradient is cloned because backward functions may hand the
// same tensor to several inputs, and zero_grad later writes into the stored one.
void accumulate(TensorImpl& impl, const Tensor& g) {
  if (!impl.grad) {
    impl.grad = g.clone().impl_ptr();
  } else {
    impl.grad = add(Tensor(impl.grad), g).impl_ptr();
  }
}

// Nodes reachable from `root`, each after every node that feeds it a gradient (reverse post-order
// of an iterative depth-first search, so deep graphs do not exhaust the stack).
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> post_order;
  std::unordered_set<Node*> visited{root};
  std::vector<std::pair<Node*, std::size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next_edge] = stack.back();
    if (next_edge < node->edges().size()) {
      Node* child = node->edges()[next_edge++].node.get();
      if (child != nullptr && visited.insert(child).second) stack.emplace_back(child, 0);
    } else {
      post_order.push_back(node);
      stack.pop_back();
    }
  }
  return {post_order.rbegin(), post_order.rend()};
}

void run_backward(const Tensor& root, Tensor gradient, bool retain_graph) {
  if (!root.requires_grad()) {
    throw std::invalid_argument("backward() on " + root.describe() +
                                ", which does not require grad: no input of its computation has "
                                "requires_grad set (or it was computed under NoGradGuard)");
  }
  if (!gradient.defined()) {
    if (root.numel() != 1) {
      throw std::invalid_argument("backward() without a gradient needs a one-element output, got " +
                                  root.describe() + ": pass a gradient of shape " +
                                  shape_to_string(root.shape()));
    }
    gradient = ones(root.shape(), {.dtype = root.dtype(), .device = root.device()});
  } else if (gradient.shape() != root.shape() || gradient.dtype() != root.dtype() ||
             gradient.device() != root.device()) {
    throw std::invalid_argument("backward(): the gradient " + gradient.describe() +
                                " does not match the output " + root.describe());
  }

  NoGradGuard no_grad;
  gradient = gradient.detach();
  if (root.is_leaf()) {
    accumulate(*root.impl(), gradient);
    if (t_grad_ready_hook != nullptr) (*t_grad_ready_hook)(root.impl_ptr());
    return;
  }

  const std::vector<Node*> order = topological_order(root.grad_fn().get());
  // With a gradient-ready hook: how many edges of this pass still lead to each leaf.
  std::unordered_map<TensorImpl*, std::size_t> leaf_edges_left;
  if (t_grad_ready_hook != nullptr) {
    for (Node* node : order) {
      for (const Node::Edge& edge : node->edges()) {
        if (edge.leaf) ++leaf_edges_left[edge.leaf.get()];
      }
    }
  }
  auto leaf_edges_done = [&](Node* node) {
    if (t_grad_ready_hook == nullptr) return;
    for (const Node::Edge& edge : node->edges()) {
      if (!edge.leaf || --leaf_edges_left[edge.leaf.get()] != 0) continue;
      if (edge.leaf->grad) (*t_grad_ready_hook)(edge.leaf);
    }
  };

  std::unordered_map<Node*, Tensor> pending{{root.grad_fn().get(), gradient}};
  for (Node* node : order) {
    auto it = pending.find(node);
    if (it == pending.end()) {
      leaf_edges_done(node);
      continue;
    }
    const Tensor grad_output = std::move(it->second);
    pending.erase(it);

    if (auto output = node->output().lock(); output && output->retains_grad) {
      accumulate(*output, grad_output);
    }
    if (node->released()) {
      throw std::logic_error("backward through " + node->name() +
                             " a second time: its saved tensors were freed by the first "
                             "backward; call backward(..., retain_graph = true) the first time");
    }
    const std::vector<Tensor> grads = node->apply(grad_output);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      const Node::Edge& edge = node->edges()[i];
      if (!grads[i].defined()) continue;
      if (edge.node) {
        auto [slot, inserted] = pending.try_emplace(edge.node.get(), grads[i]);
        if (!inserted) slot->second = add(slot->second, grads[i]);
      } else if (edge.leaf) {
        accumulate(*edge.leaf, grads[i]);
      }
    }
    if (!retain_graph) node->release();
    leaf_edges_done(node);
  }
}

}  // namespace

GradReadyHookGuard::GradReadyHookGuard(GradReadyHook hook)
    : hook_(std::move(hook)), previous_(t_grad_ready_hook) {
  t_grad_ready_hook = &hook_;
}

GradReadyHookGuard::~GradReadyHookGuard() {
  t_grad_ready_hook = previous_;
}

bool GradMode::enabled() {
  return t_grad_enabled;
}
void GradMode::set_enabled(bool enabled) {
  t_grad_enabled = enabled;
}

Node::Node(std::string name, BackwardFn fn, std::vector<Edge> edges, std::vector<Saved> saved,
           std::weak_ptr<TensorImpl> output)
    : name_(std::move(name)),
      fn_(std::move(fn)),
      edges_(std::move(edges)),
      saved_(std::move(saved)),
      output_(std::move(output)) {}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> orphans;
  auto take_sole_children = [&orphans](std::vector<Edge>& edges) {
    for (Edge& e : edges) {
      if (e.node && e.node.use_count() == 1) orphans.push_back(std::move(e.node));
    }
  };
  take_sole_children(edges_);
  while (!orphans.empty()) {
    std::shared_ptr<Node> node = std::move(orphans.back());
    orphans.pop_back();
    take_sole_children(node->edges_);
  }  // `node` is freed here with no children left to free recursively
}

void Node::check_saved_versions() const {
  for (const Saved& saved : saved_) {
    const std::uint64_t now = saved.counter->load(std::memory_order_relaxed);
    if (now == saved.version) continue;
    throw std::runtime_error(
        "one of the tensors needed for gradient computation has been modified by an in-place "
        "operation: " +
        name_ + " saved a tensor of shape " + shape_to_string(saved.shape) + " (" +
        dtype_name(saved.dtype) + " on " + saved.device.to_string() + ") at version " +
        std::to_string(saved.version) + ", it is now at version " + std::to_string(now) +
        "; write to it only after backward(), or give " + name_ + " a clone()");
  }
}

std::vector<Tensor> Node::apply(const Tensor& grad_output) const {
  check_saved_versions();
  std::vector<Tensor> grads = fn_(grad_output);
  if (grads.size() != edges_.size()) {
    throw std::logic_error("backward of " + name_ + " returned " + std::to_string(grads.size()) +
                           " gradients for " + std::to_string(edges_.size()) + " inputs");
  }
  for (std::size_t i = 0; i < grads.size(); ++i) {
    // An input that needs no gradient has an empty edge (no shape recorded); a backward function
    // may still return its gradient (add's sum_to of a constant bias), which is then dropped.
    if (!edges_[i].node && !edges_[i].leaf) {
      grads[i] = Tensor();
      continue;
    }
    if (grads[i].defined() && grads[i].shape() != edges_[i].shape) {
      throw std::logic_error("backward of " + name_ + " returned a gradient " +
                             grads[i].describe() + " for input " + std::to_string(i) +
                             " of shape " + shape_to_string(edges_[i].shape));
    }
  }
  return grads;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& saved, BackwardFn fn) {
  if (!needs_grad(inputs)) return;
  std::vector<Node::Saved> versions;
  versions.reserve(saved.size());
  for (const Tensor& t : saved) {
    if (!t.defined()) continue;
    const TensorImpl& impl = *t.impl();
    versions.push_back({impl.version, t.version(), impl.shape, impl.dtype, impl.device});
  }
  std::vector<Node::Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Node::Edge edge;
    if (t.defined() && t.requires_grad()) {
      if (t.is_leaf()) {
        edge.leaf = t.impl_ptr();
      } else {
        edge.node = t.grad_fn();
      }
      edge.shape = t.shape();
    }
    edges.push_back(std::move(edge));
  }
  TensorImpl& out = *output.impl();
  out.requires_grad = true;
  out.grad_fn = std::make_shared<Node>(name, std::move(fn), std::move(edges), std::move(versions),
                                       output.impl_ptr());
}

// --- Tensor's autograd members ------------------------------------------------------------

bool Tensor::requires_grad() const {
  return checked_impl("requires_grad").requires_grad;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  const TensorImpl& t = checked_impl("set_requires_grad");
  if (t.grad_fn) {
    throw std::invalid_argument("set_requires_grad on a non-leaf, " + describe() +
                                " (the output of " + t.grad_fn->name() +
                                "): only leaves can change it; use detach() to make a leaf");
  }
  if (requires_grad && !is_floating(t.dtype)) {
    throw std::invalid_argument("set_requires_grad(true) on " + describe() +
                                ": only f32 and f64 tensors can require grad");
  }
  impl_->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  return !checked_impl("is_leaf").grad_fn;
}

Tensor Tensor::grad() const {
  const TensorImpl& t = checked_impl("grad");
  return t.grad ? Tensor(t.grad) : Tensor();
}

Tensor& Tensor::retain_grad() {
  checked_impl("retain_grad");
  if (!requires_grad()) {
    throw std::invalid_argument("retain_grad on " + describe() + ", which does not require grad");
  }
  impl_->retains_grad = true;
  return *this;
}

bool Tensor::retains_grad() const {
  return checked_impl("retains_grad").retains_grad;
}

void Tensor::zero_grad() {
  const TensorImpl& t = checked_impl("zero_grad");
  if (!t.grad) return;
  Tensor g(t.grad);
  fill_(g, 0.0);
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked_impl("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage;
  impl->offset = t.offset;
  impl->shape = t.shape;
  impl->dtype = t.dtype;
  impl->device = t.device;
  impl->version = t.version;  // the same values: a write through the alias counts for both
  return Tensor(std::move(impl));
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  return checked_impl("grad_fn").grad_fn;
}

void Tensor::backward(bool retain_graph) const {
  run_backward(*this, Tensor(), retain_graph);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  if (!gradient.defined()) {
    throw std::invalid_argument("backward(gradient): the gradient is undefined");
  }
  run_backward(*this, gradient, retain_graph);
}

void zero_grad(const std::vector<Tensor>& tensors) {
  for (Tensor t : tensors) t.zero_grad();
}

}  // namespace glia
