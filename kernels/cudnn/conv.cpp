// The cuDNN convolution fallback. One set of descriptors per call (x, w, y and the convolution,
// all built from the one ConvShape); each pass asks cudnnGet*Algorithm_v7 for its ranked
// algorithms and takes the first that succeeds within the workspace it is given, so the size a
// caller queried and the algorithm that runs agree. Tested in tests/kernels/conv_test.cpp against
// kernels/cpu/conv.cpp.
#include "kernels/cudnn/conv.h"

#include <climits>
#include <stdexcept>
#include <string>

namespace glia::kernels::cudnn {
namespace {

void check(cudnnStatus_t status, const char* call, const ConvShape& s) {
  if (status != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(call) + " failed with " + cudnnGetErrorString(status) +
                             " for conv2d " + s.describe());
  }
}

void check(cudaError_t err, const char* call, const ConvShape& s) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(call) + " failed with " + cudaGetErrorString(err) +
                             " for conv2d " + s.describe());
  }
}

// An empty convolution output reads nothing, so a gradient of `count` floats is zero.
void fill_zero(float* out, index_t count, cudaStream_t stream, const ConvShape& s) {
  check(cudaMemsetAsync(out, 0, static_cast<std::size_t>(count) * sizeof(float), stream),
        "cudaMemsetAsync", s);
}

int to_int(index_t v, const char* what, const ConvShape& s) {
  if (v < 0 || v > INT_MAX) {
    throw std::invalid_argument("cuDNN conv2d: " + std::string(what) + " = " + std::to_string(v) +
                                " does not fit cuDNN's int (" + s.describe() + ")");
  }
  return static_cast<int>(v);
}

// The descriptors of one convolution, destroyed with it.
class Descriptors {
 public:
  explicit Descriptors(const ConvShape& s) {
    try {
      describe_into(s);
    } catch (...) {
      destroy();  // the destructor does not run for a constructor that throws
      throw;
    }
  }
  ~Descriptors() { destroy(); }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

 private:
  void describe_into(const ConvShape& s) {
    check(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor", s);
    check(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor", s);
    check(cudnnCreateTensorDescriptor(&bias), "cudnnCreateTensorDescriptor", s);
    check(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor", s);
    check(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor", s);
    const int n = to_int(s.n, "n", s), c_in = to_int(s.c_in, "c_in", s);
    const int c_out = to_int(s.c_out, "c_out", s);
    check(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c_in,
                                     to_int(s.h, "h", s), to_int(s.w, "w", s)),
          "cudnnSetTensor4dDescriptor(x)", s);
    check(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c_out,
                                     to_int(s.out_h, "out_h", s), to_int(s.out_w, "out_w", s)),
          "cudnnSetTensor4dDescriptor(y)", s);
    check(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, c_out, 1, 1),
          "cudnnSetTensor4dDescriptor(bias)", s);
    check(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c_out, c_in,
                                     to_int(s.kh, "kh", s), to_int(s.kw, "kw", s)),
          "cudnnSetFilter4dDescriptor", s);
    check(cudnnSetConvolution2dDescriptor(
              conv, to_int(s.pad_h, "pad_h", s), to_int(s.pad_w, "pad_w", s),
              to_int(s.stride_h, "stride_h", s), to_int(s.stride_w, "stride_w", s),
              to_int(s.dil_h, "dil_h", s), to_int(s.dil_w, "dil_w", s), CUDNN_CROSS_CORRELATION,
              CUDNN_DATA_FLOAT),
          "cudnnSetConvolution2dDescriptor", s);
    check(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType", s);
    // cuDNN's own output arithmetic must agree with ConvShape's.
    int on = 0, oc = 0, oh = 0, ow = 0;
    check(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &on, &oc, &oh, &ow),
          "cudnnGetConvolution2dForwardOutputDim", s);
    if (on != n || oc != c_out || oh != s.out_h || ow != s.out_w) {
      throw std::runtime_error("cuDNN conv2d: cuDNN computes output [" + std::to_string(on) + ", " +
                               std::to_string(oc) + ", " + std::to_string(oh) + ", " +
                               std::to_string(ow) + "] for " + s.describe());
    }
  }

