"""What the KL term does: each VAE cell beside the AE cell of the same dataset and arch, and
a one-line reading of the difference generated from the numbers."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from aevae.report.display import MISSING, dataset_title, arch_title, group_label, number, ordered_cells
from aevae.report.runs import GridRuns

# Shown as "AE -> VAE" when some run logged them: sample quality and latent structure.
SIDE_BY_SIDE = (
    ("pixel acc (%)", "test/pixel_acc", 100.0),
    ("active units", "test/active_units", 1.0),
    ("probe acc", "test/probe_acc", 1.0),
    ("Fréchet", "test/frechet", 1.0),
    ("confident share", "test/confident_share", 1.0),
    ("NLL (nats)", "test/nll", 1.0),
)


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
    """(AE cell, VAE cell) of the same dataset and arch, and the same extra axes where the AE
    cell has them (an AE cell without beta pairs with every beta of the VAE); in cell order.
    A cell with no counterpart in the grid (a VAE-only beta grid) has nothing to compare."""
    first = grid.slots.drop_duplicates("cell").set_index("cell", drop=False)
    order = ordered_cells(grid.slots, grid.extra_axes)
    aes = [first.loc[c] for c in order if first.loc[c, "model"] == "ae"]
    result = []
    for vae in (first.loc[c] for c in order if first.loc[c, "model"] == "vae"):
        candidates = [ae for ae in aes if ae["dataset"] == vae["dataset"] and ae["arch"] == vae["arch"]
                      and all(pd.isna(ae.get(a)) or ae.get(a) == vae.get(a) for a in grid.extra_axes)]
        if candidates:
            result.append((max(candidates, key=lambda ae: sum(pd.notna(ae.get(a)) for a in grid.extra_axes)), vae))
    return result


def reading(label: str, ae: pd.DataFrame, vae: pd.DataFrame, latent_dim: str | None) -> str:
    """One plain sentence: reconstruction cost, KL paid, latent use and sample quality."""
    if ae.empty or vae.empty:
        lacking = " or ".join(name for name, runs in (("AE", ae), ("VAE", vae)) if runs.empty)
        return f"No finished {lacking} run on {label} to compare yet."
    mse_ae, mse_vae = stat(ae, "test/recon_mse"), stat(vae, "test/recon_mse")
    if mse_ae is None or mse_vae is None:
        parts = [f"On {label} the recon MSE is missing, so the reconstruction cost is unknown"]
    elif within_noise(mse_ae, mse_vae):
        parts = [f"VAE and AE reconstruct equally well in MSE on {label} (within seed noise)"]
    elif mse_ae.mean > 0 and mse_vae.mean >= mse_ae.mean:
        parts = [f"VAE reconstructs {mse_vae.mean / mse_ae.mean:.1f}x worse in MSE on {label}"]
    elif mse_vae.mean > 0:
        parts = [f"VAE reconstructs {mse_ae.mean / mse_vae.mean:.1f}x better in MSE on {label}"]
    else:
        parts = [f"VAE reconstructs with MSE {number(mse_vae.mean)} against the AE's {number(mse_ae.mean)} on {label}"]
    kl = stat(vae, "test/kl")
    if kl is not None:
        parts.append(f"pays {number(kl.mean)} nats of KL per image")
    units_ae, units_vae = stat(ae, "test/active_units"), stat(vae, "test/active_units")
    if units_ae and units_vae:
        of = f" of {latent_dim}" if latent_dim else ""
        parts.append(f"keeps {number(units_vae.mean)}{of} latent units active (AE: {number(units_ae.mean)})")
    for key, what, better in (("test/frechet", "Fréchet distance of its samples", "lower"),
                              ("test/probe_acc", "linear-probe accuracy", "higher")):
        a, v = stat(ae, key), stat(vae, key)
        if a and v and a.mean != v.mean:
            gained = (v.mean < a.mean) == (better == "lower")
            parts.append(f"{'gains' if gained else 'loses'} on {what} ({number(v.mean)} vs {number(a.mean)})")
    head, tail = parts[0], parts[1:]
    if not tail:
        return head + "."
    return head + ", " + ", ".join(tail[:-1]) + (", and " if len(tail) > 1 else " and ") + tail[-1] + "."


def side(stat_ae: Stat | None, stat_vae: Stat | None) -> str:
    shown = [number(s.mean) if s else MISSING for s in (stat_ae, stat_vae)]
    return MISSING if stat_ae is None and stat_vae is None else f"{shown[0]} → {shown[1]}"


def comparison(grid: GridRuns) -> pd.DataFrame:
    """The AE-vs-VAE table: one row per dataset × arch (× extra axes), means over seeds."""
    finished = grid.finished
    rows = []
    for ae_cell, anchor in pairs(grid):
        ae = finished[finished["cell"] == ae_cell["cell"]]
        vae = finished[finished["cell"] == anchor["cell"]]
        row = {"dataset": dataset_title(anchor["dataset"]), "arch": arch_title(anchor["arch"])}
        row.update({a: str(anchor.get(a)) if pd.notna(anchor.get(a)) else "" for a in grid.extra_axes})
        mse_ae, mse_vae = stat(ae, "test/recon_mse"), stat(vae, "test/recon_mse")
        row["recon MSE AE → VAE"] = side(mse_ae, mse_vae)
        ratio = mse_vae.mean / mse_ae.mean if mse_ae and mse_vae and mse_ae.mean > 0 else None
        row["MSE ratio VAE/AE"] = f"{ratio:.2f}x" if ratio is not None else MISSING
        kl = stat(vae, "test/kl")
        row["KL paid (nats)"] = number(kl.mean) if kl else MISSING
        for header, key, scale in SIDE_BY_SIDE:
            if key in finished and pd.to_numeric(finished[key], errors="coerce").notna().any():
                row[f"{header} AE → VAE"] = side(stat(ae, key, scale), stat(vae, key, scale))
        latent = vae["params.latent_dim"].dropna().unique() if "params.latent_dim" in vae else []
        label = group_label(anchor, grid.extra_axes)
        row["reading"] = reading(label, ae, vae, str(latent[0]) if len(latent) == 1 else None)
        rows.append(row)
    return pd.DataFrame(rows)
