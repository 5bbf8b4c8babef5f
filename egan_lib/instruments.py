r"""Measuring instruments for images: a trained digit classifier, the Fréchet distance, FID (chapter 8).

The mode statistics of chapters 2-7 need only the mixture's centres. For images the modes are
named by a classifier instead: ``DigitClassifier``, trained by the library on scikit-learn's digits
(``digit_classifier``) or on MNIST (``mnist_classifier``) and cached under ``cache_dir()``, reads
each channel of a stacked-digit image, and ``metrics.stacked_mode_stats`` counts the 1,000 modes of
the StackedMNIST protocol with it. ``frechet_distance`` compares real and generated images in that
classifier's feature space (``frechet``: the formula of FID), and ``inception_fid`` is the usual
FID for CIFAR-10 through torchmetrics when it and its weights are available.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from . import _validate
from .metrics import _check_images, _per_channel

__all__ = ["DigitClassifier", "train_classifier", "classifier_accuracy", "cache_dir", "digit_classifier",
           "mnist_classifier", "classifier_features", "frechet", "frechet_distance", "inception_fid"]


class DigitClassifier(nn.Module):
    """A small CNN that names the digit in a one-channel image, ``[N, 1, S, S] -> [N, 10]`` logits (chapter 8).

    Not member-batched: it is one fixed measuring instrument, trained once by
    ``digit_classifier`` and used to count the modes of stacked digits (each channel is
    classified on its own) and for the Fréchet distance in its feature space (``features``, the
    ``feature_dim`` activations before the last layer). Two 3x3 convolutions, a 2x2 max-pool, a
    third convolution, an adaptive average pool to 4x4, then ``feature_dim`` hidden units.
    """

    def __init__(self, n_classes: int = 10, *, width: int = 16, feature_dim: int = 64):
        super().__init__()
        for name, v in (("n_classes", n_classes), ("width", width), ("feature_dim", feature_dim)):
            _validate.positive(name, v, integer=True)
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(2 * width * 16, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)
        self.n_classes, self.width, self.feature_dim = n_classes, width, feature_dim

    def features(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must be one-channel images [N, 1, S, S], got {tuple(getattr(x, 'shape', ()))}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train_classifier(train_data, *, epochs: int = 40, batch: int = 64, lr: float = 4e-3, seed: int = 0,
                     shift: int = 1, device: torch.device | str = "cpu", **net_kwargs):
    """Train a ``DigitClassifier`` on ``train_data`` (an ``ImageData`` of one-channel digits). Chapter 8.

    Adam with a cosine learning-rate decay, cross-entropy, and random shifts of up to ``shift``
    pixels (padding with the background) as the only augmentation. Returns the net in eval mode.
    """
    _validate.positive("epochs", epochs, integer=True)
    _validate.positive("batch", batch, integer=True)
    torch.manual_seed(seed)
    net = DigitClassifier(train_data.n_classes, **net_kwargs).to(device)
    x, y = train_data.images.to(device), train_data.labels.to(device)
    g = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            xb = x[idx.to(device)]
            if shift > 0:  # a random translation of each batch, the background (-1) flowing in
                dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=g))
                xb = torch.nn.functional.pad(xb, (shift,) * 4, value=-1.0)
                H, W = x.shape[-2:]
                xb = xb[..., shift + dy:shift + dy + H, shift + dx:shift + dx + W]
            loss = torch.nn.functional.cross_entropy(net(xb), y[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def classifier_accuracy(classifier, test_data, *, chunk: int = 4096) -> float:
    """Fraction of ``test_data`` (an ``ImageData``) that ``classifier`` labels correctly. Chapter 8."""
    dev = next(classifier.parameters()).device
    correct = sum(int((classifier(xb.to(dev)).argmax(1).cpu() == yb).sum())
                  for xb, yb in zip(test_data.images.split(chunk), test_data.labels.split(chunk)))
    return correct / len(test_data)


_CLASSIFIER_FORMAT = 1  # bump when DigitClassifier or its training changes: old cache files are retrained


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """Where trained measuring instruments are kept: ``cache``, else ``$EGAN_CACHE``, else
    ``~/.cache/egan_lib`` (chapter 8)."""
    return Path(cache or os.environ.get("EGAN_CACHE") or Path.home() / ".cache" / "egan_lib").expanduser()


def _cached_classifier(name: str, make_data, cache, retrain: bool, verbose: bool, train_kwargs: dict):
    path = cache_dir(cache) / f"{name}.pt"
    if path.exists() and not retrain:
        try:
            try:
                blob = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:
                raise ValueError(f"not a readable checkpoint ({type(err).__name__})") from None
            if not isinstance(blob, dict) or blob.get("format") != _CLASSIFIER_FORMAT:
                found = blob.get("format") if isinstance(blob, dict) else "none"
                raise ValueError(f"written by another version (format {found}, expected {_CLASSIFIER_FORMAT})")
            net = DigitClassifier(**blob["config"])
            net.load_state_dict(blob["state_dict"])
            net.eval()
            net.test_accuracy, net.n_test, net.cache_path = float(blob["test_accuracy"]), int(blob["n_test"]), path
            return net
        except Exception as err:  # unreadable, truncated or from another version: train a new one
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warnings.warn(f"the cached classifier {path} cannot be used: {reason}; training a new one",
                          RuntimeWarning, stacklevel=3)
    train_data, test_data = make_data()
    t0 = time.perf_counter()
    net = train_classifier(train_data, **train_kwargs).cpu()
    acc = classifier_accuracy(net, test_data)
    config = dict(n_classes=net.n_classes, width=net.width, feature_dim=net.feature_dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": _CLASSIFIER_FORMAT, "config": config, "state_dict": net.state_dict(),
                "test_accuracy": acc, "n_test": len(test_data)}, tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written cache file
    if verbose:
        print(f"trained {name} in {time.perf_counter() - t0:.1f} s: {100 * acc:.2f} % on {len(test_data)} "
              f"held-out images; cached in {path}")
    net.test_accuracy, net.n_test, net.cache_path = acc, len(test_data), path
    return net


def digit_classifier(cache: str | os.PathLike | None = None, *, retrain: bool = False, verbose: bool = True,
                     **train_kwargs):
    """The digit classifier for 8x8 digits, trained on ``data.digits("train")`` (chapter 8).

    Loaded from ``cache_dir(cache) / "digit_classifier.pt"`` when that file is there and readable;
    trained (a few seconds on a CPU) and saved there when it is missing, from another version of
    the library, or corrupt (with a warning saying so), or when ``retrain=True``. The returned net
    is in eval mode on the CPU and carries ``test_accuracy``, its accuracy on the held-out
    ``data.digits("test")`` split, and ``n_test``.
    """
    from . import data

    return _cached_classifier("digit_classifier", lambda: (data.digits("train"), data.digits("test")),
                              cache, retrain, verbose, train_kwargs)


def mnist_classifier(root="~/data", cache: str | os.PathLike | None = None, *, retrain: bool = False,
                     verbose: bool = True, **train_kwargs):
    """The same classifier for 28x28 MNIST (stacked MNIST under the full preset), trained on MNIST's
    training set and tested on its test set; cached as ``mnist_classifier.pt``. Raises
    ``data.DataUnavailable`` when MNIST cannot be loaded (chapter 8)."""
    from . import data

    train_kwargs.setdefault("epochs", 3)
    train_kwargs.setdefault("batch", 256)
    return _cached_classifier("mnist_classifier", lambda: (data.mnist(root, train=True), data.mnist(root, train=False)),
                              cache, retrain, verbose, train_kwargs)


def classifier_features(images: Tensor, classifier, *, chunk: int = 8192) -> Tensor:
    """The classifier's penultimate features of every channel, concatenated: ``[K, N, C * F]`` (chapter 8)."""
    _check_images("images", images)
    f = _per_channel(classifier, images.detach(), lambda net, x: net.features(x), chunk)  # [K, N, C, F]
    return f.flatten(2).double()


