"""Plots of the numbers: metrics per cell with seed error bars, training and validation
curves with the AE, the VAE and any other model overlaid, and the rate-distortion picture of
a beta grid. Models, archs and datasets are named by their titles (aevae.report.titles)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.lines
import matplotlib.patches
import pandas as pd

from aevae.plotting import plt, sns
from aevae.report.display import METRICS
from aevae.report.titles import AE, Titles
from aevae.tracking import names

BAR_METRICS = (names.TEST_RECON_MSE, names.TEST_RECON_BCE, names.TEST_PIXEL_ACC, names.TEST_KL,
               names.TEST_ACTIVE_UNITS, names.TEST_PROBE_ACC, names.TEST_FRECHET, names.TEST_CONFIDENT_SHARE,
               names.TEST_NLL, names.TEST_BPD)
CURVE_PANELS = {names.TRAIN_LOSS: ("loss", "train"), names.VAL_LOSS: ("loss", "val"),
                names.TRAIN_KL: ("KL (nats)", "train"), names.VAL_KL: ("KL (nats)", "val"),
                names.VAL_RECON_MSE: ("recon MSE", "val")}
DPI = 110


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", str(text)).strip("-")


def save(figure, path: Path) -> Path:
    # zlib level 1: PNG encoding was a fifth of the report's time; files grow about 10%.
    figure.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1})
    plt.close(figure)
    return path


def metric_bars(finished: pd.DataFrame, extra_axes: list[str], titles: Titles, folder: Path) -> list[Path]:
    """Per dataset: one panel per metric, a bar per arch (× extra axes) and model, the error
    bar the standard deviation over seeds. Panels are plain subplots: seaborn's FacetGrid
    lays the figure out three times over, which cost seconds on a 36-cell grid."""
    columns = [c for c in METRICS if c.key in BAR_METRICS and c.key in finished
               and pd.to_numeric(finished[c.key], errors="coerce").notna().any()]
    if not columns or finished.empty:
        return []
    frame = finished.assign(group=[titles.group(row, extra_axes, "\n").split("\n", 1)[1]
                                   for _, row in finished.iterrows()],
                            model=finished["model"].map(titles.model))
    models = list(dict.fromkeys(frame["model"]))
    paths = []
    for dataset, rows in frame.groupby("dataset", sort=False):
        shown = [c for c in columns if pd.to_numeric(rows[c.key], errors="coerce").notna().any()]
        width = min(3, len(shown))
        height = -(-len(shown) // width)
        groups = list(dict.fromkeys(rows["group"]))
        with sns.axes_style("whitegrid"):
            figure, axes = plt.subplots(height, width, squeeze=False,
                                        figsize=(max(3.6, 0.55 * len(groups) + 1.6) * width, 2.9 * height + 0.5))
        for ax, column in zip(axes.flat, shown):
            data = rows.assign(value=pd.to_numeric(rows[column.key], errors="coerce") * column.scale)
            sns.barplot(data, x="group", y="value", hue="model", order=groups, hue_order=models,
                        errorbar="sd", capsize=0.15, palette="colorblind", legend=False, ax=ax)
            ax.set(title=column.header, xlabel="", ylabel="")
            ax.tick_params(axis="x", labelsize=8)
        for ax in list(axes.flat)[len(shown):]:
            ax.set_visible(False)
        colours = sns.color_palette("colorblind", len(models))
        handles = [matplotlib.patches.Patch(color=colour, label=model) for model, colour in zip(models, colours)]
        figure.legend(handles=handles, loc="upper right", ncol=len(models), fontsize=9)
        figure.suptitle(f"{titles.dataset(dataset)}: test metrics, mean and sd over seeds", x=0.01, ha="left")
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.45 / figure.get_figheight()))
        paths.append(save(figure, folder / f"metrics-{slug(dataset)}.png"))
    return paths


def curves(history: pd.DataFrame, runs: pd.DataFrame, extra_axes: list[str], titles: Titles,
           folder: Path) -> list[Path]:
    """Per dataset: a row per arch, panels loss / KL / val recon MSE per epoch; a colour per
    cell (AE, VAE, and each value of an extra axis such as beta), train solid and val
    dashed; bands are one sd over seeds.

    Means and sds come from one pandas groupby and are drawn with plain matplotlib: seaborn's
    per-facet estimation and layout took seconds per figure on a grid of 36 cells."""
    if history.empty:
        return []
    meta = runs[["run_id", "dataset", "arch", "model", *extra_axes]].copy()
    meta["line"] = [" ".join([titles.model(row["model"]), *(f"{a}={row[a]}" for a in extra_axes if pd.notna(row[a]))])
                    for _, row in meta.iterrows()]
    long = history.merge(meta, on="run_id")
    long["panel"] = long["key"].map(lambda k: CURVE_PANELS[k][0])
    long["split"] = long["key"].map(lambda k: CURVE_PANELS[k][1])
    stats = long.groupby(["dataset", "arch", "panel", "line", "split", "epoch"], sort=False)["value"].agg(["mean", "std"])
    lines = list(dict.fromkeys(meta["line"]))
    colours = dict(zip(lines, sns.color_palette("colorblind", len(lines))))
    panels = [p for p in dict.fromkeys(v[0] for v in CURVE_PANELS.values()) if p in set(long["panel"])]
    paths = []
    for dataset, by_dataset in stats.groupby(level="dataset", sort=False):
        present = set(by_dataset.index.get_level_values("arch"))
        archs = [a for a in dict.fromkeys(meta["arch"]) if a in present]
        with sns.axes_style("whitegrid"):
            figure, axes = plt.subplots(len(archs), len(panels), squeeze=False, sharex=True,
                                        figsize=(3.6 * len(panels), 2.6 * len(archs) + 0.7))
        for (_, arch, panel, line, split), values in by_dataset.groupby(level=[0, 1, 2, 3, 4], sort=False):
            ax = axes[archs.index(arch)][panels.index(panel)]
            epochs, mean, std = values.index.get_level_values("epoch"), values["mean"], values["std"].fillna(0.0)
            ax.plot(epochs, mean, color=colours[line], linestyle="-" if split == "train" else "--",
                    marker=".", label=line)
            ax.fill_between(epochs, mean - std, mean + std, color=colours[line], alpha=0.2, linewidth=0)
        for i, arch in enumerate(archs):
            axes[i][0].set_ylabel(titles.arch(arch))
        for j, panel in enumerate(panels):
            axes[0][j].set_title(panel)
            axes[-1][j].set_xlabel("epoch")
        drawn = set(by_dataset.index.get_level_values("line"))
        handles = {line: matplotlib.lines.Line2D([], [], color=colours[line]) for line in lines if line in drawn}
        handles.update({"train": matplotlib.lines.Line2D([], [], color="0.3"),
                        "val": matplotlib.lines.Line2D([], [], color="0.3", linestyle="--")})
        figure.legend(handles.values(), handles.keys(), loc="upper right", fontsize=8,
                      ncol=min(len(handles), 6))
        figure.suptitle(f"{titles.dataset(dataset)}: training and validation curves", x=0.01, ha="left")
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))
        paths.append(save(figure, folder / f"curves-{slug(dataset)}.png"))
    return paths


def rate_distortion(finished: pd.DataFrame, titles: Titles, folder: Path) -> Path | None:
    """Beta grids: test KL (rate) against test recon BCE (distortion), a point per beta with
    seed error bars both ways, a line per arch, one panel per dataset (their scales differ
    by orders of magnitude); the AE's distortion is the dashed line."""
    if "beta" not in finished or names.TEST_KL not in finished or names.TEST_RECON_BCE not in finished:
        return None
    data = finished.assign(kl=pd.to_numeric(finished[names.TEST_KL], errors="coerce"),
                           bce=pd.to_numeric(finished[names.TEST_RECON_BCE], errors="coerce"),
                           beta_value=pd.to_numeric(finished["beta"], errors="coerce"))
    vae = data[data["model"] == "vae"].dropna(subset=["kl", "bce", "beta_value"])
    if vae["beta_value"].nunique() < 2:
        return None
    datasets = list(dict.fromkeys(vae["dataset"]))
    palette = dict(zip(sorted(vae["arch"].unique()), sns.color_palette("colorblind")))
    with sns.axes_style("whitegrid"):
        figure, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for arch, rows in vae[vae["dataset"] == dataset].groupby("arch"):
            points = rows.groupby("beta_value")[["kl", "bce"]].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(points[("kl", "mean")], points[("bce", "mean")], xerr=points[("kl", "std")],
                        yerr=points[("bce", "std")], marker="o", capsize=3, color=palette[arch],
                        label=f"{titles.model('vae')} {titles.arch(arch)}")
            for beta, point in points.iterrows():
                ax.annotate(f"β={beta:g}", (point[("kl", "mean")], point[("bce", "mean")]),
                            textcoords="offset points", xytext=(4, 4), fontsize=7)
            ae = data[(data["model"] == AE) & (data["dataset"] == dataset) & (data["arch"] == arch)]["bce"].dropna()
            if len(ae):
                ax.axhline(ae.mean(), linestyle="--", color=palette[arch], linewidth=1,
                           label=f"{titles.model(AE)} {titles.arch(arch)} (no KL)")
        ax.set(title=titles.dataset(dataset), xlabel="rate: test KL (nats/image)",
               ylabel="distortion: test recon BCE (nats/image)")
        ax.legend(fontsize=7)
    figure.tight_layout()
    return save(figure, folder / "rate-distortion.png")