  // Releases what was created (a half-built set too). Statuses are not checked: this runs in the
  // destructor and while another error propagates.
  void destroy() {
    if (conv != nullptr) cudnnDestroyConvolutionDescriptor(conv);
    if (w != nullptr) cudnnDestroyFilterDescriptor(w);
    for (cudnnTensorDescriptor_t t : {bias, y, x}) {
      if (t != nullptr) cudnnDestroyTensorDescriptor(t);
    }
  }
};

// The algorithms cuDNN ranks for a pass; enough slots for every algorithm of every pass.
constexpr int kMaxAlgos = 16;

// The first ranked algorithm that cuDNN reports usable with its workspace (queried with
// `workspace_of`) within `budget` bytes; `pass` names the pass in the error.
template <class Perf, class Algo, class WorkspaceOf>
Algo pick(const Perf (&perf)[kMaxAlgos], int returned, std::size_t budget, WorkspaceOf workspace_of,
          std::size_t* bytes, const char* pass, const ConvShape& s) {
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    const std::size_t need = workspace_of(perf[i].algo);
    if (need <= budget) {
      *bytes = need;
      return perf[i].algo;
    }
  }
  throw std::runtime_error(std::string("cuDNN conv2d ") + pass +
                           ": no algorithm fits a workspace of " + std::to_string(budget) +
                           " bytes for " + s.describe());
}

constexpr std::size_t kAnyWorkspace = ~std::size_t{0};

cudnnConvolutionFwdAlgo_t forward_algo(cudnnHandle_t handle, const Descriptors& d,
                                       const ConvShape& s, std::size_t budget, std::size_t* bytes) {
  cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
  int returned = 0;
  check(cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x, d.w, d.conv, d.y, kMaxAlgos, &returned,
                                               perf),
        "cudnnGetConvolutionForwardAlgorithm_v7", s);
  auto workspace_of = [&](cudnnConvolutionFwdAlgo_t algo) {
    std::size_t need = 0;
    check(cudnnGetConvolutionForwardWorkspaceSize(handle, d.x, d.w, d.conv, d.y, algo, &need),
          "cudnnGetConvolutionForwardWorkspaceSize", s);
    return need;
  };
  return pick<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      perf, returned, budget, workspace_of, bytes, "forward", s);
}

cudnnConvolutionBwdDataAlgo_t backward_data_algo(cudnnHandle_t handle, const Descriptors& d,
                                                 const ConvShape& s, std::size_t budget,
                                                 std::size_t* bytes) {
  cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
  int returned = 0;
  check(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d.w, d.y, d.conv, d.x, kMaxAlgos,
                                                    &returned, perf),
        "cudnnGetConvolutionBackwardDataAlgorithm_v7", s);
  auto workspace_of = [&](cudnnConvolutionBwdDataAlgo_t algo) {
    std::size_t need = 0;
    check(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, d.w, d.y, d.conv, d.x, algo, &need),
          "cudnnGetConvolutionBackwardDataWorkspaceSize", s);
    return need;
  };
  return pick<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      perf, returned, budget, workspace_of, bytes, "backward data", s);
}

cudnnConvolutionBwdFilterAlgo_t backward_filter_algo(cudnnHandle_t handle, const Descriptors& d,
                                                     const ConvShape& s, std::size_t budget,
                                                     std::size_t* bytes) {
  cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
  int returned = 0;
  check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, d.x, d.y, d.conv, d.w, kMaxAlgos,
                                                      &returned, perf),
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7", s);
  auto workspace_of = [&](cudnnConvolutionBwdFilterAlgo_t algo) {
    std::size_t need = 0;
    check(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, d.x, d.y, d.conv, d.w, algo, &need),
        "cudnnGetConvolutionBackwardFilterWorkspaceSize", s);
    return need;
  };
  return pick<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      perf, returned, budget, workspace_of, bytes, "backward filter", s);
}

}  // namespace

