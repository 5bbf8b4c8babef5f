"""What a 2D energy-GAN run is, in one frozen set-up object: the book's default lives here, once.

``GAN2D`` holds the nets (width, depth, activation, latent size), each net's optimiser, the recipe
(losses, penalty, weights), the learning-rate schedule, the generator average, the steps, the
batch, the members, the seeds and the units the nets work in. ``GAN2D().build(device)`` makes the
nets and optimisers, and any 2D mixture trains in two lines::

    gan = GAN2D(members=4).build()
    history = gan.train(data.ring())

Chapters 2-7 change what their experiment is about with ``dataclasses.replace`` (or ``GAN2D(...,
field=value)``). ``EnergyModel2D`` is the energy alone, with no generator (chapter 9): its negatives
are Langevin chains on the energy itself, kept in a replay buffer. ``ImageGAN`` is the same for
images (chapter 8): member-batched conv nets, chapter 8's recipe as its default;
``image_default(preset, shape)`` sizes it from a preset's ``image_*`` fields::

    gan = image_default(shape=(3, 8, 8)).with_entropy(0.03).build()
    history = gan.train(data.stacked_digits())
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import _validate, convnets, entropy as _entropy, nets, penalties, train as _train, units
from .callbacks import EMA, Schedule

__all__ = ["Opt", "LinearDecay", "GAN2D", "ImageGAN", "GAN", "default", "image_default",
           "EnergyModel2D", "EnergyModel"]


@dataclass(frozen=True)
class Opt:
    """One net's optimiser: a ``torch.optim`` class, its learning rate and its other options."""

    kind: type = torch.optim.Adam  # SGD, Adam, RMSprop, ... (the class, not a name)
    lr: float = 1e-3  # learning rate
    options: dict = field(default_factory=lambda: {"betas": (0.0, 0.9)})  # e.g. {"momentum": 0.9} for SGD

    def __repr__(self) -> str:  # functions and classes by name, no memory addresses
        return _train.describe(self, short=True)

    def __post_init__(self) -> None:
        if not (isinstance(self.kind, type) and issubclass(self.kind, torch.optim.Optimizer)):
            raise ValueError(f"kind must be a torch.optim.Optimizer class such as torch.optim.Adam, got {self.kind!r}")
        _validate.positive("lr", self.lr)
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a dict of keyword arguments, got {type(self.options).__name__}")

    def make(self, params) -> torch.optim.Optimizer:
        return self.kind(params, lr=self.lr, **self.options)


@dataclass(frozen=True)
class LinearDecay:
    """A schedule: constant learning rate, then a linear fall to ``to`` times it over the last
    ``1 - start`` of the steps (``start=0.5, to=0.01``: over the second half the rate falls to 1 %)."""

    start: float = 0.5  # fraction of the steps after which the decay begins
    to: float = 0.01  # the final learning rate, as a fraction of the initial one

    def __repr__(self) -> str:  # functions and classes by name, no memory addresses
        return _train.describe(self, short=True)

    def __post_init__(self) -> None:
        if not 0.0 <= self.start < 1.0:
            raise ValueError(f"start must be in [0, 1), got {self.start!r}")
        if not 0.0 < self.to <= 1.0:
            raise ValueError(f"to must be in (0, 1], got {self.to!r}")

    def __call__(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        begin = round(self.start * steps)  # 0.7 * 90 is 62.99...: round, not truncate
        span = max(1, steps - begin)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: 1.0 - (1.0 - self.to) * min(max(t - begin, 0), span) / span)


