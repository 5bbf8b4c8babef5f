r"""Published numbers to compare with, each with its citation: the one copy (chapters 6, 7, 8, appendix).

Protocols matter more than the numbers, so here they are once:

* **2D mixtures** (VEEGAN, Srivastava et al., 2017; PacGAN, Lin et al., 2018): a ring of 8 Gaussians
  on the unit circle with :math:`\sigma = 0.01` (``data.ring()``) and a grid of 25 at
  :math:`\{-4,-2,0,2,4\}^2` with :math:`\sigma = 0.05` (``data.grid()``); 2,500 samples; a sample is
  high quality within :math:`3\sigma` of its nearest mode; a mode is captured if it is the nearest
  mode of a high-quality sample; reverse KL of the mode histogram against uniform
  (``metrics.mode_stats``). Rows: ``RING``, ``GRID``.
* **StackedMNIST** (Metz et al., 2017, as used by VEEGAN, PacGAN and MEG): three MNIST digits as the
  channels of one image, 1,000 modes, read by a classifier; 26,000 samples; KL of the mode histogram
  against uniform (``metrics.stacked_mode_stats``). Rows: ``STACKED_MNIST`` (the table of MEG, Kumar
  et al., 2019) and ``STACKED_MNIST_LATER`` (later methods as reported by R3GAN, Huang et al., 2024).
* **A perfect sampler** scores less than perfectly, because the statistics come from a finite sample:
  ``perfect_sampler`` gives its expected values (the ceilings ``PERFECT_RING``, ``PERFECT_GRID``,
  ``PERFECT_STACKED_MNIST``); chapter 6 derives them and measures them with ``metrics.sampling_spread``.

Each number is a ``Result``; ``None`` marks a statistic the paper does not report. Nets, budgets and
data differ from ours (PacGAN's 2D nets train for hundreds of thousands of steps; MEG's images are
28x28 MNIST digits), so the rows are points of reference, not a league table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Result", "RING", "GRID", "STACKED_MNIST", "STACKED_MNIST_LATER", "perfect_sampler",
           "PERFECT_RING", "PERFECT_GRID", "PERFECT_STACKED_MNIST"]


@dataclass(frozen=True)
class Result:
    """One published row: a method's mode statistics on one benchmark, and where it is printed."""

    method: str  # the method as the paper names it, e.g. "PacGAN4"
    modes: float | None  # modes captured (mean over the paper's runs)
    high_quality: float | None  # % of high-quality samples (2D mixtures only), 0-100
    reverse_kl: float | None  # KL(mode histogram || uniform)
    source: str  # the citation: authors, year, title, venue, and the table the number is in
    cited_as: str  # a short name of the source for table labels, e.g. "PacGAN paper"

    @property
    def label(self) -> str:
        """``"method (cited_as)"``, e.g. ``"GAN (PacGAN paper)"``: a row label that names the source."""
        return f"{self.method} ({self.cited_as})"


_PACGAN = ("Z. Lin, A. Khetan, G. Fanti, S. Oh, \"PacGAN: The power of two samples in generative adversarial "
           "networks\", NeurIPS 2018, Table 1 (2D-ring and 2D-grid; 2,500 samples, means over 10 runs)")
_VEEGAN = ("A. Srivastava, L. Valkov, C. Russell, M. U. Gutmann, C. Sutton, \"VEEGAN: Reducing mode collapse in "
           "GANs using implicit variational learning\", NeurIPS 2017, Table 1 (2D grid; reverse KL not reported)")
_MEG = ("R. Kumar, S. Ozair, A. Goyal, A. Courville, Y. Bengio, \"Maximum Entropy Generators for Energy-Based "
        "Models\", arXiv:1901.08508, 2019, Table 1 (StackedMNIST; 26,000 samples)")
_R3GAN = ("Y. Huang, A. Gokaslan, V. Kuleshov, J. Tompkin, \"The GAN is dead; long live the GAN! A Modern GAN "
          "Baseline\", NeurIPS 2024, Table 2 (StackedMNIST; the other rows as reported there)")

RING: tuple[Result, ...] = (
    Result("GAN", 6.3, 98.2, 0.45, _PACGAN, "PacGAN paper"),
    Result("PacGAN2", 7.9, 95.6, 0.07, _PACGAN, "PacGAN paper"),
)
"""Ring of 8 (``data.ring()``): published rows."""

