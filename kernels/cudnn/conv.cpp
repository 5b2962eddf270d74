// The cuDNN convolution fallback. The descriptors of a shape (x, w, y and the convolution, all
// built from the one ConvShape) and each pass's algorithm are made once and cached per (handle,
// shape, settings): a plan. A pass's algorithm comes from cudnnGet*Algorithm_v7's ranking, or
// cudnnFind*'s timing when settings().find, once; candidates are kept only when they succeed, are
// deterministic (unless settings().deterministic is off: backward filter algorithms 0 and 3 and
// backward data algorithm 0 use atomics) and use the allowed math (FMA only under fp32; under
// tf32 also tensor-op math); the first kept one whose workspace fits wins, and the pass runs in
// the math type cuDNN reported for it. A caller's workspace smaller than the plan's (it asked the
// size first, so only by mistake) picks again within it, uncached. Tested in
// tests/kernels/conv_test.cpp against kernels/cpu/conv.cpp (compile-only without a GPU).
#include "kernels/cudnn/conv.h"

#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "kernels/cudnn/settings.h"

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

constexpr std::size_t kAnyWorkspace = ~std::size_t{0};

// A pass's chosen algorithm, the workspace it needs and the math type it runs in.
template <class Algo>
struct Choice {
  Algo algo{};
  std::size_t bytes = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

// Whether a ranked candidate may run under the settings.
template <class Perf>
bool allowed(const Perf& p, const Settings& set) {
  if (p.status != CUDNN_STATUS_SUCCESS) return false;
  if (set.deterministic && p.determinism != CUDNN_DETERMINISTIC) return false;
  if (set.math == Math::fp32) {
    return p.mathType == CUDNN_FMA_MATH || p.mathType == CUDNN_DEFAULT_MATH;
  }
  return p.mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;  // no FP16 down-conversion
}

// The first allowed candidate whose workspace (queried with `workspace_of`, in its math type) fits
// `budget` bytes; `pass` names the pass in the error.
template <class Perf, class Algo, class WorkspaceOf>
Choice<Algo> pick(const Perf (&perf)[kMaxAlgos], int returned, std::size_t budget,
                  WorkspaceOf workspace_of, const Settings& set, const char* pass,
                  const ConvShape& s) {
  for (int i = 0; i < returned; ++i) {
    if (!allowed(perf[i], set)) continue;
    // Under fp32 the descriptor stays in FMA math, so TF32 cannot creep in through DEFAULT.
    const cudnnMathType_t math = set.math == Math::fp32 ? CUDNN_FMA_MATH : perf[i].mathType;
    const std::size_t need = workspace_of(perf[i].algo, math);
    if (need <= budget) return Choice<Algo>{perf[i].algo, need, math};
  }
  throw std::runtime_error(std::string("cuDNN conv2d ") + pass + ": no " +
                           (set.deterministic ? "deterministic " : "") + math_name(set.math) +
                           " algorithm fits a workspace of " + std::to_string(budget) +
                           " bytes for " + s.describe() +
                           (set.deterministic ? " (the run may allow nondeterministic ones)" : ""));
}

// Each pass's candidates, ranked by the heuristics or timed by cudnnFind.
int forward_candidates(cudnnHandle_t handle, const Descriptors& d, const ConvShape& s,
                       const Settings& set, cudnnConvolutionFwdAlgoPerf_t (&perf)[kMaxAlgos]) {
  int returned = 0;
  if (set.find) {
    check(cudnnFindConvolutionForwardAlgorithm(handle, d.x, d.w, d.conv, d.y, kMaxAlgos, &returned,
                                               perf),
          "cudnnFindConvolutionForwardAlgorithm", s);
  } else {
    check(cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x, d.w, d.conv, d.y, kMaxAlgos,
                                                 &returned, perf),
          "cudnnGetConvolutionForwardAlgorithm_v7", s);
  }
  return returned;
}

