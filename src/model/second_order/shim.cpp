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

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "../shim_errors.h"

#include <array>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Function;
using torch::autograd::variable_list;

using Needs = std::array<bool, 3>;

// Autograd takes no undefined outputs or inputs: a backward function returns only the
// gradients asked for (`needs`), in order, and its own backward receives only theirs.
variable_list asked_for(std::initializer_list<at::Tensor> parts) {
  variable_list out;
  for (const auto &part : parts) {
    if (part.defined()) out.push_back(part);
  }
  return out;
}

void spread(const variable_list &parts, Needs needs, std::array<at::Tensor *, 3> into) {
  size_t next = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (needs[i]) *into[i] = parts.at(next++);
  }
}

void save_needs(AutogradContext *ctx, Needs needs) {
  ctx->saved_data["needs"] = int64_t{needs[0]} | int64_t{needs[1]} << 1 | int64_t{needs[2]} << 2;
}

Needs needs_of(AutogradContext *ctx) {
  const int64_t bits = ctx->saved_data["needs"].toInt();
  return {(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
}

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


// What a batch norm's derivatives need of its channels: the dimensions it reduces over, the
// shape that broadcasts a per-channel vector against the input, and the count it averages.
struct Channels {
  std::vector<int64_t> dims, shape;
  double count = 1;

  explicit Channels(const at::Tensor &x) : shape(x.dim(), 1) {
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d != 1) {
        dims.push_back(d);
        count *= static_cast<double>(x.size(d));
      }
    }
    shape[1] = -1;
  }

  at::Tensor mean(const at::Tensor &t) const { return t.sum(dims) / count; }
  at::Tensor of(const at::Tensor &v) const { return v.view(shape); }
};

// The backward of a batch norm with batch statistics, as a function of (gy, x, gamma). With
// x̂ = (x - μ)·s, s = (σ² + ε)^-½ and E the mean over a channel's elements:
//   gx = γ s (gy - E[gy] - x̂ E[gy x̂]),  gγ = Σ gy x̂,  gβ = Σ gy.
// Its own derivative, for (ggx, ggγ, ggβ), with a = E[gy], b = E[gy x̂], c = E[ggx x̂]:
//   for gy: γ s (ggx - E[ggx] - x̂ c) + ggγ x̂ + ggβ
//   for γ:  s m (E[ggx gy] - a E[ggx] - b c)
//   for x:  s (G - E[G] - x̂ E[G x̂]) - s² x̂ γ (E[ggx gy] - a E[ggx] - b c),
//           G = -γ s b ggx + (ggγ - γ s c) gy
// (the last term is the derivative through s of the factor s in gx): five per-channel means
// and two sweeps that write, where ATen's double backward takes some thirty operators.
struct BatchNormBackward : public Function<BatchNormBackward> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &gy, const at::Tensor &x,
                               const at::Tensor &gamma, const at::Tensor &mean,
                               const at::Tensor &invstd, double eps, bool need_x, bool need_gamma,
                               bool need_beta) {
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({gy, x, gamma, mean, invstd});
    ctx->saved_data["eps"] = eps;
    save_needs(ctx, {need_x, need_gamma, need_beta});
    auto [gx, ggamma, gbeta] = at::native_batch_norm_backward(
        gy, x, gamma, std::nullopt, std::nullopt, mean, invstd, true, eps,
        {need_x, need_gamma, need_beta});
    return asked_for({gx, ggamma, gbeta});
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &gy = saved[0], &x = saved[1], &gamma = saved[2];
    at::Tensor ggx, ggg, ggb;
    spread(grads, needs_of(ctx), {&ggx, &ggg, &ggb});
    const Channels ch(x);
    at::Tensor mean = saved[3], s = saved[4];
    if (at::GradMode::is_enabled()) {
      // A derivative of this one is being recorded: the statistics as functions of x.
      mean = x.mean(ch.dims);
      s = (x.var(ch.dims, /*unbiased=*/false) + ctx->saved_data["eps"].toDouble()).rsqrt();
    }
    const auto xhat = (x - ch.of(mean)) * ch.of(s);
    const auto a = ch.mean(gy), b = ch.mean(gy * xhat);
    const auto zero = at::zeros_like(a);
    const auto e_ggx = ggx.defined() ? ch.mean(ggx) : zero;
    const auto c = ggx.defined() ? ch.mean(ggx * xhat) : zero;
    const auto e_ggx_gy = ggx.defined() ? ch.mean(ggx * gy) : zero;
    if (!ggg.defined()) ggg = zero;
    if (!ggb.defined()) ggb = zero;
    const auto gs = gamma * s;
    const auto through_s = e_ggx_gy - a * e_ggx - b * c;
    at::Tensor for_gy, for_x, for_gamma;
    if (ctx->needs_input_grad(0)) {
      for_gy = at::addcmul(ch.of(ggb - gs * e_ggx), xhat, ch.of(ggg - gs * c));
      if (ggx.defined()) for_gy = for_gy + ggx * ch.of(gs);
    }
    if (ctx->needs_input_grad(1)) {
      const auto e_g = ggg * a - gs * (b * e_ggx + c * a);
      const auto e_g_xhat = ggg * b - 2 * gs * b * c;
      const auto on_xhat = -s * e_g_xhat - s * s * gamma * through_s;
      for_x = at::addcmul(ch.of(-s * e_g), xhat, ch.of(on_xhat));
      for_x = for_x + gy * ch.of(s * (ggg - gs * c));
      if (ggx.defined()) for_x = for_x - ggx * ch.of(gs * s * b);
    }
    if (ctx->needs_input_grad(2)) for_gamma = s * through_s * ch.count;
    return {for_gy, for_x, for_gamma, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// A batch norm with the batch's statistics (the running ones untouched).
struct BatchNorm : public Function<BatchNorm> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &gamma,
                            const at::Tensor &beta, double eps) {
    auto [y, mean, invstd] =
        at::native_batch_norm(x, gamma, beta, std::nullopt, std::nullopt, true, 0.0, eps);
    ctx->save_for_backward({x, gamma, mean, invstd});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &gamma = saved[1], &mean = saved[2], &invstd = saved[3];
    const double eps = ctx->saved_data["eps"].toDouble();
    const bool need_x = ctx->needs_input_grad(0), need_gamma = ctx->needs_input_grad(1),
               need_beta = ctx->needs_input_grad(2);
    at::Tensor gx, ggamma, gbeta;
    if (at::GradMode::is_enabled()) {
      auto parts = BatchNormBackward::apply(grads[0], x, gamma, mean, invstd, eps, need_x,
                                            need_gamma, need_beta);
      spread(parts, {need_x, need_gamma, need_beta}, {&gx, &ggamma, &gbeta});
    } else {
      std::tie(gx, ggamma, gbeta) =
          at::native_batch_norm_backward(grads[0], x, gamma, std::nullopt, std::nullopt, mean,
                                         invstd, true, eps, {need_x, need_gamma, need_beta});
    }
    return {gx, ggamma, gbeta, at::Tensor()};
  }
};

