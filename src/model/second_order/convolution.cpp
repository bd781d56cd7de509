// A convolution for graphs that are differentiated twice (Hessian-vector products).
//
// ATen's derivative of a convolution's backward (`_convolution_double_backward`) takes the
// weight's second derivative as one convolution of the transposed input with the transposed
// output gradient: a kernel as large as the image, over the batch as channels, after both
// transposes are copied into contiguous memory. That one term cost a product more than the
// rest of the convolution's double backward. Here the backward is an autograd function of its
// own, whose derivative is made of the operators a first backward already uses:
//
//   backward:    (gy, x, w)    -> gx = conv_input_grad(gy; w),  gw = conv_weight_grad(x; gy),
//                                 gb = sum(gy)
//   its backward (ggx, ggw, ggb) -> for gy: conv(ggx; w) + conv(x; ggw) + ggb,
//                                 for x:  conv_input_grad(gy; ggw),
//                                 for w:  conv_weight_grad(ggx; gy)
//
// Each of them is ATen's and differentiable, so derivatives of any order remain correct.
// They are used only while a thread builds a graph to be differentiated twice
// (so_set_second_order); everywhere else the operators are ATen's.
//
// In every graph, recorded for second derivatives or not, a 1×1 convolution of stride s on a
// CPU is taken as the stride-1 one of the input's every s-th row and column (Subsample), which
// oneDNN runs as one matrix product where its strided kernels take several times as long per
// operation (the convolution alone: 3.3 against 1.5 ms forward, 10.6 against 3.1 ms for both
// gradients, on 256 samples through the quick model's first shortcut).

#include "common.h"

#include "../shim_errors.h"

namespace valleys_second_order {
namespace {

struct Geometry {
  int64_t stride, padding, groups;

  void save(AutogradContext *ctx) const {
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["groups"] = groups;
  }

  static Geometry of(AutogradContext *ctx) {
    return {ctx->saved_data["stride"].toInt(), ctx->saved_data["padding"].toInt(),
            ctx->saved_data["groups"].toInt()};
  }

  at::Tensor convolve(const at::Tensor &x, const at::Tensor &w, const at::Tensor &bias) const {
    return at::convolution(x, w, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt,
                           {stride, stride}, {padding, padding}, {1, 1}, false, {0, 0}, groups);
  }

  // The gradients of conv(x; w) + b for output gradient `gy`, those asked for in `mask`.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor &gy,
                                                          const at::Tensor &x,
                                                          const at::Tensor &w,
                                                          std::array<bool, 3> mask) const {
    std::vector<int64_t> bias_size{w.size(0)};
    return at::convolution_backward(
        gy, x, w, mask[2] ? at::OptionalIntArrayRef(bias_size) : at::OptionalIntArrayRef(),
        {stride, stride}, {padding, padding}, {1, 1}, false, {0, 0}, groups, mask);
  }
};

// The backward of a convolution, as a function of (gy, x, w).
struct ConvolutionBackward : public Function<ConvolutionBackward> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &gy, const at::Tensor &x,
                               const at::Tensor &w, int64_t stride, int64_t padding,
                               int64_t groups, bool need_x, bool need_w, bool need_b) {
    // Derivatives that do not reach the loss stay undefined instead of becoming zeros.
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({gy, x, w});
    const Geometry geo{stride, padding, groups};
    geo.save(ctx);
    save_needs(ctx, {need_x, need_w, need_b});
    auto [gx, gw, gb] = geo.backward(gy, x, w, {need_x, need_w, need_b});
    return asked_for({gx, gw, gb});
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &gy = saved[0], &x = saved[1], &w = saved[2];
    at::Tensor ggx, ggw, ggb;
    spread(grads, needs_of(ctx), {&ggx, &ggw, &ggb});
    const Geometry geo = Geometry::of(ctx);
    at::Tensor for_gy, for_x, for_w;
    if (ctx->needs_input_grad(0)) {
      // The bias term rides on the first convolution as its bias.
      at::Tensor bias = ggb;
      if (ggx.defined()) {
        for_gy = geo.convolve(ggx, w, bias);
        bias = at::Tensor();
      }
      if (ggw.defined()) {
        auto term = geo.convolve(x, ggw, bias);
        for_gy = for_gy.defined() ? for_gy + term : term;
        bias = at::Tensor();
      }
      if (bias.defined()) {
        for_gy = bias.view({1, -1, 1, 1}).expand(gy.sizes()).contiguous();
      }
    }
    if (ctx->needs_input_grad(1) && ggw.defined()) {
      for_x = std::get<0>(geo.backward(gy, x, ggw, {true, false, false}));
    }
    if (ctx->needs_input_grad(2) && ggx.defined()) {
      for_w = std::get<1>(geo.backward(gy, ggx, w, {false, true, false}));
    }
    return {for_gy, for_x, for_w, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct Convolution : public Function<Convolution> {
  // The bias is a list of none or one tensor: autograd takes no undefined inputs.
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                            at::TensorList bias, int64_t stride, int64_t padding,
                            int64_t groups) {
    ctx->save_for_backward({x, w});
    const Geometry geo{stride, padding, groups};
    geo.save(ctx);
    ctx->saved_data["bias"] = !bias.empty();
    return geo.convolve(x, w, bias.empty() ? at::Tensor() : bias[0]);
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    const Geometry geo = Geometry::of(ctx);
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1),
               need_b = has_bias && ctx->needs_input_grad(2);
    at::Tensor gx, gw, gb;
    if (at::GradMode::is_enabled()) {
      auto parts = ConvolutionBackward::apply(grads[0], x, w, geo.stride, geo.padding, geo.groups,
                                              need_x, need_w, need_b);
      spread(parts, {need_x, need_w, need_b}, {&gx, &gw, &gb});
    } else {
      std::tie(gx, gw, gb) = geo.backward(grads[0], x, w, {need_x, need_w, need_b});
    }
    variable_list out{gx, gw};
    if (has_bias) out.push_back(gb);
    out.resize(out.size() + 3);  // stride, padding, groups
    return out;
  }
};