int backward_data_candidates(cudnnHandle_t handle, const Descriptors& d, const ConvShape& s,
                             const Settings& set,
                             cudnnConvolutionBwdDataAlgoPerf_t (&perf)[kMaxAlgos]) {
  int returned = 0;
  if (set.find) {
    check(cudnnFindConvolutionBackwardDataAlgorithm(handle, d.w, d.y, d.conv, d.x, kMaxAlgos,
                                                    &returned, perf),
          "cudnnFindConvolutionBackwardDataAlgorithm", s);
  } else {
    check(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d.w, d.y, d.conv, d.x, kMaxAlgos,
                                                      &returned, perf),
          "cudnnGetConvolutionBackwardDataAlgorithm_v7", s);
  }
  return returned;
}

int backward_filter_candidates(cudnnHandle_t handle, const Descriptors& d, const ConvShape& s,
                               const Settings& set,
                               cudnnConvolutionBwdFilterAlgoPerf_t (&perf)[kMaxAlgos]) {
  int returned = 0;
  if (set.find) {
    check(cudnnFindConvolutionBackwardFilterAlgorithm(handle, d.x, d.y, d.conv, d.w, kMaxAlgos,
                                                      &returned, perf),
          "cudnnFindConvolutionBackwardFilterAlgorithm", s);
  } else {
    check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, d.x, d.y, d.conv, d.w, kMaxAlgos,
                                                        &returned, perf),
          "cudnnGetConvolutionBackwardFilterAlgorithm_v7", s);
  }
  return returned;
}

// The descriptors of one shape and the choices made for its passes, each made on first use.
struct Plan {
  Plan(const ConvShape& shape, const Settings& set) : s(shape), settings(set), d(shape) {}

  void set_math(cudnnMathType_t math) const {
    check(cudnnSetConvolutionMathType(d.conv, math), "cudnnSetConvolutionMathType", s);
  }

  Choice<cudnnConvolutionFwdAlgo_t> forward(cudnnHandle_t handle, std::size_t budget) {
    if (budget == kAnyWorkspace && fwd) return *fwd;
    cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
    const int returned = forward_candidates(handle, d, s, settings, perf);
    auto workspace_of = [&](cudnnConvolutionFwdAlgo_t algo, cudnnMathType_t math) {
      set_math(math);
      std::size_t need = 0;
      check(cudnnGetConvolutionForwardWorkspaceSize(handle, d.x, d.w, d.conv, d.y, algo, &need),
            "cudnnGetConvolutionForwardWorkspaceSize", s);
      return need;
    };
    const auto c = pick<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        perf, returned, budget, workspace_of, settings, "forward", s);
    if (budget == kAnyWorkspace) fwd = c;
    return c;
  }

  Choice<cudnnConvolutionBwdDataAlgo_t> backward_data(cudnnHandle_t handle, std::size_t budget) {
    if (budget == kAnyWorkspace && bwd_data) return *bwd_data;
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
    const int returned = backward_data_candidates(handle, d, s, settings, perf);
    auto workspace_of = [&](cudnnConvolutionBwdDataAlgo_t algo, cudnnMathType_t math) {
      set_math(math);
      std::size_t need = 0;
      check(
          cudnnGetConvolutionBackwardDataWorkspaceSize(handle, d.w, d.y, d.conv, d.x, algo, &need),
          "cudnnGetConvolutionBackwardDataWorkspaceSize", s);
      return need;
    };
    const auto c = pick<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        perf, returned, budget, workspace_of, settings, "backward data", s);
    if (budget == kAnyWorkspace) bwd_data = c;
    return c;
  }

  Choice<cudnnConvolutionBwdFilterAlgo_t> backward_filter(cudnnHandle_t handle,
                                                          std::size_t budget) {
    if (budget == kAnyWorkspace && bwd_filter) return *bwd_filter;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
    const int returned = backward_filter_candidates(handle, d, s, settings, perf);
    auto workspace_of = [&](cudnnConvolutionBwdFilterAlgo_t algo, cudnnMathType_t math) {
      set_math(math);
      std::size_t need = 0;
      check(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, d.x, d.y, d.conv, d.w, algo,
                                                           &need),
            "cudnnGetConvolutionBackwardFilterWorkspaceSize", s);
      return need;
    };
    const auto c = pick<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        perf, returned, budget, workspace_of, settings, "backward filter", s);
    if (budget == kAnyWorkspace) bwd_filter = c;
    return c;
  }

  const ConvShape s;
  const Settings settings;
  const Descriptors d;
  std::optional<Choice<cudnnConvolutionFwdAlgo_t>> fwd;
  std::optional<Choice<cudnnConvolutionBwdDataAlgo_t>> bwd_data;
  std::optional<Choice<cudnnConvolutionBwdFilterAlgo_t>> bwd_filter;
};

