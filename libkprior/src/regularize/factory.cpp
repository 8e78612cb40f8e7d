#include "kprior/regularize/factory.h"

#include <set>
#include <sstream>

#include "kprior/core/error.h"
#include "kprior/regularize/ivon_prior.h"

namespace kprior::regularize {

std::vector<std::string> method_names() {
  return {"finetune", "ewc", "fromp", "replay", "kprior", "ewc+fr+replay", "ivon-prior"};
}

std::vector<std::unique_ptr<Regularizer>> make_regularizers(const std::string& methods,
                                                            const MethodSettings& s) {
  std::vector<std::unique_ptr<Regularizer>> out;
  std::set<std::string> seen;
  std::stringstream in(methods);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (!seen.insert(name).second) throw UsageError("method '" + name + "' given twice");
    if (name == "finetune") continue;
    // Each regularizer checks its settings when it is built.
    if (name == "ewc") out.push_back(std::make_unique<EWC>(s.ewc));
    else if (name == "fromp") out.push_back(std::make_unique<FROMP>(s.fromp));
    else if (name == "replay") out.push_back(std::make_unique<Replay>(s.replay));
    else if (name == "kprior") out.push_back(std::make_unique<KPrior>(s.kprior));
    else if (name == "ewc+fr+replay") out.push_back(std::make_unique<Combined>(s.combined));
    else if (name == "ivon-prior") out.push_back(std::make_unique<IVONPrior>());
    else {
      std::string known;
      for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
      throw UsageError("unknown method '" + name + "' (known: " + known + ")");
    }
  }
  if (seen.empty()) throw UsageError("no method given");
  return out;
}

}  // namespace kprior::regularize
