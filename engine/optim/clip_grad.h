// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_: the total norm of all the
// gradients together, total = (sum_p ||g_p||_q^q)^(1/q) for norm_type q (q = inf: max_p |g_p|),
// and when coef = max_norm / (total + 1e-6) is below 1, every gradient is scaled by coef in place
// (PyTorch multiplies by min(coef, 1), which is the same). Parameters without a gradient are
// skipped. A non-finite total norm (NaN or inf in a gradient) is returned and the gradients are
// left unchanged, so the caller can skip the step; PyTorch would scale them by NaN or 0.
// Each gradient's partial sum is computed on its own device with the reduce ops (one host
// read-back per device and dtype; per parameter for q = inf), combined on the host in double.
// Tested in tests/engine/optim_test.cpp.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace glia::optim {

// Returns the total norm of the gradients of `params` before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);
// g *= coef in place on g's storage (the handle others hold stays valid); bumps its version.
void scale_grad_(const Tensor& g, double coef);

}  // namespace glia::optim
