#!/usr/bin/env python3
"""Figures from kprior's outputs: the drawing code of the notebooks and of the apps' --plot.

Readers take the files kprior-run, kprior-inspect and mpe-influence write (results.json,
checkpoint.h5, example_scores.h5, class_removal.csv, per_example.csv); drawers take a
matplotlib Axes. Run as a program it draws one app's key figure:

    kprior_plot.py check                      exit 0 when numpy and matplotlib import
    kprior_plot.py run DIR --out FILE.png     kprior-run: accuracy matrix + average accuracy
    kprior_plot.py influence DIR --out FILE   mpe-influence: class removal / per-example panels

Only numpy, matplotlib and (for HDF5 files) h5py: Debian's python3-numpy,
python3-matplotlib, python3-h5py.
"""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np

FASHION_NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat",
                 "sandal", "shirt", "sneaker", "bag", "boot"]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt
    return plt


# ---------------------------------------------------------------- readers


def load_results(run_dir):
    """results.json of a kprior-run output folder, as a dict."""
    with open(os.path.join(run_dir, "results.json")) as f:
        return json.load(f)


def accuracy_matrices(results, view="task_incremental"):
    """[seeds, T, T] accuracies (NaN above the diagonal): row t = after task t."""
    mats = []
    for run in results["runs"]:
        m = run[view]["accuracy_matrix"]
        mats.append([[np.nan if v is None else v for v in row] for row in m])
    return np.array(mats, dtype=float)


def matrix_from_csv(path):
    """[1, T, T] accuracies from accuracy_matrix.csv (the rows of the tasks learned so far;
    NaN elsewhere), for a run stopped before its results.json."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    t = len(rows[0]) - 1
    m = np.full((t, t), np.nan)
    for row in rows[1:]:
        i = int(row[0]) - 1
        for j, v in enumerate(row[1:]):
            if v != "":
                m[i, j] = float(v)
    return m[None]


def _stopped_matrix(run_dir):
    """accuracy_matrix.csv of a run folder, else the first seed's accuracy_matrix-seed<S>.csv
    (None if there is neither)."""
    single = os.path.join(run_dir, "accuracy_matrix.csv")
    if os.path.exists(single):
        return single
    seeds = sorted((f for f in os.listdir(run_dir) if f.startswith("accuracy_matrix-seed") and f.endswith(".csv")),
                   key=lambda f: int(f[len("accuracy_matrix-seed"):-4]) if f[len("accuracy_matrix-seed"):-4].isdigit() else 0)
    return os.path.join(run_dir, seeds[0]) if seeds else None


def average_after_each_task(matrices):
    """[seeds, T]: mean accuracy over the tasks seen so far, after each task (NaN after a task
    whose row was not measured: joint training's, a stopped run's)."""
    t = matrices.shape[1]
    out = np.full((matrices.shape[0], t), np.nan)
    for i in range(t):
        seen = matrices[:, i, : i + 1]
        measured = ~np.isnan(seen).all(axis=1)
        out[measured, i] = np.nanmean(seen[measured], axis=1)
    return out


def correlation_text(x, y):
    """"Pearson a, Spearman b", or n/a where a correlation is undefined (fewer than two
    points, or no spread)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return "Pearson n/a, Spearman n/a"
    return f"Pearson {np.corrcoef(x, y)[0, 1]:.2f}, Spearman {spearman(x, y):.2f}"


def read_csv(path):
    """A CSV file as a dict of columns (floats where every value parses, else strings)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    cols = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        try:
            cols[key] = np.array([float(v) for v in values])
        except ValueError:
            cols[key] = values
    return cols


def read_memory(checkpoint_path, task):
    """(inputs [M, ...], labels [M], scores [M]) of a task's memory in a kprior checkpoint."""
    import h5py
    with h5py.File(checkpoint_path, "r") as f:
        g = f[f"memory/task_{task}"]
        return g["inputs"][()], g["labels"][()], g["scores"][()]


def read_example_scores(path, task):
    """The per-example scores kprior-run --example-scores wrote for a task, as a dict of arrays
    (labels, lambda_trace, and when present logit_variance, mpe, memory_indices, and for the
    JPEG trees files: each scored image's path)."""
    import h5py
    with h5py.File(path, "r") as f:
        g = f[f"task_{task}"]
        out = {k: g[k][()] for k in g if k != "files"}
        if "files" in g:
            out["files"] = bytes(g["files"][()]).decode().split("\n")
        return out


# ---------------------------------------------------------------- drawers


def draw_accuracy_matrix(ax, matrix, title=""):
    """Heat map of one accuracy matrix (row: after task t; column: task evaluated), in %."""
    t = matrix.shape[0]
    shown = np.ma.masked_invalid(100 * matrix)
    vmin, vmax = max(0.0, float(np.nanmin(100 * matrix)) - 5), 100.0
    im = ax.imshow(shown, cmap="viridis", vmin=vmin, vmax=vmax)
    for i in range(t):
        for j in range(i + 1):
            v = 100 * matrix[i, j]
            if np.isnan(v):
                continue  # not measured (joint training has the last row only)
            dark = (v - vmin) / (vmax - vmin) < 0.6  # viridis is dark at its low end
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(t), [str(j + 1) for j in range(t)])
    ax.set_yticks(range(t), [str(i + 1) for i in range(t)])
    ax.set_xlabel("task evaluated")
    ax.set_ylabel("after learning task")
    if title:
        ax.set_title(title)
    return im


