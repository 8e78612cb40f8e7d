#include "kprior/data/channel_stats.h"

#include <string>
#include <utility>

#include <torch/torch.h>

#include "kprior/core/error.h"

namespace kprior::data {

ChannelStats cifar10_stats() { return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}; }

ChannelStats cifar100_stats() { return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}}; }

ChannelStats imagenet_stats() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

GreyStats fashion_mnist_stats() { return {0.2860f, 0.3530f}; }

torch::Tensor normalize_grey(torch::Tensor images, const GreyStats& stats) {
  return images.sub_(stats.mean).div_(stats.std);
}

torch::Tensor denormalize_grey(torch::Tensor images, const GreyStats& stats) {
  return images.mul_(stats.std).add_(stats.mean);
}

namespace {

// The statistics as [3, 1, 1] tensors of `images`' type and device, after checking the shape.
std::pair<torch::Tensor, torch::Tensor> channel_tensors(const torch::Tensor& images, const ChannelStats& stats,
                                                        const char* caller) {
  const int64_t channel_dim = images.dim() - 3;
  if (channel_dim < 0 || images.size(channel_dim) != 3) {
    throw UsageError(std::string(caller) + ": expected RGB images [N, 3, H, W] or [3, H, W]");
  }
  const auto opts = images.options();
  return {torch::tensor({stats.mean[0], stats.mean[1], stats.mean[2]}).to(opts).view({3, 1, 1}),
          torch::tensor({stats.std[0], stats.std[1], stats.std[2]}).to(opts).view({3, 1, 1})};
}

}  // namespace

torch::Tensor normalize_channels(torch::Tensor images, const ChannelStats& stats) {
  const auto [mean, std] = channel_tensors(images, stats, "normalize_channels");
  return images.sub_(mean).div_(std);
}

torch::Tensor denormalize_channels(torch::Tensor images, const ChannelStats& stats) {
  const auto [mean, std] = channel_tensors(images, stats, "denormalize_channels");
  return images.mul_(std).add_(mean);
}

}  // namespace kprior::data
