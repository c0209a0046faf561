"""What the KL term (or any other model's difference from the AE) does: each cell of a model
other than the AE beside the AE cell of the same dataset and arch, read out as a few short
sentences generated from the numbers, which name the model by its title ("The IWAE's recon
MSE is ...")."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from aevae.report.applicable import reasons
from aevae.report.display import number, ordered_cells
from aevae.report.runs import GridRuns
from aevae.report.titles import AE, DISCRETE, GAUSSIAN, POINT
from aevae.tracking import names

@dataclass(frozen=True)
class Stat:
    mean: float
    std: float
    n: int


def stat(runs: pd.DataFrame, key: str, scale: float = 1.0) -> Stat | None:
    if key not in runs:
        return None
    values = pd.to_numeric(runs[key], errors="coerce").dropna() * scale
    if values.empty:
        return None
    return Stat(float(values.mean()), float(values.std()) if len(values) > 1 else 0.0, len(values))


def within_noise(a: Stat, b: Stat) -> bool:
    """Whether two means differ by less than their seed spreads added (needs 2+ seeds each)."""
    return a.n > 1 and b.n > 1 and abs(a.mean - b.mean) <= a.std + b.std


def pairs(grid: GridRuns) -> list[tuple[pd.Series, pd.Series]]:
    """(AE cell, other cell) for each cell of a model other than the AE and the AE cell of
    the same dataset and arch, and the same extra axes where the AE cell has them (an AE cell
    without beta pairs with every beta of the VAE); in cell order. A cell with no AE
    counterpart in the grid (a VAE-only beta grid) has nothing to compare."""
    first = grid.slots.drop_duplicates("cell").set_index("cell", drop=False)
    order = ordered_cells(grid.slots, grid.extra_axes)
    aes = [first.loc[c] for c in order if first.loc[c, "model"] == AE]
    result = []
    for other in (first.loc[c] for c in order if first.loc[c, "model"] != AE):
        candidates = [ae for ae in aes if ae["dataset"] == other["dataset"] and ae["arch"] == other["arch"]
                      and all(pd.isna(ae.get(a)) or ae.get(a) == other.get(a) for a in grid.extra_axes)]
        if candidates:
            result.append((max(candidates, key=lambda ae: sum(pd.notna(ae.get(a)) for a in grid.extra_axes)), other))
    return result


SAME = 0.01  # means closer than this share of the AE's read "about the same"
RATIO_FROM = 1.5  # a larger value reads as a multiple ("2.0x the AE's"), a smaller one as a percentage


def relative(ours: float, theirs: float) -> str:
    """How `ours` reads beside `theirs` in a sentence that ends in "the AE's": "2.0x",
    "12% higher than", "2.0% lower than", "about the same as". A ratio near 1 is never
    written as one ("1.0x lower" says nothing a reader can use)."""
    if theirs == 0:
        return "the same as" if ours == 0 else "above"
    change = (ours - theirs) / abs(theirs)
    if abs(change) < SAME:
        return "about the same as"
    if ours / theirs >= RATIO_FROM:
        return f"{ours / theirs:.1f}x"
    share = abs(change) * 100
    amount = f"{share:.0f}%" if share >= 10 else f"{share:.1f}%"
    return f"{amount} {'higher' if change > 0 else 'lower'} than"


def mse_sentence(ae: pd.DataFrame, other: pd.DataFrame, title: str = "VAE", code: str = GAUSSIAN) -> str:
    """How the model `title` (the VAE unless named) reconstructs beside the AE."""
    mse_ae, mse_other = stat(ae, names.TEST_RECON_MSE), stat(other, names.TEST_RECON_MSE)
    if mse_ae is None or mse_other is None:
        cost = "the cost of the KL term" if code == GAUSSIAN else f"what the {title} costs"
        return f"The recon MSE is missing, so {cost} in reconstruction is unknown."
    both = f"({number(mse_other.mean)} vs {number(mse_ae.mean)})"
    if within_noise(mse_ae, mse_other):
        return f"The {title} reconstructs as well as the AE in MSE, within seed noise {both}."
    return f"The {title}'s recon MSE is {relative(mse_other.mean, mse_ae.mean)} the AE's {both}."


@dataclass(frozen=True)
class Counterpart:
    """The model read against the AE: its title and its code (aevae.report.titles)."""

    title: str = "VAE"
    code: str = GAUSSIAN

    @property
    def pays_kl(self) -> bool:
        """Whether its KL is a price it pays: not for a point code (no KL term, its KL logged
        as 0) nor a discrete one (none logged); a model of unknown code where it logs one."""
        return self.code not in (POINT, DISCRETE)


def reading(ae: pd.DataFrame, other: pd.DataFrame, latent_dim: str | None,
            model: Counterpart = Counterpart()) -> list[str]:
    """Short sentences on what the model changed beside the AE: reconstruction, KL paid,
    latent use, sample quality and the linear probe, each where the runs logged it."""
    if ae.empty or other.empty:
        lacking = " or ".join(name for name, runs in (("AE", ae), (model.title, other)) if runs.empty)
        return [f"No finished {lacking} run to compare yet."]
    sentences = [mse_sentence(ae, other, model.title, model.code)]
    kl = stat(other, names.TEST_KL)
    if kl is not None and model.pays_kl and names.TEST_KL not in reasons(other):
        sentences.append(f"It pays {number(kl.mean)} nats of KL per image.")
    units_ae, units_other = stat(ae, names.TEST_ACTIVE_UNITS), stat(other, names.TEST_ACTIVE_UNITS)
    if units_ae and units_other:
        of = f" of {latent_dim}" if latent_dim else ""
        sentences.append(f"It keeps {number(units_other.mean)}{of} latent units active (AE: {number(units_ae.mean)}).")
    sentences += beside_ae(ae, other)
    return sentences


def beside_ae(ae: pd.DataFrame, other: pd.DataFrame) -> list[str]:
    """The sample quality and the linear probe, each better or worse than the AE's."""
    sentences = []
    for key, what, better in ((names.TEST_FRECHET, "The Fréchet distance of its samples", "lower"),
                              (names.TEST_PROBE_ACC, "Its linear-probe accuracy", "higher")):
        a, v = stat(ae, key), stat(other, key)
        if not (a and v):
            continue
        both = f"({number(v.mean)} vs {number(a.mean)})"
        if within_noise(a, v) or relative(v.mean, a.mean) == "about the same as":
            sentences.append(f"{what} is about the same as the AE's {both}.")
            continue
        gained = (v.mean < a.mean) == (better == "lower")
        direction = "lower" if v.mean < a.mean else "higher"
        sentences.append(f"{what} is {direction} {both}: {'better' if gained else 'worse'} than the AE's.")
    return sentences


def compared(grid: GridRuns) -> list[str]:
    """The titles of the models read against the AE, in cell order."""
    return list(dict.fromkeys(grid.titles.model(other["model"]) for _, other in pairs(grid)))


def readings(grid: GridRuns) -> list[str]:
    """One line per pair (dataset × arch × extra axes, and the model beside the AE): its
    label, then the sentences."""
    finished = grid.finished
    lines = []
    for ae_cell, anchor in pairs(grid):
        ae = finished[finished["cell"] == ae_cell["cell"]]
        other = finished[finished["cell"] == anchor["cell"]]
        latent = other["params.latent_dim"].dropna().unique() if "params.latent_dim" in other else []
        model = Counterpart(grid.titles.model(anchor["model"]), grid.titles.code(anchor["model"]))
        sentences = reading(ae, other, str(latent[0]) if len(latent) == 1 else None, model)
        lines.append(f"**{grid.titles.group(anchor, grid.extra_axes)}**: {' '.join(sentences)}")
    return lines
