// Tensor construction and accessors; see tensor.h. Copies, reshapes and autograd members forward
// to engine/ops and engine/autograd.cpp. Tested in tests/engine/tensor_test.cpp.
#include "engine/tensor.h"

#include <stdexcept>

#include "engine/memory.h"
#include "engine/ops.h"
#include "engine/storage.h"

namespace glia {

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

index_t shape_numel(const Shape& shape) {
  if (shape.size() > static_cast<std::size_t>(kMaxDims)) {
    throw std::invalid_argument("shape " + shape_to_string(shape) + " has " +
                                std::to_string(shape.size()) + " dims; tensors have at most " +
                                std::to_string(kMaxDims));
  }
  index_t n = 1;
  for (index_t d : shape) {
    if (d < 0) {
      throw std::invalid_argument("shape " + shape_to_string(shape) + " has a negative size");
    }
    n *= d;
  }
  return n;
}

Tensor::Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

Tensor::Tensor(const Shape& shape, DType dtype, Device device, MemoryPool pool) {
  const index_t n = shape_numel(shape);
  if (dtype == DType::f64 && !device.is_cpu()) {
    throw std::invalid_argument("f64 tensors live on cpu only (for gradient checks); " +
                                device.to_string() + " kernels are f32: use f32 there");
  }
  check_device_usable(device);
  impl_ = std::make_shared<TensorImpl>();
  impl_->storage =
      std::make_shared<Storage>(device, static_cast<std::size_t>(n) * dtype_size(dtype), pool);
  impl_->shape = shape;
  impl_->dtype = dtype;
  impl_->device = device;
  impl_->version = std::make_shared<VersionCounter>(0);
}

std::uint64_t Tensor::version() const {
  return checked_impl("version").version->load(std::memory_order_relaxed);
}

void Tensor::bump_version() const {
  checked_impl("bump_version").version->fetch_add(1, std::memory_order_relaxed);
}

const TensorImpl& Tensor::checked_impl(const char* what) const {
  if (!impl_) throw std::logic_error(std::string(what) + ": the tensor is undefined");
  return *impl_;
}

const Shape& Tensor::shape() const {
  return checked_impl("shape").shape;
}
int Tensor::dim() const {
  return static_cast<int>(shape().size());
}

index_t Tensor::size(int d) const {
  const int n = dim();
  const int i = d < 0 ? d + n : d;
  if (i < 0 || i >= n) {
    throw std::out_of_range("size(" + std::to_string(d) + ") of " + describe() +
                            ": dim out of range");
  }
  return shape()[static_cast<std::size_t>(i)];
}

index_t Tensor::numel() const {
  return shape_numel(shape());
}
DType Tensor::dtype() const {
  return checked_impl("dtype").dtype;
}
Device Tensor::device() const {
  return checked_impl("device").device;
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  return std::string(dtype_name(impl_->dtype)) + " tensor " + shape_to_string(impl_->shape) +
         " on " + impl_->device.to_string();
}

void* Tensor::raw_data() const {
  const TensorImpl& t = checked_impl("data");
  return static_cast<char*>(t.storage->data()) + t.offset * dtype_size(t.dtype);
}

void Tensor::check_dtype(DType expected, const char* what) const {
  if (dtype() != expected) {
    throw std::invalid_argument(std::string(what) + "<" + dtype_name(expected) + ">() on " +
                                describe() + ": the element type must match the dtype");
  }
}

void Tensor::check_one_element(const char* what) const {
  if (numel() != 1) {
    throw std::invalid_argument(std::string(what) + "() needs a one-element tensor, got " +
                                describe());
  }
}

void Tensor::copy_to_host(void* dst, DType expected, const char* what) const {
  check_dtype(expected, what);
  copy_bytes(dst, Device::cpu(), raw_data(), device(),
             static_cast<std::size_t>(numel()) * dtype_size(dtype()));
}

Tensor Tensor::reshape(const Shape& shape) const {
  return glia::reshape(*this, shape);
}
Tensor Tensor::view(const Shape& shape) const {
  return glia::reshape(*this, shape);
}
Tensor Tensor::transpose() const {
  return glia::transpose(*this);
}
Tensor Tensor::to(Device device) const {
  return glia::to_device(*this, device);
}
Tensor Tensor::to(DType dtype) const {
  return glia::to_dtype(*this, dtype);
}
Tensor Tensor::clone() const {
  return glia::clone(*this);
}

bool Tensor::shares_storage_with(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

}  // namespace glia
