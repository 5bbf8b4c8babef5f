"""Chapter 8: image data (digits, stacked digits, the torchvision loaders on fake data), member-batched
conv nets, the digit classifier and its cache, stacked-digit mode statistics and the Fréchet distance.

Nothing here downloads anything: torchvision is replaced by a fake module that serves tensors the
tests make, and its absence is simulated."""

import dataclasses
import math
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from egan_lib import convnets, data, gan, instruments, metrics, presets


# --- digits and stacked digits -----------------------------------------------------------------

def test_digits_are_scaled_and_split():
    d = data.digits()
    assert d.shape == (1, 8, 8) and len(d) == 1797 and d.n_classes == 10
    assert d.images.min() == -1.0 and d.images.max() == 1.0
    tr, te = data.digits("train"), data.digits("test")
    assert len(tr) + len(te) == 1797 and abs(len(te) - 0.25 * 1797) < 1
    # the held-out split shares no image with the training split
    flat_tr = {tuple(x.flatten().tolist()) + (int(y),) for x, y in zip(tr.images, tr.labels)}
    assert not any(tuple(x.flatten().tolist()) + (int(y),) in flat_tr for x, y in zip(te.images[:50], te.labels[:50]))
    with pytest.raises(ValueError, match="split"):
        data.digits("validation")


def test_image_sample_shapes_and_seed():
    d = data.digits("train")
    a = d.sample(7, torch.Generator().manual_seed(0), members=3)
    b = d.sample(7, torch.Generator().manual_seed(0), members=3)
    assert a.shape == (3, 7, 1, 8, 8) and torch.equal(a, b)
    assert d.sample(5).shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match="members"):
        d.sample(5, members=0)


def _coded_digits(n_classes=10):
    """One-channel 'digits' whose every pixel holds the class code, so a channel's class can be read back."""
    labels = torch.arange(n_classes).repeat(3)
    images = (labels.float() / 10).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).contiguous()
    return data.ImageData(images, labels, n_classes=n_classes, name="coded")


def test_stacked_images_label_is_100a_10b_c():
    s = data.StackedImages(_coded_digits(), 3)
    assert s.n_modes == 1000 and s.shape == (3, 8, 8)
    x, y = s.sample_with_labels(500, torch.Generator().manual_seed(1), members=2)
    assert x.shape == (2, 500, 3, 8, 8) and y.shape == (2, 500)
    digits_ = (x[..., 0, 0] * 10).round().long()  # [K, N, 3]: the class coded in each channel
    assert torch.equal(y, 100 * digits_[..., 0] + 10 * digits_[..., 1] + digits_[..., 2])
    assert len(set(y.flatten().tolist())) > 300  # the three channels are drawn independently


def test_stacked_digits_has_1000_modes():
    s = data.stacked_digits("test")
    assert s.n_modes == 1000 and s.sample(4, members=2).shape == (2, 4, 3, 8, 8)
    with pytest.raises(ValueError, match="base"):
        data.StackedImages(data.ImageData(torch.zeros(2, 3, 4, 4), torch.zeros(2), n_classes=1))


def test_to_unit_range():
    x = torch.tensor([[[0, 255], [51, 204]]], dtype=torch.uint8)  # [1, 2, 2]
    y = data.to_unit_range(x)
    assert y.shape == (1, 1, 2, 2) and y.min() == -1 and y.max() == 1
    hwc = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    hwc[..., 1] = 255
    z = data.to_unit_range(hwc, channels_last=True)
    assert z.shape == (2, 3, 4, 4) and (z[:, 1] == 1).all() and (z[:, 0] == -1).all()
    with pytest.raises(ValueError, match="images"):
        data.to_unit_range(torch.zeros(2, 4, 4))


# --- the torchvision loaders, on a fake torchvision -------------------------------------------------

