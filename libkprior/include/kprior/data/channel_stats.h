#pragma once
// Per-channel normalisation of RGB images: x ← (x − mean_c) / std_c for images scaled to
// [0, 1]. The statistics are those of each dataset's training images, computed over all
// pixels of the training set (the values the literature and torchvision use).
#include <torch/types.h>

#include <array>

namespace kprior::data {

struct ChannelStats {
  std::array<float, 3> mean;
  std::array<float, 3> std;
};

/// CIFAR-10 training set: mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616).
ChannelStats cifar10_stats();
/// CIFAR-100 training set: mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762).
ChannelStats cifar100_stats();
/// ImageNet training set (torchvision's): mean (0.485, 0.456, 0.406), std (0.229, 0.224,
/// 0.225); also used for TinyImageNet, a subset of ImageNet.
ChannelStats imagenet_stats();

/// One grey channel's statistics, for images of any shape.
struct GreyStats {
  float mean;
  float std;
};

/// Fashion-MNIST training set (60,000 images in [0, 1]): mean 0.2860, std 0.3530, the values
/// the memory-perturbation code normalises with (Nickl et al., NeurIPS 2023).
GreyStats fashion_mnist_stats();

/// x ← (x − mean) / std in place for float images in [0, 1] of any shape; returns them.
torch::Tensor normalize_grey(torch::Tensor images, const GreyStats& stats);
/// The inverse, x ← x·std + mean, in place.
torch::Tensor denormalize_grey(torch::Tensor images, const GreyStats& stats);

/// Normalises float images [N, 3, H, W] (or [3, H, W]) in [0, 1] in place, and returns them.
torch::Tensor normalize_channels(torch::Tensor images, const ChannelStats& stats);

/// The inverse, x ← x·std_c + mean_c, in place (to show normalised images as they were).
torch::Tensor denormalize_channels(torch::Tensor images, const ChannelStats& stats);

}  // namespace kprior::data