GRID: tuple[Result, ...] = (
    Result("GAN", 17.3, 94.8, 0.70, _PACGAN, "PacGAN paper"),
    Result("ALI", 24.1, 95.7, 0.14, _PACGAN, "PacGAN paper"),
    Result("PacGAN4", 24.8, 93.6, 0.04, _PACGAN, "PacGAN paper"),
    Result("VEEGAN", 24.6, 40.0, None, _VEEGAN, "VEEGAN paper"),
)
"""Grid of 25 (``data.grid()``): published rows."""

STACKED_MNIST: tuple[Result, ...] = (
    Result("MEG", 1000, None, 0.031, _MEG, "Kumar et al., 2019"),
    Result("PacGAN", 1000, None, 0.06, _MEG, "Kumar et al., 2019"),
    Result("WGAN-GP", 959, None, 0.73, _MEG, "Kumar et al., 2019"),
)
"""StackedMNIST, 1,000 modes, from MEG's table: MEG itself and the baselines it reports."""

STACKED_MNIST_LATER: tuple[Result, ...] = (
    Result("R3GAN", 1000, None, 0.029, _R3GAN, "Huang et al., 2024"),
    Result("DDGAN", 1000, None, 0.071, _R3GAN, "Huang et al., 2024"),
    Result("VAEBM", 1000, None, 0.087, _R3GAN, "Huang et al., 2024"),
    Result("PresGAN", 1000, None, 0.12, _R3GAN, "Huang et al., 2024"),
)
"""StackedMNIST, later results (R3GAN: relativistic loss with R1 + R2; DDGAN and VAEBM are diffusion /
energy-based models) as reported by Huang et al. (2024)."""


def perfect_sampler(n_modes: int, n_samples: int, *, dim: int | None = 2, n_std: float = 3.0) -> Result:
    r"""The expected statistics of a sampler that draws exactly from the data (chapter 6).

    For an isotropic Gaussian mode in ``dim`` = 2 dimensions the radius follows a Rayleigh law, so a
    sample is high quality with probability :math:`p = 1 - e^{-n_\text{std}^2/2}` (98.9 % at
    :math:`3\sigma`, not the one-dimensional 99.7 %). Every mode is captured (each holds about
    :math:`N/M` samples). The reverse KL of an even histogram of :math:`N` samples is not 0 but about
    :math:`(M - 1)/(2N)` (:math:`2N\,\mathrm{KL}` is the G-statistic, close to :math:`\chi^2_{M-1}`),
    with :math:`N = pN_\text{samples}` the high-quality samples. ``dim=None`` is a classifier's
    protocol (StackedMNIST): no quality threshold, every sample counts.
    """
    for name, v in (("n_modes", n_modes), ("n_samples", n_samples)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if dim not in (None, 2):
        raise ValueError(f"dim must be 2 (a 2D mixture) or None (a classifier's modes), got {dim!r}")
    p = 1.0 if dim is None else 1.0 - math.exp(-n_std**2 / 2)
    return Result("perfect sampler", float(n_modes), None if dim is None else 100 * p,
                  (n_modes - 1) / (2 * p * n_samples),
                  f"expected values for samples of the data itself: {n_samples:,} samples, {n_modes} modes "
                  f"(chapter 6)", "expected")


PERFECT_RING = perfect_sampler(8, 2500)  # 8 modes, 98.9 % high quality, reverse KL about 0.0014
PERFECT_GRID = perfect_sampler(25, 2500)  # 25 modes, 98.9 %, about 0.0049
PERFECT_STACKED_MNIST = perfect_sampler(1000, 26000, dim=None)  # 1,000 modes, KL about 0.019


def bench_results(name: str) -> dict | None:
    """Our own numbers beside the published ones: the table a ``bench/`` script stored as
    ``bench/results/<name>.json`` in a clone of the book's repository, or None, with a line saying so,
    where there is none (an ``egan_lib`` installed from git, on Colab say). The folder is looked for next
    to the installed package (``pip install -e``) and above the working directory (a chapter runs in
    ``book/``)."""
    import json
    from pathlib import Path

    if not isinstance(name, str) or not name or "/" in name or name.endswith(".json"):
        raise ValueError(f"name must be a bench table's name without .json, e.g. 'full2d', got {name!r}")
    roots = [Path(__file__).resolve().parents[1], Path.cwd(), *Path.cwd().parents]
    folder = next((r / "bench" / "results" for r in roots if (r / "bench" / "results").is_dir()), None)
    if folder is None or not (folder / f"{name}.json").is_file():
        print(f"bench/results/{name}.json is not here (no clone of the repository, or its bench script has not "
              "run): what it holds is skipped")
        return None
    return json.loads((folder / f"{name}.json").read_text())
