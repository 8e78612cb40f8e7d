#include "kprior/train/run_checkpoint.h"

#include "kprior/checkpoint/file.h"
#include "kprior/core/error.h"

namespace kprior::train {

void save_run_checkpoint(const std::string& path, const ContinualLearner& learner,
                         const SequenceResult& partial, const RunInfo& info) {
  checkpoint::Tree tree;
  tree.put_attr("@content", std::string("run"));
  tree.put_attr("config@json", info.config_json);
  tree.put_attr("config@arguments", info.arguments);
  tree.put_attr("run@benchmark", info.benchmark);
  tree.put_attr("run@num_tasks", info.num_tasks);
  tree.put_attr("run@seed", static_cast<int64_t>(info.seed));
  // Every random stream of a run derives from the seed and the task (batch order, memory
  // selection, evaluation samples), except IVON's noise, whose state is in optimizer/archive.
  tree.put_attr("rng@note", std::string("streams derive from run@seed and the task id; IVON noise state in optimizer/archive"));
  learner.save_state(tree);
  put_result(tree, partial);
  checkpoint::write(tree, path);
}

RunInfo read_run_info(const checkpoint::Tree& tree) {
  if (!tree.has_attr("@content") || tree.text("@content") != "run") {
    throw FileError(tree.source(), "not a run checkpoint (root attribute 'content' is not 'run')");
  }
  RunInfo info;
  info.config_json = tree.text("config@json");
  info.arguments = tree.text("config@arguments");
  info.benchmark = tree.text("run@benchmark");
  info.num_tasks = tree.integer("run@num_tasks");
  info.seed = static_cast<uint64_t>(tree.integer("run@seed"));
  if (info.num_tasks < 1 || info.num_tasks > 100000) throw FileError(tree.source(), "implausible 'run@num_tasks'");
  return info;
}

SequenceResult load_run_checkpoint(const checkpoint::Tree& tree, ContinualLearner& learner) {
  const auto info = read_run_info(tree);
  learner.load_state(tree);
  if (learner.tasks_observed() > info.num_tasks) throw FileError(tree.source(), "more tasks observed than the run has");
  auto r = get_result(tree, info.num_tasks);
  r.costs = learner.costs();
  return r;
}

}  // namespace kprior::train