def draw_average_accuracy(ax, curves, title="average accuracy over the tasks seen"):
    """Average accuracy after each task for several runs: curves = {label: [seeds, T] array}.
    Mean over seeds with a ±1 std band."""
    for label, acc in curves.items():
        acc = 100 * np.asarray(acc, dtype=float)
        measured = ~np.isnan(acc).any(axis=0)  # tasks after which every seed was evaluated
        x = np.arange(1, acc.shape[1] + 1)[measured]
        acc = acc[:, measured]
        mean, std = acc.mean(axis=0), acc.std(axis=0)
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=label)
        if acc.shape[0] > 1:
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(np.arange(1, max(np.asarray(a).shape[1] for a in curves.values()) + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)


def draw_image_grid(ax, images, captions=None, columns=10, title=""):
    """Images [M, H, W] or [M, C, H, W] (values in [0, 1] or standardised) tiled in a grid,
    each with an optional caption under it."""
    images = np.asarray(images, dtype=float)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1) if images.shape[1] in (1, 3) else images
        if images.shape[-1] == 1:
            images = images[..., 0]
    lo, hi = images.min(), images.max()
    images = (images - lo) / (hi - lo if hi > lo else 1.0)
    m = len(images)
    rows = max(1, math.ceil(m / columns))
    h, w = images.shape[1], images.shape[2]
    pad = 2 + (h // 3 if captions is not None else 0)
    canvas_shape = (rows * (h + pad), columns * (w + 2)) + images.shape[3:]
    # Background white: 0 under gray_r (ink is 1), 1 for colour images.
    canvas = np.zeros(canvas_shape) if images.ndim == 3 else np.ones(canvas_shape)
    for k in range(m):
        r, c = divmod(k, columns)
        canvas[r * (h + pad): r * (h + pad) + h, c * (w + 2): c * (w + 2) + w] = images[k]
    ax.imshow(canvas, cmap="gray_r" if canvas.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    if captions is not None:
        for k, text in enumerate(captions[:m]):
            r, c = divmod(k, columns)
            ax.text(c * (w + 2) + w / 2, r * (h + pad) + h + pad / 2, text, ha="center",
                    va="center", fontsize=6)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)


def draw_variance_histogram(ax, scores, key="logit_variance", bins=40, title=""):
    """Histogram (density, log-spaced bins) of a per-example score for the remembered examples
    against all the others of the task."""
    values = np.asarray(scores[key], dtype=float)
    remembered = np.zeros(len(values), dtype=bool)
    remembered[np.asarray(scores["memory_indices"], dtype=int)] = True
    positive = values[values > 0]
    edges = np.logspace(np.log10(positive.min()), np.log10(positive.max()), bins + 1)
    ax.hist(values[~remembered], bins=edges, density=True, alpha=0.6,
            label=f"not remembered ({(~remembered).sum()})")
    ax.hist(values[remembered], bins=edges, density=True, alpha=0.7,
            label=f"remembered ({remembered.sum()})")
    ax.set_xscale("log")
    ax.set_xlabel(key.replace("_", " "))
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)


def spearman(a, b):
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(x):
        x = np.asarray(x, dtype=float)
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):  # ties share their mean rank
            tied = x == v
            r[tied] = r[tied].mean()
        return r
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def draw_class_removal(ax, cols, protocol="published"):
    """The published class-removal scatter (Nickl et al. 2023; axes as its plotting code has them):
    the test NLL after retraining without the class (x) against the estimated NLL of the
    removed class's training examples (y), one point per class, marker area growing with the
    test-accuracy drop."""
    x = cols[f"{protocol}_test_nll"]
    y = cols["estimated_nll"]
    drop = 100 * cols[f"{protocol}_accuracy_drop"]
    size = 20 + 60 * np.clip(drop - drop.min(), 0, None) / max(np.ptp(drop), 1e-9)
    ax.scatter(x, y, s=size, alpha=0.7, edgecolors="k", linewidths=0.5)
    names = cols.get("name", [str(int(c)) for c in cols["class"]])
    for xi, yi, name in zip(x, y, names):
        ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(f"test NLL after retraining without the class ({protocol})")
    ax.set_ylabel("estimated NLL of the removed class (no retraining)")
    ax.set_title(f"class removal: {correlation_text(x, y)}\n"
                 f"(marker size: accuracy drop, {drop.min():.3g} to {drop.max():.3g} points)",
                 fontsize=9)
    ax.ticklabel_format(useOffset=False)  # tiny ranges: plain ticks, no "1e-5+1.312"
    ax.grid(alpha=0.3)