def _sqrtm_psd(a: Tensor) -> Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0).sqrt().unsqueeze(-2)) @ v.transpose(-1, -2)


def frechet(mu1, cov1, mu2, cov2) -> Tensor:
    r"""The Fréchet (2-Wasserstein) distance between two Gaussians, squared (chapter 8):

    .. math:: d^2 = \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2
              - 2\big(\Sigma_1^{1/2}\,\Sigma_2\,\Sigma_1^{1/2}\big)^{1/2}\Big).

    Means ``[..., F]`` and covariances ``[..., F, F]`` (a leading members dimension is allowed);
    computed in float64 with symmetric eigendecompositions, which is exact for positive
    semi-definite covariances (the trace of :math:`(\Sigma_1\Sigma_2)^{1/2}` is that of the symmetric
    form above). This is the formula of FID (Heusel et al., 2017), in whichever feature space the
    Gaussians were fitted.
    """
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape + mu1.shape[-1:]:
        raise ValueError(f"mu1, mu2 must be [..., F] and cov1, cov2 [..., F, F] with matching shapes, got "
                         f"{tuple(mu1.shape)}, {tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    s1 = _sqrtm_psd(cov1)
    cross = torch.linalg.eigvalsh(s1 @ cov2 @ s1).clamp_min(0).sqrt().sum(-1)
    tr = torch.diagonal(cov1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov2, dim1=-2, dim2=-1).sum(-1)
    return (mu1 - mu2).pow(2).sum(-1) + tr - 2 * cross


def _mean_cov(f: Tensor) -> tuple[Tensor, Tensor]:
    mu = f.mean(1)
    d = f - mu.unsqueeze(1)
    return mu, d.transpose(1, 2) @ d / (f.shape[1] - 1)


def frechet_distance(x_real: Tensor, x_fake: Tensor, classifier, *, chunk: int = 8192) -> np.ndarray:
    r"""Fréchet distance between real and generated images in the digit classifier's feature space,
    per member: ``[K, N, C, H, W]`` twice -> ``[K]`` (chapter 8).

    Gaussians are fitted to ``classifier_features`` of each set and compared with ``frechet``; the
    same idea as FID, with our small classifier in place of Inception (so the numbers are on their
    own scale and comparable only with each other). ``x_real`` may have one member, which is then
    used for every member of ``x_fake``. Like FID it is biased upwards at small N: compare runs with
    the same number of samples.
    """
    fr, ff = classifier_features(x_real, classifier, chunk=chunk), classifier_features(x_fake, classifier, chunk=chunk)
    if x_real.shape[2:] != x_fake.shape[2:] or fr.shape[0] not in (1, ff.shape[0]):
        raise ValueError(f"x_real must be [K or 1, N, C, H, W] with the images of x_fake, got {tuple(x_real.shape)} "
                         f"and {tuple(x_fake.shape)}")
    for name, f in (("x_real", fr), ("x_fake", ff)):
        if f.shape[1] < 2:
            raise ValueError(f"{name} must hold at least 2 samples per member, got {f.shape[1]}")
    mu_r, cov_r = _mean_cov(fr)
    mu_f, cov_f = _mean_cov(ff)
    K = ff.shape[0]
    return frechet(mu_r.expand(K, -1), cov_r.expand(K, -1, -1), mu_f, cov_f).numpy()


def inception_fid(x_real: Tensor, x_fake: Tensor, *, device: torch.device | str | None = None,
                  chunk: int = 500) -> np.ndarray:
    """FID with the Inception-v3 features of torchmetrics, per member (CIFAR-10, full preset; chapter 8).

    ``x_real`` ``[N, 3, H, W]`` (or ``[1, N, ...]``) and ``x_fake`` ``[K, N, 3, H, W]`` in [-1, 1]. The
    package is imported only here: without torchmetrics (``pip install torchmetrics torch-fidelity``) or
    without its Inception weights (downloaded on first use) this raises ``data.DataUnavailable``
    with that message, so a chapter can print it and go on.
    """
    from .data import DataUnavailable

    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError:
        raise DataUnavailable("inception_fid needs torchmetrics with its image extra: "
                              "pip install torchmetrics torch-fidelity") from None
    if x_real.ndim == 5:
        x_real = x_real[0]
    _check_images("x_fake", x_fake)
    device = device or x_fake.device
    to_uint8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    out = []
    try:
        fid = FrechetInceptionDistance(feature=2048, reset_real_features=False).to(device)
        for part in x_real.split(chunk):
            fid.update(to_uint8(part.to(device)), real=True)
        for k in range(x_fake.shape[0]):
            fid.reset()
            for part in x_fake[k].split(chunk):
                fid.update(to_uint8(part.to(device)), real=False)
            out.append(float(fid.compute()))
    except (RuntimeError, OSError, ModuleNotFoundError) as err:
        raise DataUnavailable(f"inception_fid could not run torchmetrics' FID ({type(err).__name__}: {err}); its "
                              f"Inception weights are downloaded on first use, which needs the network") from None
    return np.asarray(out)
