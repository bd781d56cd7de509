// Our own convolution for the layers oneDNN runs least well on a CPU: 3x3, stride 1, padding
// 1, one group, 16 output channels (one AVX-512 register per pixel) and at most 16 input
// channels, as the first stage of the SWA papers' ResNets and their stems have them. Each
// thread takes a band of output rows; the three input rows a row needs are copied, zero-padded,
// into a small buffer that slides down the image, so the inner loop has no edge cases: for
// each tap and input channel, one weight vector is multiplied into a block of output pixels
// held in registers. The bias, the residual add and the ReLU are applied before the store.
// Activations are channels-last (NHWC) floats; weights are packed as [3, 3, in, 16].

#include <ATen/ATen.h>
#include <ATen/TensorIterator.h>

#include "../shim_errors.h"
#include "unseen.h"

#include <cstring>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VALLEYS_DIRECT 1
#include <immintrin.h>
#endif

namespace {

using valleys_shim::guarded;

#ifdef VALLEYS_DIRECT

struct Plan {
  int64_t in, height, width;
  const float *x, *weight, *bias, *residual;
  float *y;
  bool relu;
};

// B output pixels of one row from `rows` (three padded input rows, the first entry of each is
// column -1), starting at column w0. IN is the input channels when known at compile time (so
// that every load's offset is a constant), else 0 and `p.in` says.
template <int B, int IN>
__attribute__((target("avx512f"))) inline void pixels(const Plan &p, const float *const rows[3],
                                                      int64_t offset, int64_t w0) {
  __m512 acc[B];
  const __m512 bias = _mm512_loadu_ps(p.bias);
  for (int j = 0; j < B; ++j) acc[j] = bias;
  const int64_t in = IN > 0 ? IN : p.in;
  for (int kh = 0; kh < 3; ++kh) {
    for (int kw = 0; kw < 3; ++kw) {
      const float *src = rows[kh] + (w0 + kw) * in;
      const float *w = p.weight + (kh * 3 + kw) * in * 16;
      for (int64_t c = 0; c < in; ++c) {
        const __m512 wv = _mm512_loadu_ps(w + c * 16);
        for (int j = 0; j < B; ++j)
          acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(src[j * in + c]), wv, acc[j]);
      }
    }
  }
  const int64_t at = (offset + w0) * 16;
  for (int j = 0; j < B; ++j) {
    __m512 v = acc[j];
    if (p.residual != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(p.residual + at + j * 16));
    if (p.relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
    _mm512_storeu_ps(p.y + at + j * 16, v);
  }
}

template <int IN>
__attribute__((target("avx512f"))) void row(const Plan &p, const float *const rows[3],
                                            int64_t offset) {
  int64_t w0 = 0;
  for (; w0 + 14 <= p.width; w0 += 14) pixels<14, IN>(p, rows, offset, w0);
  for (; w0 + 4 <= p.width; w0 += 4) pixels<4, IN>(p, rows, offset, w0);
  for (; w0 < p.width; ++w0) pixels<1, IN>(p, rows, offset, w0);
}

// Output rows [begin, end) of the flattened [N * H] rows.
__attribute__((target("avx512f"))) void rows_of(const Plan &p, int64_t begin, int64_t end) {
  const int64_t padded = (p.width + 2) * p.in;
  std::vector<float> buffer(3 * padded, 0.0f);
  float *slot[3] = {buffer.data(), buffer.data() + padded, buffer.data() + 2 * padded};
  // Input row `ih` of image `n` into `dst` (zeros outside the image); its padding columns
  // stay zero.
  auto load = [&](float *dst, int64_t n, int64_t ih) {
    if (ih < 0 || ih >= p.height) {
      std::memset(dst, 0, sizeof(float) * padded);
      return;
    }
    std::memset(dst, 0, sizeof(float) * p.in);
    std::memcpy(dst + p.in, p.x + (n * p.height + ih) * p.width * p.in,
                sizeof(float) * p.width * p.in);
    std::memset(dst + padded - p.in, 0, sizeof(float) * p.in);
  };
  int64_t last = -2;  // the flattened row the slots hold the neighbourhood of
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / p.height, h = r % p.height;
    if (r == last + 1 && h != 0) {
      float *oldest = slot[0];
      slot[0] = slot[1];
      slot[1] = slot[2];
      slot[2] = oldest;
      load(slot[2], n, h + 1);
    } else {
      for (int k = 0; k < 3; ++k) load(slot[k], n, h + k - 1);
    }
    last = r;
    const float *const rows[3] = {slot[0], slot[1], slot[2]};
    const int64_t offset = r * p.width;
    switch (p.in) {
      case 16: row<16>(p, rows, offset); break;
      case 3: row<3>(p, rows, offset); break;
      case 1: row<1>(p, rows, offset); break;
      default: row<0>(p, rows, offset);
    }
  }
}