def draw_per_example(ax, cols):
    """Estimated against true (retrained) change of the true-class probability when one
    training example is removed; one point per removed example."""
    est = cols["estimated_change_true_class"]
    true = cols["true_change_true_class"]
    ax.scatter(est, true, s=12, alpha=0.7)
    # Warm-started retraining moves less than the estimate (it does not reach the new
    # optimum), so the scale is shown as a fitted slope rather than against y = x.
    slope = float(est @ true / (est @ est)) if est @ est > 0 else 0.0
    xs = np.array([est.min(), est.max()])
    ax.plot(xs, slope * xs, "k--", lw=0.8, label=f"fit y = {slope:.3g} x")
    agree = np.mean(np.sign(est) == np.sign(true))
    ax.set_xlabel("estimated change of p(true class)")
    ax.set_ylabel("change after retraining")
    ax.set_title(f"{len(est)} single removals: {correlation_text(est, true)}, "
                 f"same sign {100 * agree:.0f}%", fontsize=9)
    ax.ticklabel_format(useOffset=False)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------- the apps' figures


def run_figure(run_dir, out_png):
    """kprior-run --plot: the first seed's accuracy matrix and the average accuracy after each
    task (mean ± std over the seeds)."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    if os.path.exists(os.path.join(run_dir, "results.json")):
        results = load_results(run_dir)
        cfg = results["config"]
        mats = accuracy_matrices(results)
        label = f"{cfg['method']} ({cfg['optimizer']})"
        seed = results["runs"][0]["seed"]
        title = (f"{cfg['tasks']}: {label}, final average "
                 f"{100 * results['average_accuracy_mean']:.2f}% over {len(mats)} seed(s)")
    elif _stopped_matrix(run_dir):
        # A stopped run: its rows so far (results.json is written when the run ends); with
        # several seeds, the first seed's.
        mats = matrix_from_csv(_stopped_matrix(run_dir))
        label, seed = "so far", "of the run"
        learned = int((~np.isnan(mats[0]).all(axis=1)).sum())
        title = f"{run_dir}: stopped after task {learned} of {mats.shape[1]}"
    else:
        raise PlotError(f"{run_dir} has neither results.json nor accuracy_matrix.csv (not a kprior-run "
                        "output folder)")
    draw_accuracy_matrix(a, mats[0], f"accuracy (%), seed {seed}")
    draw_average_accuracy(b, {label: average_after_each_task(mats)})
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def influence_figure(out_dir, out_png, panels=("classes", "examples")):
    """mpe-influence --plot: the class-removal scatter (with --retrain), else the estimated
    NLL per removed class, and the per-example scatter (with --per-example); `panels` names
    the ones to draw when their file exists."""
    plt = _pyplot()
    files = {"classes": "class_removal.csv", "examples": "per_example.csv"}
    present = [k for k in panels if os.path.exists(os.path.join(out_dir, files[k]))]
    if not present:
        raise PlotError(f"{out_dir} has no " + " or ".join(files[k] for k in panels) +
                        " (--panels " + ",".join(panels) + ")")
    panels = [(k, read_csv(os.path.join(out_dir, files[k]))) for k in present]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
    for ax, (kind, cols) in zip(axes[0], panels):
        if kind == "examples":
            draw_per_example(ax, cols)
        elif "published_test_nll" in cols or "converge_test_nll" in cols:
            draw_class_removal(ax, cols, "published" if "published_test_nll" in cols else "converge")
        else:
            x = np.arange(len(cols["class"]))
            ax.bar(x - 0.2, cols["train_nll"], 0.4, label="training NLL")
            ax.bar(x + 0.2, cols["estimated_nll"], 0.4, label="estimated NLL if removed")
            ax.set_xticks(x, cols.get("name", [str(int(c)) for c in cols["class"]]), rotation=45)
            ax.set_ylabel("NLL of the class's training examples")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


class PlotError(Exception):
    """What the user must change (a folder without the files, an option): one line, exit 1."""


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="exit 0 when numpy and matplotlib import")
    for name in ("run", "influence"):
        s = sub.add_parser(name)
        s.add_argument("dir")
        s.add_argument("--out", required=True)
        if name == "influence":
            s.add_argument("--panels", default="classes,examples",
                           help="comma-separated: classes, examples")
    a = p.parse_args(argv)
    if a.command == "check":
        _pyplot()
        return 0
    folder = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(folder):
        p.error(f"--out {a.out}: the folder {folder} does not exist")
    if not os.path.isdir(a.dir):
        p.error(f"{a.dir} is not a folder")
    try:
        if a.command == "run":
            run_figure(a.dir, a.out)
        else:
            panels = [k for k in a.panels.split(",") if k]
            unknown = [k for k in panels if k not in ("classes", "examples")]
            if unknown or not panels:
                p.error(f"--panels {a.panels}: expected classes, examples or both")
            influence_figure(a.dir, a.out, panels)
    except (PlotError, OSError, KeyError, ValueError) as e:
        # A malformed or foreign file: one line naming it, no traceback.
        what = str(e) if isinstance(e, (PlotError, OSError)) else f"{type(e).__name__}: {e}"
        print(f"kprior_plot: error: {what}", file=sys.stderr)
        return 1
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
