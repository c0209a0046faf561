"""The flow of `aevae compare`: read and judge the two sides, write COMPARE.md and its
figure, say what the CI gate needs."""

from __future__ import annotations

from pathlib import Path

from aevae.bench.defaults import RESULTS_DIR
from aevae.compare import figure, markdown
from aevae.compare.comparison import Comparison
from aevae.folders import FolderError, check_writable
from aevae.report.plots import slug

COMPARE_FILE = "COMPARE.md"


def default_folder(comparison: Comparison) -> Path:
    return Path(RESULTS_DIR) / "compare" / f"{slug(comparison.a.name)}_vs_{slug(comparison.b.name)}"


def write(comparison: Comparison, out_dir: str | Path | None = None) -> tuple[str, Path]:
    """COMPARE.md and its figure in `out_dir` (default benchmarks/results/compare/A_vs_B/);
    returns the Markdown and the file's path."""
    folder = Path(out_dir) if out_dir else default_folder(comparison)
    check_writable(folder, "the comparison's folder", "--out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / figure.FILE).unlink(missing_ok=True)  # an earlier comparison's, if this one draws none
        drawn = figure.changes(comparison.changes, comparison.a.name, comparison.b.name, comparison.rule, folder)
        text = markdown.render(comparison, drawn.name if drawn else None)
        path = folder / COMPARE_FILE
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # the disk filled, or the folder went away while writing
        raise FolderError(f"cannot write the comparison into {folder} ({exc.strerror or type(exc).__name__}); "
                          f"free space there or give another folder with --out.") from None
    return text, path
