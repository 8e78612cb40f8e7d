#include "kprior/image/grid.h"

#include <torch/torch.h>

#include <array>
#include <cctype>

#include "kprior/core/error.h"

namespace kprior::image {
namespace {

// A 3×5 pixel font: five rows of three bits (most significant = left column) per glyph.
struct Glyph {
  char c;
  std::array<uint8_t, 5> rows;
};

constexpr Glyph kFont[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 1, 1}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
    {'A', {2, 5, 7, 5, 5}}, {'B', {6, 5, 6, 5, 6}}, {'C', {7, 4, 4, 4, 7}}, {'D', {6, 5, 5, 5, 6}},
    {'E', {7, 4, 6, 4, 7}}, {'F', {7, 4, 6, 4, 4}}, {'G', {7, 4, 5, 5, 7}}, {'H', {5, 5, 7, 5, 5}},
    {'I', {7, 2, 2, 2, 7}}, {'J', {1, 1, 1, 5, 7}}, {'K', {5, 5, 6, 5, 5}}, {'L', {4, 4, 4, 4, 7}},
    {'M', {5, 7, 7, 5, 5}}, {'N', {6, 5, 5, 5, 5}}, {'O', {7, 5, 5, 5, 7}}, {'P', {7, 5, 7, 4, 4}},
    {'Q', {7, 5, 5, 7, 1}}, {'R', {7, 5, 6, 5, 5}}, {'S', {7, 4, 7, 1, 7}}, {'T', {7, 2, 2, 2, 2}},
    {'U', {5, 5, 5, 5, 7}}, {'V', {5, 5, 5, 5, 2}}, {'W', {5, 5, 7, 7, 5}}, {'X', {5, 5, 2, 5, 5}},
    {'Y', {5, 5, 2, 2, 2}}, {'Z', {7, 1, 2, 4, 7}}, {':', {0, 2, 0, 2, 0}}, {'=', {0, 7, 0, 7, 0}},
};

const Glyph* glyph(char c) {
  const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& g : kFont) {
    if (g.c == u) return &g;
  }
  return nullptr;  // spaces and unknown characters stay blank
}

// Writes `text` into `canvas` [H, W, 3] at (y, x), each font pixel `s`×`s`, in `colour`.
void draw_text(torch::Tensor& canvas, int64_t y, int64_t x, const std::string& text, int64_t s,
               const std::array<uint8_t, 3>& colour) {
  const auto colour_t = torch::tensor({colour[0], colour[1], colour[2]}, torch::kUInt8);
  for (const char c : text) {
    if (const auto* g = glyph(c)) {
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t col = 0; col < 3; ++col)
          if ((g->rows[static_cast<size_t>(r)] >> (2 - col)) & 1) {
            const int64_t py = y + r * s, px = x + col * s;
            if (py + s <= canvas.size(0) && px + s <= canvas.size(1)) {
              canvas.slice(0, py, py + s).slice(1, px, px + s).copy_(colour_t.expand({s, s, 3}));
            }
          }
    }
    x += 4 * s;
  }
}

// [N, 3, H, W] uint8 from any supported layout: [0, 1] scaled to 0..255 (unit_range), else
// each image stretched to 0..255.
torch::Tensor to_rgb_bytes(const torch::Tensor& images, bool unit_range) {
  auto x = images.detach().cpu().to(torch::kFloat64);
  if (x.dim() == 3) x = x.unsqueeze(1);
  if (x.dim() != 4 || (x.size(1) != 1 && x.size(1) != 3)) {
    throw UsageError("labelled_grid: images must be [N, H, W], [N, 1, H, W] or [N, 3, H, W]");
  }
  if (unit_range) {
    x = x * 255.0;
  } else {
    const auto flat = x.reshape({x.size(0), -1});
    const auto lo = std::get<0>(flat.min(1)).view({-1, 1, 1, 1});
    const auto hi = std::get<0>(flat.max(1)).view({-1, 1, 1, 1});
    x = (x - lo) / (hi - lo).clamp_min(1e-12) * 255.0;
  }
  return x.round().clamp(0, 255).to(torch::kUInt8).expand({x.size(0), 3, x.size(2), x.size(3)});
}

}  // namespace

torch::Tensor labelled_grid(const torch::Tensor& images, const std::vector<std::string>& labels,
                            GridOptions options) {
  if (options.columns < 1 || options.scale < 1) throw UsageError("labelled_grid: columns and scale must be >= 1");
  const auto rgb = to_rgb_bytes(images, options.unit_range);
  const int64_t n = rgb.size(0);
  if (n == 0) throw UsageError("labelled_grid: no images");
  if (!labels.empty() && static_cast<int64_t>(labels.size()) != n) {
    throw UsageError("labelled_grid: " + std::to_string(labels.size()) + " labels for " + std::to_string(n) + " images");
  }
  const int64_t s = options.scale, h = rgb.size(2) * s, w = rgb.size(3) * s;
  const int64_t font = std::max<int64_t>(1, s), label_h = labels.empty() ? 0 : 7 * font, pad = s;
  const int64_t cols = std::min(options.columns, n), rows = (n + cols - 1) / cols;
  const int64_t tile_h = label_h + h + pad, tile_w = w + pad;
  auto canvas = torch::full({rows * tile_h + pad, cols * tile_w + pad, 3}, 40, torch::kUInt8);  // dark grey
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = (i / cols) * tile_h + pad, x = (i % cols) * tile_w + pad;
    const auto tile = rgb[i].repeat_interleave(s, 1).repeat_interleave(s, 2).permute({1, 2, 0});
    canvas.slice(0, y + label_h, y + label_h + h).slice(1, x, x + w).copy_(tile);
    if (!labels.empty()) draw_text(canvas, y + font, x, labels[static_cast<size_t>(i)], font, {255, 210, 60});
  }
  return canvas;
}

}  // namespace kprior::image
