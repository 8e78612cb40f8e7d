#pragma once
// Builds regularizers from method names, for programs such as kprior-run.
#include <memory>
#include <string>
#include <vector>

#include "kprior/regularize/combined.h"
#include "kprior/regularize/ewc.h"
#include "kprior/regularize/fromp.h"
#include "kprior/regularize/kprior.h"
#include "kprior/regularize/replay.h"

namespace kprior::regularize {

/// Settings of every method, each with its documented default.
struct MethodSettings {
  EWCOptions ewc;
  FROMPOptions fromp;
  KPriorOptions kprior;
  ReplayOptions replay;
  CombinedOptions combined;
};

/// Names: finetune (none), ewc, fromp, replay, kprior, ewc+fr+replay, ivon-prior; a
/// comma-separated list combines them ("ewc,fromp,replay"). Throws UsageError for an unknown
/// or repeated name.
std::vector<std::unique_ptr<Regularizer>> make_regularizers(const std::string& methods,
                                                            const MethodSettings& settings);

/// The method names make_regularizers accepts.
std::vector<std::string> method_names();

}  // namespace kprior::regularize
