// The batch norm with batch statistics, eval mode's batch norm (one affine map per channel)
// and the ReLU, for graphs that are differentiated twice (Hessian-vector products). Each
// one's backward is an autograd function of its own whose derivative writes only what is
// needed: ATen's double backward of batch_norm takes some thirty operators, that of the
// affine map six products and the adds where they meet, and that of the ReLU writes a
// tensor of zeros for the ReLU's output that autograd then adds into its gradient.
// Each is used only while a thread builds a graph to be differentiated twice
// (so_set_second_order); everywhere else the operators are ATen's.

#include "common.h"

#include "../shim_errors.h"

namespace valleys_second_order {
namespace {

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

// The backward of a ReLU, gx = gy where y > 0, as a function of gy alone: its derivative for
// y is zero almost everywhere, and is left undefined instead of written out.
struct ReluBackward : public Function<ReluBackward> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &gy, const at::Tensor &y) {
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({y});
    return at::threshold_backward(gy, y, 0);
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    const auto y = ctx->get_saved_variables()[0];
    return {at::threshold_backward(grads[0], y, 0), at::Tensor()};
  }
};

struct Relu : public Function<Relu> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x) {
    auto y = at::relu(x);
    ctx->save_for_backward({y});
    return y;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto y = ctx->get_saved_variables()[0];
    if (at::GradMode::is_enabled()) return {ReluBackward::apply(grads[0], y)};
    return {at::threshold_backward(grads[0], y, 0)};
  }
};

// The affine map's first-order gradient, for the parts asked for: gx = gy s, gs = Σ gy x and
// gb = Σ gy over all but the channel dimension.
variable_list affine_gradient(const at::Tensor &gy, const at::Tensor &x, const at::Tensor &s,
                              bool need_x, bool need_s, bool need_b) {
  const Channels ch(x);
  at::Tensor gx, gs, gb;
  if (need_x) gx = gy * ch.of(s);
  if (need_s) gs = (gy * x).sum(ch.dims);
  if (need_b) gb = gy.sum(ch.dims);
  return {gx, gs, gb};
}

// The backward of y = x s + b (s, b one value per channel), as a function of (gy, x, s):
//   gx = gy s,  gs = Σ gy x,  gb = Σ gy;
// its own, for (ggx, ggs, ggb): for gy: ggx s + x ggs + ggb, for x: gy ggs, for s: Σ ggx gy.
struct AffineBackward : public Function<AffineBackward> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &gy, const at::Tensor &x,
                               const at::Tensor &s, bool need_x, bool need_s, bool need_b) {
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({gy, x, s});
    save_needs(ctx, {need_x, need_s, need_b});
    return asked_for(affine_gradient(gy, x, s, need_x, need_s, need_b));
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &gy = saved[0], &x = saved[1], &s = saved[2];
    at::Tensor ggx, ggs, ggb;
    spread(grads, needs_of(ctx), {&ggx, &ggs, &ggb});
    const Channels ch(x);
    at::Tensor for_gy, for_x, for_s;
    if (ctx->needs_input_grad(0)) {
      if (ggs.defined()) {
        for_gy = ggb.defined() ? at::addcmul(ch.of(ggb), x, ch.of(ggs)) : x * ch.of(ggs);
      } else if (ggb.defined()) {
        for_gy = ch.of(ggb).expand(gy.sizes()).contiguous();
      }
      if (ggx.defined()) {
        for_gy = for_gy.defined() ? for_gy.addcmul(ggx, ch.of(s)) : ggx * ch.of(s);
      }
    }
    if (ctx->needs_input_grad(1) && ggs.defined()) for_x = gy * ch.of(ggs);
    if (ctx->needs_input_grad(2) && ggx.defined()) for_s = (ggx * gy).sum(ch.dims);
    return {for_gy, for_x, for_s, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// y = x s + b, one scale and shift per channel (dimension 1).
struct Affine : public Function<Affine> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &s,
                            const at::Tensor &b) {
    ctx->save_for_backward({x, s});
    const Channels ch(x);
    return at::addcmul(ch.of(b), x, ch.of(s));
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &s = saved[1];
    const bool need_x = ctx->needs_input_grad(0), need_s = ctx->needs_input_grad(1),
               need_b = ctx->needs_input_grad(2);
    if (!at::GradMode::is_enabled()) return affine_gradient(grads[0], x, s, need_x, need_s, need_b);
    at::Tensor gx, gs, gb;
    auto parts = AffineBackward::apply(grads[0], x, s, need_x, need_s, need_b);
    spread(parts, {need_x, need_s, need_b}, {&gx, &gs, &gb});
    return {gx, gs, gb};
  }
};

}  // namespace
}  // namespace valleys_second_order

using namespace valleys_second_order;

extern "C" {

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

// relu(x): ours in a graph to be differentiated twice, else ATen's.
char *so_relu(const at::Tensor *x, at::Tensor **out) {
  return valleys_shim::guarded(
      [&] { *out = new at::Tensor(recorded({x}) ? Relu::apply(*x) : at::relu(*x)); });
}

// x * scale + shift, one of each per channel: ours in a graph to be differentiated twice, else
// ATen's addcmul.
char *so_affine(const at::Tensor *x, const at::Tensor *scale, const at::Tensor *shift,
                at::Tensor **out) {
  return valleys_shim::guarded([&] {
    if (recorded({x, scale, shift})) {
      *out = new at::Tensor(Affine::apply(*x, *scale, *shift));
    } else {
      const Channels ch(*x);
      *out = new at::Tensor(at::addcmul(ch.of(*shift), *x, ch.of(*scale)));
    }
  });
}

}  // extern "C"
