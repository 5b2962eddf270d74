// Owning handles for the cuDNN descriptors the fallbacks of kernels/cudnn create per call (they
// are cheap host objects), with every status checked. Used by kernels/cudnn/batchnorm.cpp and
// pool.cpp; tested through their tests.
#pragma once

#include <cudnn.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/types.h"

namespace glia::kernels::cudnn {

// Throws std::runtime_error naming the call, cuDNN's error and `context` (the op and its shape).
inline void check_cudnn(cudnnStatus_t status, const char* call, const std::string& context) {
  if (status != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(call) + " failed with " + cudnnGetErrorString(status) +
                             " for " + context);
  }
}

// A size as cuDNN's int, or std::invalid_argument naming it.
inline int cudnn_int(index_t v, const char* what, const std::string& context) {
  if (v < 0 || v > std::numeric_limits<int>::max()) {
    throw std::invalid_argument("cuDNN: " + std::string(what) + " = " + std::to_string(v) +
                                " does not fit cuDNN's int (" + context + ")");
  }
  return static_cast<int>(v);
}

class TensorDescriptor {
 public:
  explicit TensorDescriptor(const std::string& context) {
    check_cudnn(cudnnCreateTensorDescriptor(&desc_), "cudnnCreateTensorDescriptor", context);
  }
  // A float NCHW tensor.
  TensorDescriptor(index_t n, index_t c, index_t h, index_t w, const std::string& context)
      : TensorDescriptor(context) {
    check_cudnn(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                           cudnn_int(n, "n", context), cudnn_int(c, "c", context),
                                           cudnn_int(h, "h", context), cudnn_int(w, "w", context)),
                "cudnnSetTensor4dDescriptor", context);
  }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc_); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
  cudnnTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

class PoolingDescriptor {
 public:
  explicit PoolingDescriptor(const std::string& context) {
    check_cudnn(cudnnCreatePoolingDescriptor(&desc_), "cudnnCreatePoolingDescriptor", context);
  }
  ~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(desc_); }
  PoolingDescriptor(const PoolingDescriptor&) = delete;
  PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;
  cudnnPoolingDescriptor_t get() const { return desc_; }

 private:
  cudnnPoolingDescriptor_t desc_ = nullptr;
};

}  // namespace glia::kernels::cudnn