std::size_t conv2d_forward_workspace_size(cudnnHandle_t handle, const ConvShape& s) {
  if (s.y_numel() == 0) return 0;
  const Descriptors d(s);
  std::size_t bytes = 0;
  forward_algo(handle, d, s, kAnyWorkspace, &bytes);
  return bytes;
}

std::size_t conv2d_backward_data_workspace_size(cudnnHandle_t handle, const ConvShape& s) {
  if (s.x_numel() == 0 || s.y_numel() == 0) return 0;
  const Descriptors d(s);
  std::size_t bytes = 0;
  backward_data_algo(handle, d, s, kAnyWorkspace, &bytes);
  return bytes;
}

std::size_t conv2d_backward_filter_workspace_size(cudnnHandle_t handle, const ConvShape& s) {
  if (s.w_numel() == 0 || s.y_numel() == 0) return 0;
  const Descriptors d(s);
  std::size_t bytes = 0;
  backward_filter_algo(handle, d, s, kAnyWorkspace, &bytes);
  return bytes;
}

void conv2d_forward(cudnnHandle_t handle, const ConvShape& s, const float* x, const float* w,
                    const float* bias, float* y, void* workspace, std::size_t workspace_bytes,
                    cudaStream_t stream) {
  if (s.y_numel() == 0) return;
  check(cudnnSetStream(handle, stream), "cudnnSetStream", s);
  const Descriptors d(s);
  std::size_t bytes = 0;
  const cudnnConvolutionFwdAlgo_t algo = forward_algo(handle, d, s, workspace_bytes, &bytes);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionForward(handle, &one, d.x, x, d.w, w, d.conv, algo, workspace, bytes, &zero,
                                d.y, y),
        "cudnnConvolutionForward", s);
  if (bias != nullptr) {
    check(cudnnAddTensor(handle, &one, d.bias, bias, &one, d.y, y), "cudnnAddTensor(bias)", s);
  }
}

void conv2d_backward_data(cudnnHandle_t handle, const ConvShape& s, const float* gy, const float* w,
                          float* gx, void* workspace, std::size_t workspace_bytes,
                          cudaStream_t stream) {
  if (s.x_numel() == 0) return;
  check(cudnnSetStream(handle, stream), "cudnnSetStream", s);
  if (s.y_numel() == 0) {
    fill_zero(gx, s.x_numel(), stream, s);
    return;
  }
  const Descriptors d(s);
  std::size_t bytes = 0;
  const cudnnConvolutionBwdDataAlgo_t algo =
      backward_data_algo(handle, d, s, workspace_bytes, &bytes);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionBackwardData(handle, &one, d.w, w, d.y, gy, d.conv, algo, workspace, bytes,
                                     &zero, d.x, gx),
        "cudnnConvolutionBackwardData", s);
}

void conv2d_backward_filter(cudnnHandle_t handle, const ConvShape& s, const float* x,
                            const float* gy, float* gw, void* workspace,
                            std::size_t workspace_bytes, cudaStream_t stream) {
  if (s.w_numel() == 0) return;
  check(cudnnSetStream(handle, stream), "cudnnSetStream", s);
  if (s.y_numel() == 0) {
    fill_zero(gw, s.w_numel(), stream, s);
    return;
  }
  const Descriptors d(s);
  std::size_t bytes = 0;
  const cudnnConvolutionBwdFilterAlgo_t algo =
      backward_filter_algo(handle, d, s, workspace_bytes, &bytes);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionBackwardFilter(handle, &one, d.x, x, d.y, gy, d.conv, algo, workspace,
                                       bytes, &zero, d.w, gw),
        "cudnnConvolutionBackwardFilter", s);
}

void conv2d_backward_bias(cudnnHandle_t handle, const ConvShape& s, const float* gy, float* gb,
                          cudaStream_t stream) {
  if (s.c_out == 0) return;
  check(cudnnSetStream(handle, stream), "cudnnSetStream", s);
  if (s.y_numel() == 0) {
    fill_zero(gb, s.c_out, stream, s);
    return;
  }
  const Descriptors d(s);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionBackwardBias(handle, &one, d.y, gy, &zero, d.bias, gb),
        "cudnnConvolutionBackwardBias", s);
}

}  // namespace glia::kernels::cudnn
