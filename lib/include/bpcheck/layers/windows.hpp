#pragma once
// Sliding-window geometry shared by convolution and pooling, in PyTorch's conventions.
//
//   bpcheck::WindowGeometry g = bpcheck::WindowGeometry::make("conv2d", {3, 8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1});
//   g.out_h, g.out_w;            // ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1 in each direction
//   g.tap(pos, k);               // offset y·W + x of tap k of output position pos, or −1 in the padding
//
// A sample is one column holding C·H·W values in C, H, W row-major order (PyTorch's contiguous
// layout): entry c·H·W + y·W + x. A 1d layer is the 2d one with H = 1 and a kernel of height 1.
#include <array>
#include <string>
#include <vector>

#include "bpcheck/layer.hpp"

namespace bpcheck {

struct WindowGeometry {
  Index channels = 0, height = 0, width = 0;
  Index kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  Index out_h = 0, out_w = 0;
  /// taps[pos · K + k]: the offset in a channel plane of tap k (ky·kernel_w + kx) of output position
  /// pos (oy·out_w + ox), −1 where the tap falls in the zero padding.
  std::vector<Index> taps;

  Index plane() const { return height * width; }
  Index out_plane() const { return out_h * out_w; }
  Index kernel_size() const { return kernel_h * kernel_w; }
  Index tap(Index pos, Index k) const { return taps[std::size_t(pos * kernel_size() + k)]; }

  /// Checks every size (positive; padding not negative; the dilated kernel fits the padded input)
  /// and builds the taps. Throws input_error naming `who`. Arrays are {channels, height, width} and
  /// {h, w} for kernel, stride, padding and dilation.
  static WindowGeometry make(const std::string& who, std::array<Index, 3> chw, std::array<Index, 2> kernel,
                             std::array<Index, 2> stride, std::array<Index, 2> padding,
                             std::array<Index, 2> dilation) {
    WindowGeometry g;
    g.channels = chw[0], g.height = chw[1], g.width = chw[2];
    g.kernel_h = kernel[0], g.kernel_w = kernel[1];
    g.stride_h = stride[0], g.stride_w = stride[1];
    g.pad_h = padding[0], g.pad_w = padding[1];
    g.dilation_h = dilation[0], g.dilation_w = dilation[1];
    for (Index v : {g.channels, g.height, g.width, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.dilation_h,
                    g.dilation_w})
      if (v <= 0) throw input_error(who + ": channels, sizes, kernel, stride and dilation must be positive");
    if (g.pad_h < 0 || g.pad_w < 0) throw input_error(who + ": padding must not be negative");
    const Index span_h = g.dilation_h * (g.kernel_h - 1) + 1, span_w = g.dilation_w * (g.kernel_w - 1) + 1;
    if (span_h > g.height + 2 * g.pad_h || span_w > g.width + 2 * g.pad_w)
      throw input_error(who + ": kernel " + std::to_string(g.kernel_h) + "×" + std::to_string(g.kernel_w) +
                        " (dilated span " + std::to_string(span_h) + "×" + std::to_string(span_w) +
                        ") is larger than the padded input " + std::to_string(g.height + 2 * g.pad_h) + "×" +
                        std::to_string(g.width + 2 * g.pad_w));
    g.out_h = (g.height + 2 * g.pad_h - span_h) / g.stride_h + 1;
    g.out_w = (g.width + 2 * g.pad_w - span_w) / g.stride_w + 1;
    g.taps.resize(std::size_t(g.out_plane() * g.kernel_size()));
    for (Index oy = 0; oy < g.out_h; ++oy)
      for (Index ox = 0; ox < g.out_w; ++ox)
        for (Index ky = 0; ky < g.kernel_h; ++ky)
          for (Index kx = 0; kx < g.kernel_w; ++kx) {
            const Index y = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
            const Index x = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
            const bool inside = y >= 0 && y < g.height && x >= 0 && x < g.width;
            g.taps[std::size_t((oy * g.out_w + ox) * g.kernel_size() + ky * g.kernel_w + kx)] =
                inside ? y * g.width + x : -1;
          }
    return g;
  }
};

}  // namespace bpcheck
