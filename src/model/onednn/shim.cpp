// oneDNN's fused convolutions, as PyTorch's own compiler (inductor) calls them on a CPU:
// weights reordered once into oneDNN's preferred layout, and the element-wise work after a
// convolution (a ReLU, a residual add) done as its post-ops while the output is still in
// cache. The operators live in libtorch's `mkldnn` namespace, outside ATen's C API that tch
// wraps, so they are reached through the dispatcher here. Errors never cross the boundary as
// C++ exceptions: each function returns a malloc'd message (freed by vo_free_error) or NULL.

#include <ATen/ATen.h>
#include <ATen/TensorIterator.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "../shim_errors.h"
#include "unseen.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using valleys_shim::guarded;

c10::OperatorHandle handle(const char *name, const char *overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

c10::IValue pair(int64_t value) { return c10::IValue(std::vector<int64_t>{value, value}); }

c10::IValue optional_tensor(const at::Tensor *t) {
  return t == nullptr ? c10::IValue() : c10::IValue(*t);
}

at::Tensor call(const c10::OperatorHandle &op, std::vector<c10::IValue> args) {
  torch::jit::Stack stack(std::move(args));
  op.callBoxed(&stack);
  return stack.at(0).toTensor();
}

}  // namespace

extern "C" {

void vo_free_error(char *error) { std::free(error); }

// `weight` [out, in / groups, k, k] in the layout oneDNN picks for inputs of `input_size`
// [N, C, H, W].
char *vo_pack_weight(const at::Tensor *weight, int64_t stride, int64_t padding, int64_t groups,
                     const int64_t *input_size, at::Tensor **out) {
  return guarded([&] {
    static const auto op = handle("mkldnn::_reorder_convolution_weight", "");
    std::vector<int64_t> size(input_size, input_size + 4);
    *out = new at::Tensor(call(op, {*weight, pair(padding), pair(stride), pair(1),
                                    c10::IValue(groups), c10::IValue(size)}));
  });
}

// conv(x) + bias, then ReLU if `relu`; x channels-last, the output too.
char *vo_conv(const at::Tensor *x, const at::Tensor *weight, const at::Tensor *bias,
              int64_t stride, int64_t padding, int64_t groups, int relu, at::Tensor **out) {
  return guarded([&] {
    static const auto op = handle("mkldnn::_convolution_pointwise", "");
    c10::List<std::optional<at::Scalar>> scalars;
    *out = new at::Tensor(call(
        op, {*x, *weight, optional_tensor(bias), pair(padding), pair(stride), pair(1),
             c10::IValue(groups), c10::IValue(std::string(relu ? "relu" : "none")),
             c10::IValue(scalars), c10::IValue()}));
  });
}

// conv(x) + bias + other. When nothing else can see `other` (this is the one handle on it and
// on its storage, and no graph records it), the sum is accumulated into it by oneDNN's sum
// post-op and `other` itself is returned: the out-of-place operator first copies `other`, a
// sweep over the activations as long as the convolution's own output.
char *vo_conv_add(const at::Tensor *x, const at::Tensor *weight, const at::Tensor *bias,
                  const at::Tensor *other, int64_t stride, int64_t padding, int64_t groups,
                  at::Tensor **out) {
  return guarded([&] {
    static const auto in_place = c10::Dispatcher::singleton().findSchema(
        {"mkldnn::_convolution_pointwise_", "binary"});
    c10::List<std::optional<at::Scalar>> scalars;
    if (in_place.has_value() && valleys_shim::unseen(*other)) {
      at::Tensor accumulator = *other;
      call(*in_place, {accumulator, *x, *weight, optional_tensor(bias), pair(padding),
                       pair(stride), pair(1), c10::IValue(groups),
                       c10::IValue(std::string("add")), c10::IValue(), c10::IValue(),
                       c10::IValue(scalars), c10::IValue()});
      *out = new at::Tensor(accumulator);
      return;
    }
    static const auto op = handle("mkldnn::_convolution_pointwise", "binary");
    *out = new at::Tensor(call(
        op, {*x, *other, *weight, optional_tensor(bias), pair(padding), pair(stride), pair(1),
             c10::IValue(groups), c10::IValue(std::string("add")), c10::IValue(),
             c10::IValue(), c10::IValue(scalars), c10::IValue()}));
  });
}

// max(0, x * scale + shift) per channel, in one sweep over x into a new tensor of its layout:
// eval mode's BN and the ReLU after it. ATen's TensorIterator splits the work over libtorch's
// threads; the loop body is ours.
char *vo_affine_relu(const at::Tensor *x, const at::Tensor *scale, const at::Tensor *shift,
                     at::Tensor **out) {
  return guarded([&] {
    TORCH_CHECK(x->dim() == 4 && x->scalar_type() == at::kFloat && x->device().is_cpu(),
                "affine ReLU: expected 4-D float CPU activations");
    const int64_t channels = x->size(1);
    TORCH_CHECK(scale->numel() == channels && shift->numel() == channels, "affine ReLU: ",
                channels, " channels, ", scale->numel(), " scales");
    at::Tensor s = scale->to(at::kFloat).reshape({1, channels, 1, 1});
    at::Tensor t = shift->to(at::kFloat).reshape({1, channels, 1, 1});
    at::Tensor y = at::empty_like(*x);
    auto iter = at::TensorIteratorConfig()
                    .add_output(y)
                    .add_const_input(*x)
                    .add_const_input(s)
                    .add_const_input(t)
                    .build();
    auto loop = [](char **data, const int64_t *strides, int64_t inner, int64_t outer) {
      constexpr int64_t f = sizeof(float);
      for (int64_t j = 0; j < outer; ++j) {
        char *o = data[0] + j * strides[4];
        const char *xi = data[1] + j * strides[5], *si = data[2] + j * strides[6],
                   *ti = data[3] + j * strides[7];
        if (strides[0] == f && strides[1] == f && strides[2] == f && strides[3] == f) {
          float *op = reinterpret_cast<float *>(o);
          const float *xp = reinterpret_cast<const float *>(xi),
                      *sp = reinterpret_cast<const float *>(si),
                      *tp = reinterpret_cast<const float *>(ti);
          for (int64_t i = 0; i < inner; ++i) {
            const float v = xp[i] * sp[i] + tp[i];
            op[i] = v > 0.0f ? v : 0.0f;
          }
        } else {
          for (int64_t i = 0; i < inner; ++i) {
            const float v = *reinterpret_cast<const float *>(xi + i * strides[1]) *
                                *reinterpret_cast<const float *>(si + i * strides[2]) +
                            *reinterpret_cast<const float *>(ti + i * strides[3]);
            *reinterpret_cast<float *>(o + i * strides[0]) = v > 0.0f ? v : 0.0f;
          }
        }
      }
    };
    iter.for_each(loop, 32768);
    *out = new at::Tensor(y);
  });
}

// Whether this libtorch has oneDNN and its fused convolution operators, and they give ATen's
// convolution's numbers on this CPU (a small convolution of each kind, once): a build or a
// CPU where they are missing or differ keeps to ATen's convolution.
int vo_available() {
  try {
    if (!at::hasMKLDNN()) return 0;
    auto &dispatcher = c10::Dispatcher::singleton();
    if (!dispatcher.findSchema({"mkldnn::_convolution_pointwise", ""}).has_value() ||
        !dispatcher.findSchema({"mkldnn::_convolution_pointwise", "binary"}).has_value() ||
        !dispatcher.findSchema({"mkldnn::_reorder_convolution_weight", ""}).has_value()) {
      return 0;
    }
    at::NoGradGuard no_grad;
    const auto x = at::randn({2, 4, 6, 6}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto weight = at::randn({8, 2, 3, 3}), bias = at::randn({8});
    const auto other = at::randn({2, 8, 3, 3}).contiguous(at::MemoryFormat::ChannelsLast);
    const auto expected = at::conv2d(x, weight, bias, 2, 1, 1, 2);
    const int64_t size[4] = {2, 4, 6, 6};
    // `other` is seen by `shared` too, so it is added out of place; `alone` is accumulated into.
    const at::Tensor shared = other, before = other.clone(), alone = other.clone();
    at::Tensor *packed = nullptr, *plain = nullptr, *added = nullptr, *accumulated = nullptr;
    char *error = vo_pack_weight(&weight, 2, 1, 2, size, &packed);
    if (error == nullptr) error = vo_conv(&x, packed, &bias, 2, 1, 2, 1, &plain);
    if (error == nullptr) error = vo_conv_add(&x, packed, &bias, &other, 2, 1, 2, &added);
    if (error == nullptr) error = vo_conv_add(&x, packed, &bias, &alone, 2, 1, 2, &accumulated);
    bool same = error == nullptr && at::allclose(*plain, expected.relu(), 1e-4, 1e-4) &&
                at::allclose(*added, expected + other, 1e-4, 1e-4) &&
                at::allclose(*accumulated, expected + other, 1e-4, 1e-4) &&
                at::equal(shared, before);
    std::free(error);
    delete packed;
    delete plain;
    delete added;
    delete accumulated;
    return same ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

}  // extern "C"
