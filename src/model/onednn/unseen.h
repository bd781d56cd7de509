// When a fused convolution may write its sum over the residual it adds: when nothing else can
// see the residual. This is the one handle on the tensor and on its memory, no autograd graph
// records it, and it is channels-last as the output will be.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

namespace valleys_shim {

inline bool unseen(const at::Tensor &t) {
  return t.use_count() == 1 && t.storage().use_count() == 1 && !t.requires_grad() &&
         !at::GradMode::is_enabled() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace valleys_shim
