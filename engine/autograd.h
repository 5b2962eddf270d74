// The dynamic autograd tape (DESIGN.md section 4). An op whose inputs require grad (with grad
// mode on) records a Node on its output: the backward function, which maps the output's gradient
// to one gradient per input using tensor ops (run under no-grad), and an edge per input to where
// that gradient goes: the input's own node, or the leaf that accumulates it. backward() visits
// the nodes reachable from the root in reverse topological order, summing the gradients that
// meet at a node before calling it.
//
// Saved tensors: a backward function keeps detached aliases of the tensors it reads (inputs or
// the output), and record() is told which they are. The node notes each one's version
// (Tensor::version) and, before running the backward, checks that none was written in place
// since; a write in between (fill_, an optimiser step, a module load) throws std::runtime_error
// naming the op, as PyTorch does, rather than yielding a gradient of values the forward never
// saw.
//
// Threading: one thread drives a tape. Grad mode is per thread, and nothing in a Node, a leaf's
// accumulated gradient or a retained gradient is locked. So the forward that records a graph,
// its backward(), and every in-place write to what the graph saved happen on one thread (or are
// ordered by the caller's own synchronisation). Graphs that share no tensor requiring grad may be
// recorded and run on different threads at once; two threads running backward into the same
// leaves (one model's parameters) race on their gradients. Version counters are atomic, so
// counting a write never races, but the check sees a write made before the backward, not one
// racing with it.
//
// Gradient-ready hooks: while a GradReadyHookGuard is alive on a thread, backward() on that thread
// calls its hook once per leaf as soon as the leaf's gradient is final for the pass (every node
// of the pass with an edge to the leaf has run), in that order, while the rest of the tape is
// still to run. Data-parallel training starts a gradient's all-reduce from there, as PyTorch's
// DDP does with its post-accumulate hooks (engine/dist/reducer.h).
//
// Tested in tests/engine/autograd_test.cpp and tests/engine/version_counter_test.cpp; the hook
// in tests/dist/ddp_test.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/grad_mode.h"
#include "engine/tensor.h"

namespace glia {

// Gradients of the inputs given the gradient of the output; an undefined Tensor for an input that
// needs none.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class Node {
 public:
  struct Edge {
    std::shared_ptr<Node> node;        // the input is an op's output: pass the gradient on
    std::shared_ptr<TensorImpl> leaf;  // the input is a leaf that requires grad: accumulate
    Shape shape;                       // the input's shape, which its gradient must have
  };
  // A tensor the backward function reads, as it was when the op ran.
  struct Saved {
    std::shared_ptr<const VersionCounter> counter;
    std::uint64_t version = 0;
    Shape shape;  // for the error message
    DType dtype = DType::f32;
    Device device;
  };

  Node(std::string name, BackwardFn fn, std::vector<Edge> edges, std::vector<Saved> saved,
       std::weak_ptr<TensorImpl> output);
  // Unlinks the nodes only this one holds iteratively: a long chain freed recursively would
  // exhaust the stack.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<Edge>& edges() const { return edges_; }
  // The tensor this node produced, for retain_grad; expired once the user drops it.
  const std::weak_ptr<TensorImpl>& output() const { return output_; }
  bool released() const { return !fn_; }
  // Checks that no saved tensor was written in place since the op ran, runs the backward
  // function and checks one correctly shaped gradient per input.
  std::vector<Tensor> apply(const Tensor& grad_output) const;
  // Frees what the backward function saved (after a backward pass without retain_graph).
  void release() {
    fn_ = nullptr;
    saved_.clear();
  }

 private:
  void check_saved_versions() const;

  std::string name_;
  BackwardFn fn_;
  std::vector<Edge> edges_;
  std::vector<Saved> saved_;
  std::weak_ptr<TensorImpl> output_;
};

// See "Gradient-ready hooks" above. Guards nest: the innermost one's hook is called.
using GradReadyHook = std::function<void(const std::shared_ptr<TensorImpl>& leaf)>;
class GradReadyHookGuard {
 public:
  explicit GradReadyHookGuard(GradReadyHook hook);
  ~GradReadyHookGuard();
  GradReadyHookGuard(const GradReadyHookGuard&) = delete;
  GradReadyHookGuard& operator=(const GradReadyHookGuard&) = delete;

 private:
  GradReadyHook hook_;
  GradReadyHook* previous_;
};

// True when grad mode is on and any defined input requires grad: the op must record.
bool needs_grad(const std::vector<Tensor>& inputs);
// Makes `output` a non-leaf produced by `name` when needs_grad(inputs); otherwise does nothing.
// Backward functions should capture detached tensors (Tensor::detach) so the tape holds no cycle.
// `saved` lists every tensor (input, output, or an alias of one) whose values `fn` reads, at its
// version now; undefined entries are ignored. Saving only what the backward actually reads (mul
// saves b only when a needs a gradient) keeps writes to the others legal, as in PyTorch.
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs,
            const std::vector<Tensor>& saved, BackwardFn fn);
// For backward functions that read no tensor a caller can reach: only shapes, scalars, or
// buffers the op made for itself (dropout's mask).
inline void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs,
                   BackwardFn fn) {
  record(name, output, inputs, {}, std::move(fn));
}

}  // namespace glia