class _SetUp:
    """What the set-ups share: printing without memory addresses, ``replace``, the checks of the
    training fields, and the entropy term of chapter 7."""

    def __repr__(self) -> str:  # functions and classes by name
        return _train.describe(self, short=True)

    def replace(self, **changes):
        """A copy with some fields changed, e.g. ``cfg.replace(members=8, steps=5000)``."""
        return dataclasses.replace(self, **changes)

    def _check_training(self, sizes: tuple[str, ...]) -> None:
        for name in sizes + ("steps", "batch"):
            _validate.positive(name, getattr(self, name), integer=True)
        for name in ("opt_e", "opt_g")[: 2 if hasattr(self, "opt_g") else 1]:
            if not isinstance(getattr(self, name), Opt):
                raise ValueError(f"{name} must be a gan.Opt, got {getattr(self, name)!r}")
        if not isinstance(self.recipe, _train.Recipe):
            raise ValueError(f"recipe must be a train.Recipe, got {self.recipe!r}")
        if self.schedule is not None and not callable(self.schedule):
            raise ValueError(f"schedule must be None or a function (optimizer, steps) -> scheduler, got {self.schedule!r}")
        _validate.boolean("standardise", getattr(self, "standardise", False))
        if getattr(self, "ema", None) is not None and not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be None or a decay in [0, 1), got {self.ema!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if self.init_seed is not None and (isinstance(self.init_seed, bool) or not isinstance(self.init_seed, int)):
            raise ValueError(f"init_seed must be an int or None, got {self.init_seed!r}")

    def with_entropy(self, weight: float, estimator=None):
        r"""A copy whose generator minimises :math:`-\lambda \hat H(G(Z)) + E_z U(G(z))` (chapter 7) with
        :math:`\lambda` = ``weight`` and ``estimator`` (default ``entropy.KNNEntropy(k=1)``, the
        nearest-neighbour estimate); ``weight=0`` removes the term."""
        _validate.non_negative("weight", weight)
        term = None if weight == 0 else (estimator if estimator is not None else _entropy.KNNEntropy(k=1))
        return self.replace(recipe=dataclasses.replace(self.recipe, entropy=term, entropy_weight=weight))


@dataclass(frozen=True, repr=False)
class GAN2D(_SetUp):
    """A 2D energy GAN: member-batched MLP energy and generator, their optimisers, recipe and schedule."""

    members: int = 4  # K: independent GANs (seeds) trained side by side as one batch
    width: int = 64  # hidden units of both MLPs
    depth: int = 3  # hidden layers of both MLPs
    # ReLU: a piecewise-linear energy can have a kink, a pit as narrow as the data (appendix; a smooth
    # SiLU energy digs one wide valley). Or nn.SiLU, partial(nn.LeakyReLU, 0.2), ...
    activation: Callable[[], nn.Module] = nn.ReLU
    latent_dim: int = 4  # dimension of the generator's noise z ~ N(0, I)
    # Adam, beta1 = 0 (no momentum; chapter 5), lr 4e-3: four times the old 1e-3 digs the pits of the
    # grid of 25 in a fraction of the steps (the ablation of the appendix); the decay lands the fakes
    opt_e: Opt = Opt(lr=4e-3)  # the energy's optimiser
    opt_g: Opt = Opt(lr=4e-3)  # the generator's optimiser
    # eq. (1) + R1 with gamma = 2 (chapter 3: critical damping for the linear loss)
    recipe: _train.Recipe = _train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=2.0)
    # (optimizer, steps) -> LR scheduler for each net; the rate falls to 0.1 % over the second half, so the
    # fakes stop jittering round the pits and land in them. None: constant.
    schedule: Callable | None = LinearDecay(to=0.001)
    # a moving average of the generator's weights, sampled in its place (None: none); with 0.99 no ring
    ema: float | None = 0.99  # member of 64 keeps a mode short of fakes, 3 of 64 without (the appendix)
    steps: int = 2000  # alternating dig/jump steps
    batch: int = 256  # real and fake samples per member per step
    seed: int = 0  # seeds the data and noise stream of the run
    init_seed: int | None = 0  # seeds the nets' initial weights; None: torch's global random state
    standardise: bool = False  # True: the nets (and gamma) in the data's standardised units (egan_lib.units)

    def __post_init__(self) -> None:
        self._check_training(("members", "width", "depth", "latent_dim"))
        if not callable(self.activation) or isinstance(self.activation, nn.Module):
            raise ValueError(f"activation must make an nn.Module when called (nn.ReLU, "
                             f"functools.partial(nn.LeakyReLU, 0.2)), got {self.activation!r}")

    def build(self, device: torch.device | str | None = None, *, dim: int = 2) -> "GAN":
        """The nets and optimisers of this set-up on ``device`` (default: CPU)."""
        with torch.random.fork_rng(devices=[], enabled=self.init_seed is not None):
            if self.init_seed is not None:
                torch.manual_seed(self.init_seed)
            energy = nets.MLPEnergy(self.members, dim, width=self.width, depth=self.depth, activation=self.activation)
            generator = nets.MLPGenerator(self.members, dim, latent_dim=self.latent_dim, width=self.width,
                                          depth=self.depth, activation=self.activation)
        return GAN(self, energy.to(device), generator.to(device))


