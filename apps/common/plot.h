#pragma once
// The apps' --plot: figures are drawn by notebooks/kprior_plot.py (matplotlib) — the same code
// the notebooks use, so a figure from an app and from a notebook agree — run as a child
// process. A missing Python or matplotlib is reported before any long work starts.
#include <string>
#include <vector>

namespace kprior::app {

struct Plotter {
  std::string python;  // an interpreter that imports numpy and matplotlib
  std::string script;  // kprior_plot.py
};

/// Finds kprior_plot.py ($KPRIOR_PLOT_SCRIPT, else <prefix>/share/kprior next to the
/// executable's bin/, else the source tree the app was built from) and a Python that runs its
/// `check` ($KPRIOR_PYTHON, which must work when set; else python3 on PATH, else Debian's
/// /usr/bin/python3 — a pyenv or venv python3 first on PATH often lacks matplotlib). Throws
/// UsageError saying what to install.
Plotter find_plotter();

/// Runs `kprior_plot.py <command> <dir> --out <png> <extra...>`; throws kprior::Error with the
/// last line the script wrote to stderr (a traceback's error) when it fails.
void draw(const Plotter& plotter, const std::string& command, const std::string& dir,
          const std::string& png, const std::vector<std::string>& extra = {});

}  // namespace kprior::app
