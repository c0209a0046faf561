"""`aevae compare`: did a change help? Two versions of a grid, cell by cell, each headline
metric's change tested against the noise between seeds; or, with `--models`, is my model
better? Two models of one version, the cells of one beside the other's.

- `defaults`: the metrics, significance level and asked effect by default (light: the
  parser reads them).
- `sides`: which two versions (`lab@<label or commit>`, or two experiments), or which two
  models of one version, and what differs in their configs.
- `stats`: Welch's t-test per cell and metric, and the verdict: better, worse, within noise.
- `power`: what the seeds could detect beside each verdict, and the seeds a change would need.
- `comparison`: the two sides read and every change judged.
- `markdown`: the table and notes, printed and written to COMPARE.md.
- `figure`: the changes per cell, with their confidence intervals.
- `run`: the command's flow: compare, write the files.

Like the report, it reads MLflow only (through aevae.tracking's reader, and the report's
grid reading, so a version's slots are chosen as its report chooses them) and imports no
training code and no torch.
"""