def default(preset=None, **changes) -> GAN2D:
    """The book's default 2D set-up at the size of a ``presets.Preset`` (members, width, depth,
    latent size, steps, batch; default: ``presets.current()``), with ``changes`` on top."""
    from . import presets
    p = preset or presets.current()
    size = dict(members=p.members, width=p.width, depth=p.depth, latent_dim=p.latent_dim, steps=p.steps, batch=p.batch)
    return GAN2D(**{**size, **changes})


@dataclass(frozen=True, repr=False)
class ImageGAN(_SetUp):
    """An energy GAN on images (chapter 8): member-batched conv energy and generator, their
    optimisers, recipe and schedule. The defaults are chapter 8's recipe at the quick preset's size."""

    shape: tuple = (1, 8, 8)  # (C, H, W) of the images, square: 8x8 digits, 28x28 MNIST, 32x32 CIFAR-10
    members: int = 4  # K: independent GANs (seeds) trained side by side as one batch
    width: int = 16  # channels of the energy's first conv layer, doubled at every halving of the side
    latent_dim: int = 16  # dimension of the generator's noise z ~ N(0, I)
    spectral: bool = False  # spectral normalisation of the energy's convolutions (the recipe needs none)
    opt_e: Opt = Opt(lr=2e-3)  # the energy's optimiser: Adam, lr 2e-3, beta1 = 0 (no momentum; chapter 5)
    opt_g: Opt = Opt(lr=2e-3)  # the generator's optimiser, the same
    recipe: _train.Recipe = _train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=1.0,
                                          penalty_every=4)  # eq. (1) + lazy R1 (every 4th energy step), eq. (3)
    schedule: Callable | None = None  # (optimizer, steps) -> LR scheduler for each net, e.g. LinearDecay()
    ema: float | None = None  # decay of a moving average of the generator's weights; None: no average
    steps: int = 600  # alternating dig/jump steps
    batch: int = 32  # real and fake images per member per step
    seed: int = 0  # seeds the data and noise stream of the run
    init_seed: int | None = 0  # seeds the nets' initial weights; None: torch's global random state

    def __post_init__(self) -> None:
        shape = tuple(self.shape) if isinstance(self.shape, (tuple, list)) else self.shape
        object.__setattr__(self, "shape", convnets._image_shape(shape))  # a list or torch.Size: stored as a tuple
        self._check_training(("members", "width", "latent_dim"))
        _validate.boolean("spectral", self.spectral)

    def build(self, device: torch.device | str | None = None) -> "GAN":
        """The nets and optimisers of this set-up on ``device`` (default: CPU); the nets are made on
        the CPU from ``init_seed`` (energy first) and then moved, so every device starts alike."""
        with torch.random.fork_rng(devices=[], enabled=self.init_seed is not None):
            if self.init_seed is not None:
                torch.manual_seed(self.init_seed)
            energy = convnets.ConvEnergy(self.members, self.shape, width=self.width, spectral=self.spectral)
            generator = convnets.ConvGenerator(self.members, self.shape, latent_dim=self.latent_dim, width=self.width)
        return GAN(self, energy.to(device), generator.to(device))


def image_default(preset=None, shape=(1, 8, 8), **changes) -> ImageGAN:
    """Chapter 8's image set-up for images of ``shape`` at the size of a ``presets.Preset`` (its
    ``image_members``, ``image_width``, ``image_latent_dim``, ``image_steps``, ``image_batch``;
    default: ``presets.current()``), with ``changes`` on top."""
    from . import presets
    p = preset or presets.current()
    size = dict(members=p.image_members, width=p.image_width, latent_dim=p.image_latent_dim,
                steps=p.image_steps, batch=p.image_batch)
    return ImageGAN(**{"shape": shape, **size, **changes})


