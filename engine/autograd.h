// The dynamic autograd tape (DESIGN.md section 4). An op whose inputs require grad (with grad
// mode on) records a Node on its output: the backward function, which maps the output's gradient
// to one gradient per input using tensor ops (run under no-grad), and an edge per input to where
// that gradient goes: the input's own node, or the leaf that accumulates it. backward() visits
// the nodes reachable from the root in reverse topological order, summing the gradients that
// meet at a node before calling it. Tested in tests/engine/autograd_test.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
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

  Node(std::string name, BackwardFn fn, std::vector<Edge> edges, std::weak_ptr<TensorImpl> output);
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
  // Runs the backward function and checks one correctly shaped gradient per input.
  std::vector<Tensor> apply(const Tensor& grad_output) const;
  // Frees what the backward function saved (after a backward pass without retain_graph).
  void release() { fn_ = nullptr; }

 private:
  std::string name_;
  BackwardFn fn_;
  std::vector<Edge> edges_;
  std::weak_ptr<TensorImpl> output_;
};

// True when grad mode is on and any defined input requires grad: the op must record.
bool needs_grad(const std::vector<Tensor>& inputs);
// Makes `output` a non-leaf produced by `name` when needs_grad(inputs); otherwise does nothing.
// Backward functions should save detached tensors (Tensor::detach) so the tape holds no cycle.
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn);

}  // namespace glia
