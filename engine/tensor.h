// Tensor: a shared handle (copying it aliases) to contiguous row-major storage with a shape of up
// to 5 dims, a dtype and a device (DESIGN.md section 4). Nothing moves between devices unless
// `to(device)` is called. The handle also carries the autograd state: requires_grad, the node
// that produced it (grad_fn), the accumulated gradient, and the version counter that in-place
// writes bump and backward checks (engine/autograd.h). Ops on tensors are in engine/ops.h.
// Tested in tests/engine/tensor_test.cpp, autograd_test.cpp and version_counter_test.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/memory.h"
#include "kernels/types.h"

namespace glia {

using index_t = kernels::index_t;
using Shape = std::vector<index_t>;
inline constexpr int kMaxDims = kernels::kMaxDims;

std::string shape_to_string(const Shape& shape);  // "[2, 3]"
// The element count of `shape`; checks the rank (at most kMaxDims) and that no size is negative.
index_t shape_numel(const Shape& shape);

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;
};

struct TensorImpl;
class Node;
class Storage;

// Counts the in-place writes to a tensor's values (atomic: a fill on one thread and a backward
// check on another must not race on the count itself).
using VersionCounter = std::atomic<std::uint64_t>;

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage; most calls on it throw
  explicit Tensor(std::shared_ptr<TensorImpl> impl);
  // A new tensor over fresh, uninitialised storage (on a GPU from `pool`: engine/memory.h).
  Tensor(const Shape& shape, DType dtype, Device device, MemoryPool pool = MemoryPool::compute);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const;
  index_t size(int d) const;  // d may be negative, counting from the last dim
  index_t numel() const;
  DType dtype() const;
  Device device() const;
  // "f32 tensor [2, 3] on sim": for error messages.
  std::string describe() const;

  // The first element (storage plus offset). On cuda a device pointer.
  void* raw_data() const;
  template <class T>
  T* data() const {
    check_dtype(dtype_v<T>, "data");
    return static_cast<T*>(raw_data());
  }

  // Copies to `device`; returns this same tensor when it is already there.
  Tensor to(Device device) const;
  // Converts through the kernels' cast (float to integer truncates); returns this same tensor
  // when the dtype already matches.
  Tensor to(DType dtype) const;
  // A host copy of the elements; T must match the dtype.
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out(static_cast<std::size_t>(numel()));
    copy_to_host(out.data(), dtype_v<T>, "to_vector");
    return out;
  }
  // The value of a one-element tensor; T must match the dtype.
  template <class T>
  T item() const {
    check_one_element("item");
    return to_vector<T>()[0];
  }
  Tensor clone() const;

  // Same storage, new shape (one size may be -1). reshape and view are the same here since
  // every tensor is contiguous.
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  // A copy with the last two dims swapped.
  Tensor transpose() const;
  // True when both tensors view the same storage.
  bool shares_storage_with(const Tensor& other) const;

  // --- in-place writes ---
  // How many in-place writes the values have had (PyTorch's _version). The count is shared by
  // this tensor and its aliases (detach, reshape), so a write through any of them shows in all.
  std::uint64_t version() const;
  // Marks the values as written in place. Every op that writes into an existing tensor calls it
  // (fill_, uniform_, normal_, optimiser steps, clip_grad_norm_, batch-norm running statistics,
  // module loads and device moves), so a backward that saved the tensor before the write fails
  // instead of computing a wrong gradient. Code that writes through data<T>() calls it too.
  void bump_version() const;

  // --- autograd (engine/autograd.cpp) ---
  bool requires_grad() const;
  // Only on leaves of a floating dtype.
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const;
  // The accumulated gradient; undefined until a backward pass reaches this tensor.
  Tensor grad() const;
  // Keeps the gradient of a non-leaf tensor in grad() (leaves always keep theirs).
  Tensor& retain_grad();
  bool retains_grad() const;
  // Sets an existing gradient to zeros (its shape stays); no-op without one.
  void zero_grad();
  // The same storage, cut from the graph: no grad_fn, requires_grad false.
  Tensor detach() const;
  const std::shared_ptr<Node>& grad_fn() const;
  // Backward from a one-element tensor (implicit gradient 1).
  void backward(bool retain_graph = false) const;
  // Backward with an explicit gradient of this tensor's shape, dtype and device.
  void backward(const Tensor& gradient, bool retain_graph = false) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  const TensorImpl& checked_impl(const char* what) const;
  void check_dtype(DType expected, const char* what) const;
  void check_one_element(const char* what) const;
  void copy_to_host(void* dst, DType expected, const char* what) const;

  std::shared_ptr<TensorImpl> impl_;
};

// The state behind a Tensor handle. Internal to the engine: ops and autograd read it, users go
// through Tensor.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::size_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;
  Device device;
  // Shared with every alias of the same values; never null on a constructed tensor.
  std::shared_ptr<VersionCounter> version;

  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<Node> grad_fn;  // null on leaves
  std::shared_ptr<TensorImpl> grad;
};

void zero_grad(const std::vector<Tensor>& tensors);

}  // namespace glia
