// The per-element and per-row math of the losses, shared verbatim by the cpu reference
// (T = float, double) and the cuda/sim kernels (T = float), so every backend evaluates the same
// formula; the reductions around it live in kernels/cpu/loss.cpp and kernels/cuda/loss.cu.
//   BCE with logits  l = (1 - t) x + (1 + (pw - 1) t) softplus(-x), stable as log1p(e^-|x|) +
//                    max(-x, 0); dl/dx = (1 - t) - (1 + (pw - 1) t) sigmoid(-x)
//   soft Dice        D = (2 I + s) / (P + T + s) with I = sum p t, P = sum p, T = sum t,
//                    p = sigmoid(x); loss 1 - D; 0 / 0 (smooth 0, both empty) counts as D = 1
//   Dice + BCE       dice_weight (1 - D) + bce_weight mean_e BCE, fused into one pass
//   cross-entropy    l = -(1 - e) w_t logp_t - (e / C) sum_c w_c logp_c (PyTorch's label
//                    smoothing e and class weights w); dl/dx_c = (1 - e) w_t (p_c - [c == t]) +
//                    (e / C) (p_c W - w_c) with W = sum_c w_c
//   focal            l = -a_t (1 - p_t)^g logp_t; dl/dx_c = dl/dlogp_t ([c == t] - p_c)
// Tested through tests/kernels/loss_test.cpp and tests/engine/loss_test.cpp.
#pragma once

#include <math.h>

#include "kernels/elementwise_math.h"
#include "kernels/types.h"

namespace glia::kernels::loss {

GLIA_HD float log1p(float x) {
  return ::log1pf(x);
}
GLIA_HD double log1p(double x) {
  return ::log1p(x);
}
GLIA_HD float expm1(float x) {
  return ::expm1f(x);
}
GLIA_HD double expm1(double x) {
  return ::expm1(x);
}

template <class T>
GLIA_HD T sigmoid(T x) {
  return T(1) / (T(1) + math::exp(-x));
}

template <class T>
GLIA_HD T bce_with_logits(T x, T t, T pos_weight) {
  const T log_weight = T(1) + (pos_weight - T(1)) * t;
  const T softplus_neg_x = log1p(math::exp(-math::abs(x))) + (x < T(0) ? -x : T(0));
  return (T(1) - t) * x + log_weight * softplus_neg_x;
}

template <class T>
GLIA_HD T bce_with_logits_grad(T x, T t, T pos_weight) {
  const T log_weight = T(1) + (pos_weight - T(1)) * t;
  return (T(1) - t) - log_weight * sigmoid(-x);
}

// 1 - D from the sums I = sum p t, P = sum p, T = sum t.
template <class T>
GLIA_HD T dice_loss(T intersection, T sum_p, T sum_t, T smooth) {
  const T denominator = sum_p + sum_t + smooth;
  if (denominator == T(0)) return T(0);  // empty prediction and target: a perfect match
  return T(1) - (T(2) * intersection + smooth) / denominator;
}

// d(1 - D)/dp for an element with target t (0 where the loss is the constant 0 / 0 case).
template <class T>
GLIA_HD T dice_grad_p(T t, T intersection, T sum_p, T sum_t, T smooth) {
  const T denominator = sum_p + sum_t + smooth;
  if (denominator == T(0)) return T(0);
  return ((T(2) * intersection + smooth) - T(2) * t * denominator) / (denominator * denominator);
}

// d(dice_weight (1 - D) + bce_weight BCE_mean)/dx of one element of a sample with E elements.
template <class T>
GLIA_HD T dice_bce_grad(T x, T t, T intersection, T sum_p, T sum_t, T inv_elements, T dice_weight,
                        T bce_weight, T smooth, T pos_weight) {
  const T p = sigmoid(x);
  return dice_weight * dice_grad_p(t, intersection, sum_p, sum_t, smooth) * p * (T(1) - p) +
         bce_weight * inv_elements * bce_with_logits_grad(x, t, pos_weight);
}

// The cross-entropy of a row from logp_t, w_t and S = sum_c w_c logp_c.
template <class T>
GLIA_HD T cross_entropy_loss(T logp_target, T weight_target, T weighted_logp_sum, T smoothing,
                             index_t classes) {
  return -(T(1) - smoothing) * weight_target * logp_target -
         smoothing / static_cast<T>(classes) * weighted_logp_sum;
}

template <class T>
GLIA_HD T cross_entropy_grad(T p, bool is_target, T weight, T weight_target, T weight_sum,
                             T smoothing, index_t classes) {
  return (T(1) - smoothing) * weight_target * (p - (is_target ? T(1) : T(0))) +
         smoothing / static_cast<T>(classes) * (p * weight_sum - weight);
}

// 1 - p_t from logp_t without cancellation, clamped at 0 against rounding above p_t = 1.
template <class T>
GLIA_HD T one_minus_p(T logp_target) {
  const T q = -expm1(logp_target);
  return q > T(0) ? q : T(0);
}

template <class T>
GLIA_HD T focal_loss(T logp_target, T alpha_target, T gamma) {
  return -alpha_target * math::pow(one_minus_p(logp_target), gamma) * logp_target;
}

// dl/dlogp_t = -a [(1 - p)^g - g (1 - p)^(g - 1) p logp]; the second term vanishes at p = 1.
template <class T>
GLIA_HD T focal_grad_logp(T logp_target, T alpha_target, T gamma) {
  const T q = one_minus_p(logp_target);
  const T p = math::exp(logp_target);
  const T tail =
      q > T(0) && gamma != T(0) ? gamma * math::pow(q, gamma - T(1)) * p * logp_target : T(0);
  return -alpha_target * (math::pow(q, gamma) - tail);
}

}  // namespace glia::kernels::loss
