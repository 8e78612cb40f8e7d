#pragma once
// Loading JPEG image lists into tensors with several threads: all at once into memory
// (load_image_list), or streamed in mini-batches with the next batch decoded in the
// background while the current one is used (ImageBatchLoader), for data that does not fit
// in memory as float tensors (ImageNet). Each example's augmentation draws from its own
// random stream, mix_seed(stream, index) with stream = mix_seed(mix_seed(seed ^ 0x1A6E5EED,
// epoch), 0) for the batch loader (the constant keeps it apart from the batch order's
// mix_seed(seed, epoch)), so results do not depend on the
// number of threads or on which thread decodes what.
#include <torch/types.h>

#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include "kprior/data/batch_loader.h"
#include "kprior/data/batch_source.h"
#include "kprior/data/dataset.h"
#include "kprior/data/image_folder.h"
#include "kprior/data/image_transform.h"

namespace kprior::data {

/// Decodes and transforms files[indices[k]] into row k of float32 [n, 3, size, size], with
/// `threads` threads (0 = all hardware threads); example k's stream is
/// mix_seed(stream_seed, indices[k]). Throws the FileError of the first file that fails.
/// With `pinned`, the tensor is in page-locked memory (CUDA builds only).
torch::Tensor load_images(const std::vector<std::string>& files, const std::vector<int64_t>& indices,
                          const ImageTransform& transform, uint64_t stream_seed, int threads = 0,
                          bool pinned = false);

/// Every image of `list` in memory (inputs [N, 3, size, size], targets = labels).
Dataset load_image_list(const ImageList& list, const ImageTransform& transform, uint64_t seed = 0,
                        int threads = 0);

/// Mini-batches of an image list decoded on demand, with BatchLoader's interface and batch
/// order (epoch e: random_permutation(N, mix_seed(seed, e)) when shuffling). Batch::indices
/// are positions in the list. Not copyable; one consumer at a time.
class ImageBatchLoader : public BatchSource {
 public:
  ImageBatchLoader(ImageList list, ImageTransform transform, int64_t batch_size, bool shuffle = true,
                   uint64_t seed = 0, int threads = 0, bool drop_last = false);
  ~ImageBatchLoader() override;
  ImageBatchLoader(const ImageBatchLoader&) = delete;
  ImageBatchLoader& operator=(const ImageBatchLoader&) = delete;

  int64_t size() const override { return list_.size(); }
  int64_t num_batches() const override;
  int64_t batch_size() const { return batch_size_; }
  const ImageList& list() const { return list_; }
  void set_epoch(int64_t epoch) override;
  /// Batch `b` of the current epoch (on the CPU); starts decoding batch b + 1 in the background.
  Batch batch(int64_t b) override;
  /// Decodes into page-locked memory from the next batch decoded on (CUDA builds only).
  void pin_batches() override { pinned_ = true; }

 private:
  Batch load(int64_t b) const;

  ImageList list_;
  ImageTransform transform_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  int threads_;
  bool drop_last_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  std::future<Batch> next_;
  int64_t next_index_ = -1;
  bool pinned_ = false;
};

}  // namespace kprior::data