// The plan of (handle, s, settings()), made on first use. Plans live as long as the process (a
// training run meets a few dozen shapes). A cuDNN handle is driven by one thread at a time, so a
// plan, whose key holds its handle, is too; the mutex guards the map only.
Plan& plan_for(cudnnHandle_t handle, const ConvShape& s) {
  static std::mutex mutex;
  static std::map<std::tuple<cudnnHandle_t, std::string, Math, bool, bool>, std::unique_ptr<Plan>>
      plans;
  const Settings set = settings();
  const auto key = std::tuple{handle, s.describe(), set.math, set.deterministic, set.find};
  const std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<Plan>& p = plans[key];
  if (!p) p = std::make_unique<Plan>(s, set);
  return *p;
}

// The choice for a call with `budget` bytes of workspace: the plan's when it fits.
template <class Choose>
auto choose(Choose&& choose_within, std::size_t budget) {
  const auto planned = choose_within(kAnyWorkspace);
  return planned.bytes <= budget ? planned : choose_within(budget);
}

}  // namespace

std::size_t conv2d_forward_workspace_size(cudnnHandle_t handle, const ConvShape& s) {
  if (s.y_numel() == 0) return 0;
  return plan_for(handle, s).forward(handle, kAnyWorkspace).bytes;
}

std::size_t conv2d_backward_data_workspace_size(cudnnHandle_t handle, const ConvShape& s) {
  if (s.x_numel() == 0 || s.y_numel() == 0) return 0;
  return plan_for(handle, s).backward_data(handle, kAnyWorkspace).bytes;
}

std::size_t conv2d_backward_filter_workspace_size(cudnnHandle_t handle, const ConvShape& s) {
  if (s.w_numel() == 0 || s.y_numel() == 0) return 0;
  return plan_for(handle, s).backward_filter(handle, kAnyWorkspace).bytes;
}

void conv2d_forward(cudnnHandle_t handle, const ConvShape& s, const float* x, const float* w,
                    const float* bias, float* y, void* workspace, std::size_t workspace_bytes,
                    cudaStream_t stream) {
  if (s.y_numel() == 0) return;
  check(cudnnSetStream(handle, stream), "cudnnSetStream", s);
  Plan& plan = plan_for(handle, s);
  const Descriptors& d = plan.d;
  const auto c = choose([&](std::size_t b) { return plan.forward(handle, b); }, workspace_bytes);
  plan.set_math(c.math);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionForward(handle, &one, d.x, x, d.w, w, d.conv, c.algo, workspace, c.bytes,
                                &zero, d.y, y),
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
  Plan& plan = plan_for(handle, s);
  const Descriptors& d = plan.d;
  const auto c =
      choose([&](std::size_t b) { return plan.backward_data(handle, b); }, workspace_bytes);
  plan.set_math(c.math);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionBackwardData(handle, &one, d.w, w, d.y, gy, d.conv, c.algo, workspace,
                                     c.bytes, &zero, d.x, gx),
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
  Plan& plan = plan_for(handle, s);
  const Descriptors& d = plan.d;
  const auto c =
      choose([&](std::size_t b) { return plan.backward_filter(handle, b); }, workspace_bytes);
  plan.set_math(c.math);
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionBackwardFilter(handle, &one, d.x, x, d.y, gy, d.conv, c.algo, workspace,
                                       c.bytes, &zero, d.w, gw),
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
  const Descriptors& d = plan_for(handle, s).d;
  const float one = 1.0f, zero = 0.0f;
  check(cudnnConvolutionBackwardBias(handle, &one, d.y, gy, &zero, d.bias, gb),
        "cudnnConvolutionBackwardBias", s);
}

}  // namespace glia::kernels::cudnn