class GAN:
    """A built ``GAN2D`` or ``ImageGAN``: ``energy``, ``generator``, their optimisers ``opt_e`` / ``opt_g``,
    and the callbacks its set-up asks for (the schedule, the moving average) in ``callbacks``."""

    def __init__(self, config: GAN2D | ImageGAN, energy: nn.Module, generator: nn.Module):
        self.config, self.energy, self.generator = config, energy, generator
        self.opt_e = config.opt_e.make(energy.parameters())
        self.opt_g = config.opt_g.make(generator.parameters())
        self.callbacks = []
        if config.schedule is not None:
            self.callbacks.append(Schedule(config.schedule(self.opt_e, config.steps),
                                           config.schedule(self.opt_g, config.steps)))
        self.ema = EMA(generator, config.ema) if config.ema is not None else None
        self.callbacks += [self.ema] if self.ema is not None else []

    @property
    def sampler(self) -> nn.Module:
        """The generator to sample from: the moving average, once a run has begun, where there is one."""
        return self.ema.generator if self.ema is not None and self.ema.started else self.generator

    def train(self, real, *, callbacks=(), **kwargs) -> _train.History:
        """``train.train`` on ``real`` with this set-up's steps, batch, seed, recipe and callbacks;
        ``kwargs`` go to ``train.train`` (``log_every``, ``progress``, ``desc``, or ``steps`` to
        train a part of the run)."""
        c = self.config
        kwargs = {"steps": c.steps, "batch": c.batch, "seed": c.seed, "recipe": c.recipe, **kwargs}
        if getattr(c, "standardise", False):  # gamma weighs R1 in the nets' units, |grad_x U|^2 * scale^2
            s2 = units.standardise(self.energy, self.generator, real) ** 2
            kwargs["recipe"] = dataclasses.replace(kwargs["recipe"], gamma=kwargs["recipe"].gamma * s2)
        return _train.train(self.energy, self.generator, real, opt_e=self.opt_e, opt_g=self.opt_g,
                            callbacks=[*self.callbacks, *callbacks], **kwargs)

    @torch.no_grad()
    def sample(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """``n`` fakes per member from ``sampler``: ``[K, n, 2]`` (2D), ``[K, n, C, H, W]`` (images)."""
        return self.sampler.sample(n, rng)

    def __repr__(self) -> str:
        return f"GAN({self.config})"


@dataclass(frozen=True, repr=False)
class EnergyModel2D(_SetUp):
    r"""An energy model with no generator (chapter 9): ``GAN2D``'s MLP energy, trained by eq. (1)
    against negatives drawn from its own density :math:`p(x) \propto e^{-U(x)}` by MALA chains that a
    replay buffer keeps from one step to the next (``sampling.ReplayBuffer``): maximum likelihood."""

    members: int = 4  # K: independent models (seeds) trained side by side as one batch
    width: int = 64  # hidden units of the MLP energy
    depth: int = 3  # hidden layers
    activation: Callable[[], nn.Module] = nn.ReLU
    opt_e: Opt = Opt(lr=4e-3)  # GAN2D's: Adam, lr 4e-3, beta1 = 0
    # eq. (1) + 0.01 (E U_real^2 + E U_fake^2): the level of U pinned, its slopes free; R1 would flatten
    # the pits a density of data this sharp needs (chapter 9)
    recipe: _train.Recipe = _train.Recipe(penalty=penalties.on_both(penalties.energy_l2), gamma=0.02)
    chain_steps: int = 10  # MALA steps on the chains drawn from the buffer at every energy step
    step_size: float | None = None  # their step; None: the data's variance per coordinate (std ** 2)
    buffer_size: int = 4000  # chains kept per member
    restart: float = 0.05  # fraction of the chains drawn that start afresh, uniform over the data's box
    metropolis: bool = True  # MALA chains; False: ULA (no Hastings test, biased by its step)
    # a move per draw to another chain's place (ReplayBuffer's jump, width sqrt(step)), so chains cross
    # between pits and eq. (1) sees how deep each is; a tuple: one per member (chapter 9 runs both)
    jump: bool | tuple = True
    schedule: Callable | None = LinearDecay()  # the rate falls to 1 % over the second half
    steps: int = 600  # energy steps
    batch: int = 128  # real samples and chains per member per step
    seed: int = 0  # seeds the data stream and the chains
    init_seed: int | None = 0  # seeds the net's initial weights; None: torch's global random state

    def __post_init__(self) -> None:
        self._check_training(("members", "width", "depth", "chain_steps", "buffer_size"))
        if self.step_size is not None:
            _validate.positive("step_size", self.step_size)
        if not 0.0 <= self.restart <= 1.0:
            raise ValueError(f"restart must be in [0, 1], got {self.restart!r}")
        jumps = self.jump if isinstance(self.jump, tuple) else (self.jump,)
        if not all(isinstance(j, bool) for j in jumps) or len(jumps) not in (1, self.members):
            raise ValueError(f"jump must be True, False or a tuple of one per member, got {self.jump!r}")

    def build(self, real, device: torch.device | str | None = None) -> "EnergyModel":
        """The energy, its optimiser and a buffer of chains for the data ``real`` (a 2D mixture: its
        box is where chains restart, its ``std`` sets the default step) on ``device``."""
        from . import sampling
        if self.step_size is None and not hasattr(real, "std"):
            raise ValueError("step_size is None and the data have no std to take it from: give step_size")
        step = self.step_size if self.step_size is not None else float(real.std) ** 2
        jump = step ** 0.5 * torch.as_tensor(self.jump, dtype=torch.float32).expand(self.members)
        with torch.random.fork_rng(devices=[], enabled=self.init_seed is not None):
            if self.init_seed is not None:
                torch.manual_seed(self.init_seed)
            energy = nets.MLPEnergy(self.members, 2, width=self.width, depth=self.depth,
                                    activation=self.activation).to(device)
        buffer = sampling.ReplayBuffer(energy, real.extent(0.5), members=self.members, size=self.buffer_size,
                                       steps=self.chain_steps, step_size=step, restart=self.restart,
                                       metropolis=self.metropolis, jump=jump if jump.any() else None,
                                       seed=self.seed)
        return EnergyModel(self, energy, buffer)


class EnergyModel:
    """A built ``EnergyModel2D``: ``energy``, its optimiser ``opt_e``, the chains' ``buffer``."""

    def __init__(self, config: EnergyModel2D, energy: nn.Module, buffer):
        self.config, self.energy, self.buffer = config, energy, buffer
        self.opt_e = config.opt_e.make(energy.parameters())
        self.callbacks = [] if config.schedule is None else [
            Schedule(config.schedule(self.opt_e, config.steps))]

    def train(self, real, *, callbacks=(), **kwargs) -> _train.History:
        """``train.train`` with the buffer as the fakes (digging only); ``kwargs`` as in ``GAN.train``."""
        c = self.config
        kwargs = {"steps": c.steps, "batch": c.batch, "seed": c.seed, "recipe": c.recipe, **kwargs}
        return _train.train(self.energy, self.buffer, real, opt_e=self.opt_e,
                            callbacks=[*self.callbacks, *callbacks], **kwargs)

    def sample(self, n: int, rng: torch.Generator | None = None, *, steps: int = 200, adapt_steps: int = 100):
        """``n`` samples per member of :math:`e^{-U}` on the buffer's box: MALA (step adapted in warm-up)
        from ``n`` chains of the buffer. Returns the ``sampling.Chain``."""
        from . import sampling
        idx = torch.randperm(self.buffer.states.shape[1], generator=rng)[:n]
        x0 = self.buffer.states[:, idx].to(next(self.energy.parameters()).device)
        rng = rng if x0.device.type == "cpu" else None  # a CPU generator draws no noise on a GPU
        return sampling.mala(self.buffer.logp, x0, steps=steps, step_size=self.buffer.step_size,
                             adapt_steps=adapt_steps, rng=rng)

    def __repr__(self) -> str:
        return f"EnergyModel({self.config})"
