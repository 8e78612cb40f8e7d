#pragma once
// The library's objects in a checkpoint tree (docs/checkpoint-format.md): memories and
// posteriors, and stand-alone files holding one memory — what a program or an agent reloads
// to keep learning or to inspect what was remembered.
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "kprior/checkpoint/tree.h"
#include "kprior/memory/memory_store.h"
#include "kprior/posterior/diagonal_gaussian.h"

namespace kprior::checkpoint {

/// Under `group`: inputs, labels, scores, old_probs, classes datasets, indices when the memory
/// knows them, and a `task` attribute.
void put_memory(Tree& tree, const std::string& group, const memory::TaskMemory& m);
/// Reads and checks (matching lengths, labels in `classes`) what put_memory wrote.
memory::TaskMemory get_memory(const Tree& tree, const std::string& group);
/// The memories of every past task: memory/task_0, memory/task_1, ... in order.
std::vector<memory::TaskMemory> get_memories(const Tree& tree);

/// A file holding one memory (its group is "memory/task_<id>").
void save_memory(const memory::TaskMemory& m, const std::string& path);
memory::TaskMemory load_memory(const std::string& path);

/// Under `group`: every training example of a task as the memory selection scores it
/// (labels, lambda_trace, and logit_variance and mpe when they are defined), and
/// memory_indices (positions of the remembered examples) when `memory_indices` is defined,
/// and `files`, the image each example was decoded from, when given (put_lines).
void put_example_scores(Tree& tree, const std::string& group, const memory::ExampleScores& s,
                        const torch::Tensor& memory_indices, const std::vector<std::string>& files = {});

/// Lines of text as one uint8 dataset, the lines joined by '\n' (h5py:
/// `bytes(f[path][()]).decode().split("\n")`), and back. No line may hold '\n'.
void put_lines(Tree& tree, const std::string& path, const std::vector<std::string>& lines);
std::vector<std::string> get_lines(const Tree& tree, const std::string& path);

/// A module's parameters under "model/<name>" and buffers under "model_buffers/<name>"
/// (named_parameters()/named_buffers() names), and back: get_module copies them into a module
/// of the same architecture, throwing kprior::FileError naming the first entry that is
/// missing or does not fit (shape or type).
void put_module(Tree& tree, const torch::nn::Module& module);
void get_module(const Tree& tree, torch::nn::Module& module);
/// Under `group`: mean/<i>, variance/<i> (parameter order) and a `source` attribute.
void put_posterior(Tree& tree, const std::string& group, const posterior::DiagonalGaussian& q);
posterior::DiagonalGaussian get_posterior(const Tree& tree, const std::string& group);
/// The posterior stored in a learner checkpoint (group "posterior").
posterior::DiagonalGaussian read_posterior(const std::string& checkpoint_path);

}  // namespace kprior::checkpoint