def test_loaders_say_what_to_install_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` raises ImportError
    for load in (data.mnist, data.stacked_mnist, data.cifar10):
        with pytest.raises(data.DataUnavailable, match="torchvision.*not installed.*install"):
            load("/nonexistent")


def _fake_torchvision(monkeypatch, found=True):
    calls = []

    class _Fake:
        def __init__(self, root, train=True, download=False):
            calls.append((type(self).__name__, root, train, download))
            if not found:
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            n = 40 if train else 20
            g = torch.Generator().manual_seed(int(train))
            self.targets = torch.arange(n) % 10
            self.data = self._make(n, g)

    class MNIST(_Fake):
        def _make(self, n, g):  # torchvision: uint8 tensor [N, 28, 28], targets a tensor
            return torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)

    class CIFAR10(_Fake):
        def _make(self, n, g):  # torchvision: numpy uint8 [N, 32, 32, 3], targets a list
            self.targets = self.targets.tolist()
            return torch.randint(0, 256, (n, 32, 32, 3), generator=g, dtype=torch.uint8).numpy()

    tv = types.ModuleType("torchvision")
    tv.datasets = types.ModuleType("torchvision.datasets")
    tv.datasets.MNIST, tv.datasets.CIFAR10 = MNIST, CIFAR10
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", tv.datasets)
    return calls


def test_mnist_and_cifar10_loaders_on_fake_torchvision(monkeypatch, tmp_path):
    calls = _fake_torchvision(monkeypatch)
    m = data.mnist(tmp_path)
    assert m.shape == (1, 28, 28) and len(m) == 40 and m.images.min() >= -1 and m.images.max() <= 1
    assert calls[-1] == ("MNIST", str(tmp_path), True, False)  # nothing is downloaded by default
    assert len(data.mnist(tmp_path, train=False)) == 20
    s = data.stacked_mnist(tmp_path)
    assert s.n_modes == 1000 and s.sample(3, members=2).shape == (2, 3, 3, 28, 28)
    c = data.cifar10(tmp_path)
    assert c.shape == (3, 32, 32) and c.labels.dtype == torch.long and c.sample(2, members=2).shape == (2, 2, 3, 32, 32)


def test_missing_files_give_a_message_not_a_traceback(monkeypatch, tmp_path):
    _fake_torchvision(monkeypatch, found=False)
    with pytest.raises(data.DataUnavailable, match="download=False.*download=True"):
        data.mnist(tmp_path)
    with pytest.raises(data.DataUnavailable, match="CIFAR10"):
        data.cifar10(tmp_path)


# --- member-batched conv nets ----------------------------------------------------------------

def test_member_conv_is_k_separate_convolutions():
    torch.manual_seed(0)
    conv = convnets.MemberConv2d(3, 2, 5, 4, stride=2, padding=1)
    x = torch.randn(3, 6, 2, 8, 8)
    y = convnets.from_grouped(conv(convnets.to_grouped(x)), 3)
    for k in range(3):
        assert torch.allclose(y[k], F.conv2d(x[k], conv.weight[k], conv.bias[k], stride=2, padding=1), atol=1e-6)
    assert torch.equal(convnets.from_grouped(convnets.to_grouped(x), 3), x)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("spectral", [False, True])
def test_conv_members_equal_separate_nets(shape, spectral):
    torch.manual_seed(1)
    K = 3
    U = convnets.ConvEnergy(K, shape, width=4, spectral=spectral)
    G = convnets.ConvGenerator(K, shape, width=4, latent_dim=5)
    z = G.noise(6, torch.Generator().manual_seed(2))
    x = G(z)
    assert x.shape == (K, 6) + shape and x.abs().max() <= 1
    U.train()
    U(x)  # a power-iteration step when spectral
    U.eval()
    e = U(x)
    assert e.shape == (K, 6)
    for k in range(K):
        u_k, g_k = U.member(k), G.member(k)
        assert isinstance(u_k, nn.Sequential) and not any(isinstance(m, nn.BatchNorm2d) for m in u_k.modules())
        assert torch.allclose(u_k(x[k]), e[k], atol=1e-5)
        assert torch.allclose(g_k(z[k]), x[k], atol=1e-5)


def test_spectral_normalisation_bounds_each_kernel():
    torch.manual_seed(3)
    conv = convnets.MemberConv2d(2, 3, 8, 3, spectral=True)
    with torch.no_grad():
        conv.weight[1] *= 50  # members with very different scales
    for _ in range(30):
        conv.kernel()  # power iterations (training mode)
    sv = torch.linalg.matrix_norm(conv.kernel().flatten(2), ord=2)
    assert torch.allclose(sv, torch.ones(2), atol=1e-3)


def test_conv_losses_train_members_independently():
    torch.manual_seed(4)
    U = convnets.ConvEnergy(2, (3, 8, 8), width=4, spectral=True)
    x = torch.randn(2, 5, 3, 8, 8)
    U(x)[0].sum().backward()
    for p in U.parameters():
        assert p.grad[1].abs().max() == 0 and p.grad[0].abs().max() > 0


def test_conv_nets_reject_bad_input():
    U = convnets.ConvEnergy(2, (1, 8, 8), width=4)
    with pytest.raises(ValueError, match="x must"):
        U(torch.randn(3, 5, 1, 8, 8))
    with pytest.raises(ValueError, match="x must"):
        U(torch.randn(2, 5, 64))
    with pytest.raises(ValueError, match="shape"):
        convnets.ConvEnergy(2, (1, 8, 6))
    with pytest.raises(ValueError, match="width"):
        convnets.ConvGenerator(2, (1, 8, 8), width=0)
    with pytest.raises(ValueError, match="z must"):
        convnets.ConvGenerator(2, (1, 8, 8), latent_dim=4)(torch.randn(2, 5, 3))


def test_train_runs_on_images_with_r1():
    real = data.stacked_digits("train")
    cfg = gan.ImageGAN(shape=real.shape, members=2, width=4, latent_dim=4, steps=4, batch=8, init_seed=5)
    cfg = cfg.replace(recipe=dataclasses.replace(cfg.recipe, penalty_every=1))  # R1 at every step, so in every log
    h = cfg.build().train(real, log_every=2, progress=False)
    assert h.stopped is None and h["penalty"].shape == (2, 2) and np.isfinite(h["penalty"]).all()


# --- the digit classifier, its cache, and the statistics it measures -----------------------------

@pytest.fixture(scope="session")
def classifier(tmp_path_factory):
    return instruments.digit_classifier(tmp_path_factory.mktemp("egan_cache"), verbose=False)


def test_classifier_is_accurate_on_held_out_digits(classifier):
    assert classifier.n_test == len(data.digits("test"))
    assert classifier.test_accuracy >= 0.95
    assert instruments.classifier_accuracy(classifier, data.digits("test")) == pytest.approx(classifier.test_accuracy)


def test_classifier_is_loaded_from_the_cache(classifier):
    again = instruments.digit_classifier(classifier.cache_path.parent, verbose=False)
    assert again.test_accuracy == classifier.test_accuracy
    for a, b in zip(again.state_dict().values(), classifier.state_dict().values()):
        assert torch.equal(a, b)


def test_corrupt_cache_is_retrained_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("EGAN_CACHE", str(tmp_path))
    assert instruments.cache_dir() == tmp_path and instruments.cache_dir("/elsewhere") == instruments.Path("/elsewhere")
    (tmp_path / "digit_classifier.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match="cannot be used.*training a new one"):
        net = instruments.digit_classifier(verbose=False, epochs=1)
    assert 0 <= net.test_accuracy <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file it wrote is now read back without complaint
        instruments.digit_classifier(verbose=False)
    blob = torch.load(tmp_path / "digit_classifier.pt", weights_only=True)
    blob["format"] = -1  # an incompatible version
    torch.save(blob, tmp_path / "digit_classifier.pt")
    with pytest.warns(RuntimeWarning, match="format"):
        instruments.digit_classifier(verbose=False, epochs=1)


class _CodeReader(nn.Module):
    """A stand-in classifier that reads the class coded in every pixel (see ``_coded_digits``)."""

    n_classes = 10

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def features(self, x):
        return x.flatten(1)[:, :2] * self.scale

    def forward(self, x):
        return F.one_hot((x[:, 0, 0, 0] * 10).round().long(), 10).float()


def _stack(codes):
    """Images ``[1, N, 3, 8, 8]`` whose channels code the digits of each mode in ``codes``."""
    codes = torch.as_tensor(codes)
    d = torch.stack([codes // 100, codes // 10 % 10, codes % 10], dim=-1).float() / 10
    return d.view(1, -1, 3, 1, 1).expand(-1, -1, -1, 8, 8).contiguous()


def test_stacked_mode_stats_count_modes_and_kl():
    reader = _CodeReader()
    every = metrics.stacked_mode_stats(_stack(range(1000)), reader)
    assert every.modes[0] == 1000 and every.reverse_kl[0] == pytest.approx(0.0, abs=1e-12)
    half = metrics.stacked_mode_stats(_stack(list(range(0, 1000, 2)) * 2), reader)
    assert half.modes[0] == 500 and half.reverse_kl[0] == pytest.approx(math.log(2))
    one = metrics.stacked_mode_stats(_stack([371] * 50), reader)
    assert one.modes[0] == 1 and one.histogram[0, 371] == 50 and one.reverse_kl[0] == pytest.approx(math.log(1000))
    with pytest.raises(ValueError, match="images"):
        metrics.stacked_mode_stats(torch.zeros(5, 3, 8, 8), reader)


def test_real_stacked_digits_cover_the_modes(classifier):
    x = data.stacked_digits("test").sample(6000, torch.Generator().manual_seed(0), members=2)
    s = metrics.stacked_mode_stats(x, classifier)
    # 6,000 draws over 1,000 near-equal modes miss about 1000 e^-6 = 2.5 of them
    assert (s.modes >= 985).all() and (s.reverse_kl < 0.2).all()
    collapsed = metrics.stacked_mode_stats(x[:, :1].expand(-1, 500, -1, -1, -1), classifier)
    assert (collapsed.modes == 1).all()


def test_frechet_of_diagonal_gaussians():
    # diagonal covariances commute: d^2 = |mu1 - mu2|^2 + sum (s1 - s2)^2
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 2.0, 1.5])
    d2 = instruments.frechet(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert d2.item() == pytest.approx(5.0 + 4.0 + 0.0 + 1.0)
    # it is invariant under a common rotation, and 0 between identical Gaussians
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    mu1, mu2, s1, s2 = (t.double() for t in (mu1, mu2, s1, s2))
    rot = instruments.frechet(q @ mu1, q @ torch.diag(s1**2) @ q.T, q @ mu2, q @ torch.diag(s2**2) @ q.T)
    assert rot.item() == pytest.approx(10.0, rel=1e-9)
    a = torch.randn(4, 4, dtype=torch.float64)
    assert instruments.frechet(torch.zeros(4), a @ a.T, torch.zeros(4), a @ a.T).item() == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="mu1"):
        instruments.frechet(mu1, torch.eye(2), mu2, torch.eye(2))


def test_frechet_distance_separates_data_from_noise(classifier):
    real = data.stacked_digits("test")
    x_ref = real.sample(1500, torch.Generator().manual_seed(1), members=1)
    x = torch.cat([real.sample(1500, torch.Generator().manual_seed(2), members=1),
                   torch.rand(1, 1500, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1])
    fd = instruments.frechet_distance(x_ref, x, classifier)
    assert fd.shape == (2,) and 0 <= fd[0] < fd[1] / 5


def test_inception_fid_without_torchmetrics_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)
    with pytest.raises(data.DataUnavailable, match="pip install torchmetrics"):
        instruments.inception_fid(torch.zeros(4, 3, 32, 32), torch.zeros(1, 4, 3, 32, 32))


# --- presets --------------------------------------------------------------------------------

def test_image_presets():
    for f in ("image_members", "image_steps", "image_batch", "image_width", "image_latent_dim",
              "image_eval_samples"):
        assert getattr(presets.full, f) >= getattr(presets.quick, f) >= 1
    assert presets.full.image_eval_samples == 26000  # the StackedMNIST protocol of PacGAN and MEG
    with pytest.raises(ValueError, match="image_steps"):
        presets.quick.replace(image_steps=0)


def test_image_grid_places_every_image_and_rejects_bad_input():
    import matplotlib
    matplotlib.use("Agg", force=True)
    from egan_lib import plot

    x = torch.linspace(-1, 1, 10).view(10, 1, 1, 1).expand(10, 3, 2, 2).clone()
    ax = plot.image_grid(x, nrow=4)
    canvas = ax.get_images()[0].get_array()
    assert canvas.shape == (3 * 3 + 1, 4 * 3 + 1, 3)  # 3 rows of 4 (2x2 images, 1-pixel gaps)
    assert np.allclose(canvas[1, 1], 0.0) and np.allclose(canvas[7, 4], 1.0)  # first image -1 -> 0, last +1 -> 1
    for bad in (torch.zeros(4, 2, 8, 8), torch.zeros(8, 8)):
        with pytest.raises(ValueError, match="images must be"):
            plot.image_grid(bad)
    with pytest.raises(ValueError, match="nrow"):
        plot.image_grid(x, nrow=0)