// Whether this thread's graphs are being built to be differentiated twice: only then do the
// operators below record themselves (training and first derivatives keep ATen's as they are).
thread_local bool second_order = false;

bool recorded(std::initializer_list<const at::Tensor *> inputs) {
  if (!second_order || !at::GradMode::is_enabled()) return false;
  for (const auto *t : inputs) {
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  }
  return false;
}

}  // namespace

extern "C" {

// Sets whether graphs built on this thread will be differentiated twice; returns the setting
// it replaces.
int so_set_second_order(int on) {
  const bool before = second_order;
  second_order = on != 0;
  return before ? 1 : 0;
}

// conv(x; w) + bias (bias may be NULL): ours in a graph to be differentiated twice, else
// ATen's convolution as it is.
char *so_conv2d(const at::Tensor *x, const at::Tensor *w, const at::Tensor *bias, int64_t stride,
                int64_t padding, int64_t groups, at::Tensor **out) {
  return valleys_shim::guarded([&] {
    const at::Tensor b = bias == nullptr ? at::Tensor() : *bias;
    std::vector<at::Tensor> bias_list;
    if (b.defined()) bias_list.push_back(b);
    *out = new at::Tensor(recorded({x, w, bias})
                              ? Convolution::apply(*x, *w, at::TensorList(bias_list), stride,
                                                   padding, groups)
                              : Geometry{stride, padding, groups}.convolve(*x, *w, b));
  });
}


// A batch norm over dimension 1 with the batch's statistics: ours in a graph to be
// differentiated twice, else ATen's.
char *so_batch_norm(const at::Tensor *x, const at::Tensor *gamma, const at::Tensor *beta,
                    double eps, at::Tensor **out) {
  return valleys_shim::guarded([&] {
    *out = new at::Tensor(recorded({x, gamma, beta}) ? BatchNorm::apply(*x, *gamma, *beta, eps)
                                   : at::batch_norm(*x, *gamma, *beta, std::nullopt,
                                                    std::nullopt, true, 0.0, eps, true));
  });
}

}  // extern "C"
