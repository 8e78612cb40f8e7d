#include "kprior/data/image_loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <system_error>
#include <thread>

#include "kprior/core/error.h"
#include "kprior/core/random.h"
#include "kprior/core/threads.h"

namespace kprior::data {

torch::Tensor load_images(const std::vector<std::string>& files, const std::vector<int64_t>& indices,
                          const ImageTransform& transform, uint64_t stream_seed, int threads, bool pinned) {
  const auto n = static_cast<int64_t>(indices.size());
  const int64_t s = transform.size;
  auto out = torch::empty({n, 3, s, s}, torch::TensorOptions(torch::kFloat32).pinned_memory(pinned));
  float* dst = out.data_ptr<float>();
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, threads > 0 ? threads : hardware_threads()), std::max<int64_t>(n, 1)));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  // libjpeg may scale by 1/2, 1/4, 1/8 while decoding as long as the shorter side keeps the
  // pixels the transform reads: the test pipeline resizes the shorter side to
  // round(size · resize_ratio) before its centre crop; a random-resized crop may take 8% of
  // the image and enlarge it to `size`, so training decodes at full resolution (as
  // torchvision does).
  const int64_t min_side = transform.augment ? 0 : static_cast<int64_t>(std::ceil(static_cast<double>(transform.size) * transform.resize_ratio));
  auto work = [&](int w) {
    try {
      RgbImage image;  // buffers reused from image to image
      std::vector<uint8_t> bytes;
      // Strided assignment: neighbouring (similar-sized) files spread over the threads.
      for (int64_t k = w; k < n; k += workers) {
        const int64_t i = indices[static_cast<size_t>(k)];
        if (i < 0 || i >= static_cast<int64_t>(files.size())) throw UsageError("load_images: index out of range");
        decode_jpeg_into(files[static_cast<size_t>(i)], min_side, image, bytes);
        SplitMix64 rng(mix_seed(stream_seed, static_cast<uint64_t>(i)));
        transform_image(image, transform, rng, dst + k * 3 * s * s);
      }
    } catch (...) {
      errors[static_cast<size_t>(w)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  std::vector<int> here{0};  // the shares this thread decodes itself
  for (int w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(work, w);
    } catch (const std::system_error&) {
      // No thread could be started (a process limit): this thread takes that share, and the
      // threads already running are still joined below (a joinable thread must never be
      // destroyed: that would terminate the process).
      here.push_back(w);
    }
  }
  for (int w : here) work(w);
  for (auto& t : pool) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return out;
}

Dataset load_image_list(const ImageList& list, const ImageTransform& transform, uint64_t seed, int threads) {
  std::vector<int64_t> all(static_cast<size_t>(list.size()));
  for (int64_t i = 0; i < list.size(); ++i) all[static_cast<size_t>(i)] = i;
  return {load_images(list.files, all, transform, seed, threads), torch::tensor(list.labels, torch::kLong)};
}

ImageBatchLoader::ImageBatchLoader(ImageList list, ImageTransform transform, int64_t batch_size, bool shuffle,
                                   uint64_t seed, int threads, bool drop_last)
    : list_(std::move(list)), transform_(transform), batch_size_(batch_size), shuffle_(shuffle), seed_(seed),
      threads_(threads), drop_last_(drop_last) {
  if (batch_size <= 0) throw UsageError("batch size must be > 0, got " + std::to_string(batch_size));
  if (list_.files.size() != list_.labels.size()) throw UsageError("ImageBatchLoader: files and labels differ in number");
  set_epoch(0);
}

ImageBatchLoader::~ImageBatchLoader() {
  if (next_.valid()) next_.wait();
}

int64_t ImageBatchLoader::num_batches() const {
  const int64_t n = size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void ImageBatchLoader::set_epoch(int64_t epoch) {
  if (next_.valid()) next_.wait();  // a prefetch of the previous epoch is dropped
  next_ = {};
  next_index_ = -1;
  epoch_ = epoch;
  if (shuffle_) {
    order_ = random_permutation(size(), mix_seed(seed_, static_cast<uint64_t>(epoch)));
  } else {
    order_.resize(static_cast<size_t>(size()));
    for (int64_t i = 0; i < size(); ++i) order_[static_cast<size_t>(i)] = i;
  }
}

Batch ImageBatchLoader::load(int64_t b) const {
  const int64_t start = b * batch_size_, stop = std::min(start + batch_size_, size());
  const std::vector<int64_t> idx(order_.begin() + start, order_.begin() + stop);
  std::vector<int64_t> labels;
  for (auto i : idx) labels.push_back(list_.labels[static_cast<size_t>(i)]);
  // Augmentation streams differ per epoch; a separate stream family from the order's.
  const uint64_t stream = mix_seed(mix_seed(seed_ ^ 0x1A6E5EEDULL, static_cast<uint64_t>(epoch_)), 0);
  return {load_images(list_.files, idx, transform_, stream, threads_, pinned_), torch::tensor(labels, torch::kLong),
          torch::tensor(idx, torch::kLong)};
}

Batch ImageBatchLoader::batch(int64_t b) {
  if (b < 0 || b >= num_batches()) {
    throw UsageError("batch index " + std::to_string(b) + " outside 0.." + std::to_string(num_batches() - 1));
  }
  Batch out;
  if (next_.valid() && next_index_ == b) {
    out = next_.get();  // rethrows a decoding error of the prefetch
  } else {
    if (next_.valid()) next_.wait();
    out = load(b);
  }
  next_ = {};
  next_index_ = -1;
  if (b + 1 < num_batches()) {
    next_index_ = b + 1;
    next_ = std::async(std::launch::async, [this, b] { return load(b + 1); });
  }
  return out;
}

}  // namespace kprior::data
