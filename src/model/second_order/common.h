// What the autograd functions of second_order/ share: the bookkeeping of which derivatives a
// backward was asked for, a batch norm's per-channel reductions, and whether this thread is
// building a graph to be differentiated twice.

#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <array>
#include <initializer_list>
#include <vector>

namespace valleys_second_order {

using torch::autograd::AutogradContext;
using torch::autograd::Function;
using torch::autograd::variable_list;

using Needs = std::array<bool, 3>;

// Autograd takes no undefined outputs or inputs: a backward function returns only the
// gradients asked for (`needs`), in order, and its own backward receives only theirs.
inline variable_list asked_for(const variable_list &parts) {
  variable_list out;
  for (const auto &part : parts) {
    if (part.defined()) out.push_back(part);
  }
  return out;
}

inline void spread(const variable_list &parts, Needs needs, std::array<at::Tensor *, 3> into) {
  size_t next = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (needs[i]) *into[i] = parts.at(next++);
  }
}

inline void save_needs(AutogradContext *ctx, Needs needs) {
  ctx->saved_data["needs"] = int64_t{needs[0]} | int64_t{needs[1]} << 1 | int64_t{needs[2]} << 2;
}

inline Needs needs_of(AutogradContext *ctx) {
  const int64_t bits = ctx->saved_data["needs"].toInt();
  return {(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
}


// What a per-channel operator's derivatives need of its channels: the dimensions it reduces over, the
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

// Whether an operator on `inputs` is being recorded into a graph that this thread will
// differentiate twice (convolution.cpp holds the setting).
bool recorded(std::initializer_list<const at::Tensor *> inputs);

}  // namespace valleys_second_order