// x[:, :, ::s, ::s] (contiguous), and its adjoint: the gradient scattered back onto x's grid.
struct Upsample : public Function<Upsample> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &g, at::IntArrayRef size,
                            int64_t s);
  static variable_list backward(AutogradContext *ctx, variable_list grads);
};

struct Subsample : public Function<Subsample> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, int64_t s) {
    ctx->saved_data["size"] = x.sizes();
    ctx->saved_data["s"] = s;
    return x.slice(2, 0, x.size(2), s).slice(3, 0, x.size(3), s).contiguous();
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto size = ctx->saved_data["size"].toIntVector();
    return {Upsample::apply(grads[0], size, ctx->saved_data["s"].toInt()), at::Tensor()};
  }
};

at::Tensor Upsample::forward(AutogradContext *ctx, const at::Tensor &g, at::IntArrayRef size,
                             int64_t s) {
  ctx->saved_data["s"] = s;
  auto out = at::zeros(size, g.options());
  out.slice(2, 0, size[2], s).slice(3, 0, size[3], s).copy_(g);
  return out;
}

variable_list Upsample::backward(AutogradContext *ctx, variable_list grads) {
  return {Subsample::apply(grads[0], ctx->saved_data["s"].toInt()), at::Tensor(), at::Tensor()};
}

// Whether this thread's graphs are being built to be differentiated twice: only then do the
// operators of second_order/ record themselves (training and first derivatives keep ATen's).
thread_local bool second_order = false;

}  // namespace

bool recorded(std::initializer_list<const at::Tensor *> inputs) {
  if (!second_order || !at::GradMode::is_enabled()) return false;
  for (const auto *t : inputs) {
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  }
  return false;
}

}  // namespace valleys_second_order

using namespace valleys_second_order;

extern "C" {

// Sets whether graphs built on this thread will be differentiated twice; returns the setting
// it replaces.
int so_set_second_order(int on) {
  const bool before = second_order;
  second_order = on != 0;
  return before ? 1 : 0;
}

// conv(x; w) + bias (bias may be NULL): ours in a graph to be differentiated twice, else
// ATen's convolution; a 1×1 one of stride > 1 on a CPU over the subsampled input either way.
char *so_conv2d(const at::Tensor *x, const at::Tensor *w, const at::Tensor *bias, int64_t stride,
                int64_t padding, int64_t groups, at::Tensor **out) {
  return valleys_shim::guarded([&] {
    const at::Tensor b = bias == nullptr ? at::Tensor() : *bias;
    std::vector<at::Tensor> bias_list;
    if (b.defined()) bias_list.push_back(b);
    const bool record = recorded({x, w, bias});
    at::Tensor input = *x;
    if (stride > 1 && padding == 0 && x->dim() == 4 && w->dim() == 4 && w->size(2) == 1 &&
        w->size(3) == 1 && x->is_cpu()) {
      input = Subsample::apply(*x, stride);
      stride = 1;
    }
    *out = new at::Tensor(record ? Convolution::apply(input, *w, at::TensorList(bias_list), stride,
                                                      padding, groups)
                                 : Geometry{stride, padding, groups}.convolve(input, *w, b));
  });
}

}  // extern "C"
