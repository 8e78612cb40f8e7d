// A lifelong-learning agent driving kprior one task at a time: it learns each split-MNIST
// task as it arrives (FROMP with IVON), answers queries with probabilities and their
// predictive variance, and shows what it remembers. Usage: lifelong_agent DATA_DIR
#include <fmt/core.h>
#include <torch/torch.h>

#include "kprior/core/threads.h"
#include "kprior/data/benchmarks.h"
#include "kprior/nn/mlp.h"
#include "kprior/regularize/factory.h"
#include "kprior/train/continual_learner.h"
#include "kprior/train/published_settings.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: lifelong_agent DATA_DIR\n");
    return 2;
  }
  try {
    kprior::set_threads(0);
    const auto tasks = kprior::data::make_benchmark("split-mnist", argv[1], 0);
    torch::manual_seed(0);
    auto model = std::make_shared<kprior::nn::MLPImpl>(std::vector<int64_t>{784, 100, 10});
    // FROMPOptions' defaults are the published ones, tuned for Adam; with IVON, FROMP needs
    // IVON's measured settings (a far smaller τ, a larger jitter and h0), or it forgets.
    const auto pub = kprior::train::published_settings("split-mnist");
    const auto iv = kprior::train::ivon_settings("split-mnist", /*with_fromp=*/true);
    kprior::regularize::MethodSettings methods;
    methods.fromp.tau(pub.tau * iv.tau_scale).jitter(iv.jitter);
    kprior::train::ContinualLearner agent(
        model, kprior::regularize::make_regularizers("fromp", methods),
        kprior::train::LearnerOptions()
            .optimizer(kprior::train::OptimizerKind::IVON)
            .hess_init(iv.hess_init)
            .lr_schedule(iv.lr_schedule)
            .batch_size(iv.batch_size)
            .epochs(2)
            .memory_per_task(20));
    for (const auto& task : tasks.tasks) {
      agent.observe(task);  // a new task arrives: learn it, remember its most memorable digits
      // Ask about the first task again: is it still known, and how sure is the agent?
      const auto& first = tasks.tasks.front();
      const auto answer = agent.predict(first.test.inputs.slice(0, 0, 200), first);
      const auto correct = answer.probs.argmax(1)
                               .eq(kprior::data::head_targets(first, first.test.targets.slice(0, 0, 200)))
                               .to(torch::kFloat64).mean().item<double>();
      fmt::print("after task {} ({}): task 0 accuracy {:.1f}%, mean predictive variance {:.2e}, "
                 "{} tasks in memory ({} examples)\n",
                 task.id, task.name, 100 * correct, answer.variance.mean().item<double>(),
                 agent.memory().size(), agent.memory().size() * agent.memory().front().size());
    }
    const auto q = agent.posterior();
    fmt::print("posterior over {} parameters (source {}), mean variance {:.2e}\n", q.numel(),
               q.source(), q.flat_variance().mean().item<double>());
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "lifelong_agent: error: {}\n", e.what());
    return 1;
  }
}
