"""What `aevae compare` judges by default, without importing scipy, pandas or MLflow: the
command-line parser reads these, and it is built for every command, `--help` included."""

from aevae.tracking import names

# The headline metrics: reconstruction, likelihood bound, NLL and pixel accuracy each have a
# better direction (aevae.report.display.METRICS says which); KL has none (more KL is
# neither better nor worse by itself), so its changes are reported, never called better or
# worse.
HEADLINE = (names.TEST_RECON_MSE, names.TEST_ELBO, names.TEST_NLL, names.TEST_PIXEL_ACC, names.TEST_KL)
ALPHA = 0.05  # significance level of each test
# The change whose seeds per side the table says it would take to find (`--effect`), as a
# share of A's mean: 1%, a change a code change is often expected to make.
EFFECT = 0.01
