#pragma once
// Where a task's training batches come from. The learner trains from a BatchSource: an
// in-memory Dataset (DatasetSource, BatchLoader's batches) or files decoded on the fly
// (ImageBatchLoader in image_loader.h), for data that does not fit in memory as tensors.
#include <cstdint>
#include <functional>
#include <memory>

#include "kprior/data/batch_loader.h"

namespace kprior::data {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Examples per epoch.
  virtual int64_t size() const = 0;
  virtual int64_t num_batches() const = 0;
  /// Sets the epoch whose order (and augmentation) batch() uses.
  virtual void set_epoch(int64_t epoch) = 0;
  /// Batch `b` of the current epoch (0 <= b < num_batches()), on the source's device.
  virtual Batch batch(int64_t b) = 0;
  /// Asks for batches in page-locked host memory from now on, so that their copies to a GPU
  /// can run asynchronously (needs a CUDA build). Sources whose batches already live on a
  /// device ignore it.
  virtual void pin_batches() {}
};

/// BatchLoader's batches as a BatchSource: the same batches in the same order.
class DatasetSource : public BatchSource {
 public:
  explicit DatasetSource(BatchLoader loader) : loader_(std::move(loader)) {}
  int64_t size() const override { return loader_.dataset().size(); }
  int64_t num_batches() const override { return loader_.num_batches(); }
  void set_epoch(int64_t epoch) override { loader_.set_epoch(epoch); }
  Batch batch(int64_t b) override { return loader_.batch(b); }

 private:
  BatchLoader loader_;
};

/// Makes a task's stream for a given batch size and shuffling seed (the learner's).
using StreamFactory = std::function<std::unique_ptr<BatchSource>(int64_t batch_size, uint64_t seed)>;

}  // namespace kprior::data
