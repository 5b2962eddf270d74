// The small layer ops of engine/losses.h:
//   dropout  one kernel writes y and the u8 keep mask from a Philox draw of the generator; the
//            backward reads the mask back: gx = mask * gy / (1 - p).
//   concat   each input is copied into its channel range of the output (dim 1); the backward
//            copies each input's range of gy back out. split is the inverse, and the backward of
//            each piece writes its gradient into its range of a zero tensor of x's shape.
//   linear   x W^T + b through matmul and broadcasting add, whose backward the tape composes.
// Tested in tests/engine/loss_test.cpp.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"

namespace glia {
namespace {

// The slice of channels [offset, offset + channels) of `whole` (dim 1).
kernels::ChannelSlice channel_slice(const Shape& whole, index_t offset, index_t channels) {
  kernels::ChannelSlice s;
  s.outer = whole[0];
  for (std::size_t d = 2; d < whole.size(); ++d) s.inner *= whole[d];
  s.whole_channels = whole[1];
  s.part_channels = channels;
  s.offset = offset;
  return s;
}

void copy_into(const Tensor& part, Tensor& whole, const kernels::ChannelSlice& s) {
  if (part.numel() == 0) return;
  ops::dispatch_float("concat", whole.device(), whole.dtype(), [&]<class T>(auto backend) {
    ops::kernel::copy_into_channels(backend, part.data<T>(), whole.data<T>(), s);
  });
}

Tensor copy_from(const Tensor& whole, const Shape& part_shape, const kernels::ChannelSlice& s) {
  Tensor part(part_shape, whole.dtype(), whole.device());
  if (part.numel() == 0) return part;
  ops::dispatch_float("split", whole.device(), whole.dtype(), [&]<class T>(auto backend) {
    ops::kernel::copy_from_channels(backend, whole.data<T>(), part.data<T>(), s);
  });
  return part;
}

std::string describe_all(const std::vector<Tensor>& xs) {
  std::string out;
  for (const Tensor& x : xs) out += (out.empty() ? "" : ", ") + x.describe();
  return out;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* generator) {
  ops::check_floating("dropout", x);
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument("dropout: p " + std::to_string(p) + " is outside [0, 1] for " +
                                x.describe());
  }
  if (!training || p == 0.0) return x;
  Generator& g = generator ? *generator : default_generator();
  const Generator::Draw draw = g.reserve(static_cast<std::uint64_t>(x.numel()));
  // p == 1 drops everything; its scale is never applied to a kept value.
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  Tensor y(x.shape(), x.dtype(), x.device());
  Tensor mask(x.shape(), DType::u8, x.device());
  if (x.numel() > 0) {
    ops::dispatch_float("dropout", x.device(), x.dtype(), [&]<class T>(auto backend) {
      ops::kernel::dropout(backend, x.data<T>(), y.data<T>(), mask.data<std::uint8_t>(), x.numel(),
                           static_cast<float>(p), static_cast<T>(scale), draw.seed, draw.offset);
    });
  }
  if (needs_grad({x})) {
    record("dropout", y, {x}, [mask, scale](const Tensor& gy) {
      Tensor gx(gy.shape(), gy.dtype(), gy.device());
      if (gx.numel() > 0) {
        ops::dispatch_float(
            "dropout backward", gy.device(), gy.dtype(), [&]<class T>(auto backend) {
              ops::kernel::dropout_backward(backend, gy.data<T>(), mask.data<std::uint8_t>(),
                                            gx.data<T>(), gy.numel(), static_cast<T>(scale));
            });
      }
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor concat(const std::vector<Tensor>& xs) {
  if (xs.empty()) throw std::invalid_argument("concat: no tensors given");
  const Tensor& first = xs[0];
  ops::check_floating("concat", first);
  if (first.dim() < 2) {
    throw std::invalid_argument("concat along dim 1 of " + describe_all(xs) +
                                ": every tensor needs rank >= 2");
  }
  Shape out_shape = first.shape();
  out_shape[1] = 0;
  for (const Tensor& x : xs) {
    ops::check_compatible("concat", first, x);
    Shape rest = x.shape();
    if (rest.size() != out_shape.size()) {
      throw std::invalid_argument("concat along dim 1 of " + describe_all(xs) + ": ranks differ");
    }
    rest[1] = out_shape[1];
    if (rest != out_shape) {
      throw std::invalid_argument("concat along dim 1 of " + describe_all(xs) +
                                  ": sizes other than dim 1 differ");
    }
    out_shape[1] += x.size(1);
  }
  Tensor y(out_shape, first.dtype(), first.device());
  std::vector<kernels::ChannelSlice> slices;
  index_t offset = 0;
  for (const Tensor& x : xs) {
    slices.push_back(channel_slice(out_shape, offset, x.size(1)));
    copy_into(x, y, slices.back());
    offset += x.size(1);
  }
  if (needs_grad(xs)) {
    std::vector<Shape> shapes;
    std::vector<bool> wanted;
    for (const Tensor& x : xs) {
      shapes.push_back(x.shape());
      wanted.push_back(x.requires_grad());
    }
    record("concat", y, xs, [slices, shapes, wanted](const Tensor& gy) {
      std::vector<Tensor> gxs;
      for (std::size_t i = 0; i < slices.size(); ++i) {
        gxs.push_back(wanted[i] ? copy_from(gy, shapes[i], slices[i]) : Tensor());
      }
      return gxs;
    });
  }
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<index_t>& sizes) {
  ops::check_floating("split", x);
  std::string listed;
  index_t total = 0;
  for (index_t size : sizes) {
    listed += (listed.empty() ? "" : ", ") + std::to_string(size);
    if (size < 0) total = -1;
    if (total >= 0) total += size;
  }
  if (x.dim() < 2 || total != x.size(1)) {
    throw std::invalid_argument("split of " + x.describe() + " along dim 1 into [" + listed +
                                "]: the sizes must be non-negative and sum to dim 1 (rank >= 2)");
  }
  std::vector<Tensor> pieces;
  index_t offset = 0;
  for (index_t size : sizes) {
    Shape shape = x.shape();
    shape[1] = size;
    const kernels::ChannelSlice s = channel_slice(x.shape(), offset, size);
    Tensor piece = copy_from(x, shape, s);
    if (needs_grad({x})) {
      record("split", piece, {x}, [whole = x.shape(), s](const Tensor& gy) {
        Tensor gx = zeros(whole, TensorOptions{gy.dtype(), gy.device()});
        copy_into(gy, gx, s);
        return std::vector<Tensor>{gx};
      });
    }
    pieces.push_back(piece);
    offset += size;
  }
  return pieces;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  ops::check_floating("linear", x);
  ops::check_compatible("linear", x, weight);
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("linear of x " + x.describe() + ", weight " + weight.describe() +
                                (bias.defined() ? ", bias " + bias.describe() : "") + ": " + why);
  };
  if (x.dim() != 2 || weight.dim() != 2) fail("x must be [N, in] and weight [out, in]");
  if (x.size(1) != weight.size(1)) fail("x's features differ from weight's dim 1");
  Tensor y = matmul(x, transpose(weight));
  if (bias.defined()) {
    ops::check_compatible("linear", x, bias);
    if (bias.shape() != Shape{weight.size(0)}) fail("bias must be [out]");
    y = add(y, bias);
  }
  return y;
}

}  // namespace glia