#endif

}  // namespace

extern "C" {

// Whether this CPU runs the direct convolution (x86-64 with AVX-512).
int vo_direct_available() {
#ifdef VALLEYS_DIRECT
  return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
  return 0;
#endif
}

// `weight` [16, in, 3, 3] as the kernel reads it, [3, 3, in, 16].
char *vo_direct_pack(const at::Tensor *weight, at::Tensor **out) {
  return guarded([&] {
    TORCH_CHECK(weight->dim() == 4 && weight->size(0) == 16 && weight->size(2) == 3 &&
                    weight->size(3) == 3 && weight->size(1) <= 16,
                "direct convolution: expected a [16, in <= 16, 3, 3] weight, got ",
                weight->sizes());
    *out = new at::Tensor(weight->to(at::kFloat).permute({2, 3, 1, 0}).contiguous());
  });
}

// relu?(conv(x, weight) + bias + other?) for channels-last x [N, in, H, W]. The sum is
// written over `other` when nothing else can see it (as in vo_conv_add), else into a new
// tensor.
char *vo_direct_conv(const at::Tensor *x, const at::Tensor *weight, const at::Tensor *bias,
                     const at::Tensor *other, int relu, at::Tensor **out) {
  return guarded([&] {
#ifdef VALLEYS_DIRECT
    TORCH_CHECK(vo_direct_available() == 1, "direct convolution: this CPU has no AVX-512");
    TORCH_CHECK(x->dim() == 4 && x->scalar_type() == at::kFloat && x->device().is_cpu(),
                "direct convolution: expected 4-D float CPU activations");
    const int64_t n = x->size(0), in = x->size(1), height = x->size(2), width = x->size(3);
    TORCH_CHECK(weight->dim() == 4 && weight->size(0) == 3 && weight->size(1) == 3 &&
                    weight->size(2) == in && weight->size(3) == 16 && weight->is_contiguous(),
                "direct convolution: the packed weight does not fit ", in, " input channels");
    const at::Tensor input = x->contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor b = bias == nullptr ? at::zeros({16}) : bias->to(at::kFloat).contiguous();
    TORCH_CHECK(b.numel() == 16, "direct convolution: expected 16 biases");
    at::Tensor y, residual;
    if (other != nullptr) {
      TORCH_CHECK(other->sizes() == at::IntArrayRef({n, 16, height, width}) &&
                      other->scalar_type() == at::kFloat,
                  "direct convolution: the residual's shape ", other->sizes(),
                  " is not the output's");
      const bool reuse = valleys_shim::unseen(*other);
      residual = other->contiguous(at::MemoryFormat::ChannelsLast);
      y = reuse ? *other : at::empty({n, 16, height, width}, x->options(),
                                      at::MemoryFormat::ChannelsLast);
    } else {
      y = at::empty({n, 16, height, width}, x->options(), at::MemoryFormat::ChannelsLast);
    }
    const Plan plan{in,
                    height,
                    width,
                    input.const_data_ptr<float>(),
                    weight->const_data_ptr<float>(),
                    b.const_data_ptr<float>(),
                    residual.defined() ? residual.const_data_ptr<float>() : nullptr,
                    y.data_ptr<float>(),
                    relu != 0};
    // The output rows, split over libtorch's threads by a TensorIterator over their indices
    // (a loop compiled here would run ATen's inline parallel_for on one thread).
    const at::Tensor rows = at::arange(n * height, at::kLong);
    at::Tensor unused = at::empty_like(rows);
    auto iter = at::TensorIteratorConfig()
                    .add_output(unused)
                    .add_const_input(rows)
                    .build();
    iter.for_each(
        [&plan](char **data, const int64_t *strides, int64_t inner, int64_t outer) {
          for (int64_t j = 0; j < outer; ++j) {
            const char *first = data[1] + j * strides[3];
            const int64_t begin = *reinterpret_cast<const int64_t *>(first);
            // The indices of a chunk are consecutive.
            TORCH_CHECK(strides[1] == sizeof(int64_t), "direct convolution: strided rows");
            rows_of(plan, begin, begin + inner);
          }
        },
        1);
    *out = new at::Tensor(y);
#else
    TORCH_CHECK(false, "direct convolution: not built for this CPU");
#endif
  });
}

}  // extern "C"
