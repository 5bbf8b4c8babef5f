r"""Estimators of a generator's entropy H(G(Z)) (chapter 7).

The article's cure for mode collapse adds an entropy term to the jumping step (Su, 2019, eq. (6)):

.. math:: \min_G \; -\lambda\, H\big(G(Z)\big) + \mathbb{E}_{z}\, U\big(G(z)\big).

:math:`H` of a generator's output has no closed form. This module holds three ways to estimate it,
every one member-batched (samples ``[K, B, D]`` in, one value per member ``[K]`` out):

* **The mutual-information route** of MEG (Kumar et al., 2019, "Maximum Entropy Generators for
  Energy-Based Models"): for :math:`X = G(Z)`, :math:`H(X) = I(X; Z) + H(X \mid Z)`, and the second
  term is a constant (:math:`-\infty` for a deterministic generator, made finite by any small
  noise) that does not depend on what G does with z. So the generator maximises a lower bound on
  :math:`I(X; Z)`, here the Jensen–Shannon one of Deep InfoMax: a statistics network
  :math:`T(x, z)` (``StatisticsNet``) learns to tell pairs :math:`(G(z), z)` from pairs
  :math:`(G(z), \tilde z)` with :math:`\tilde z` shuffled within the batch (``jsd_mi``,
  ``jsd_mi_loss``; trained and used by ``MIEntropy``).
* **A k-nearest-neighbour estimate** of the batch (Kozachenko & Leonenko, 1987; ``knn_entropy``),
  which is an explicit function of the samples and so differentiable with respect to them:
  ``KNNEntropy`` uses it directly as the generator's entropy term.
* **The same k-NN estimate for evaluation** (``sample_entropy``): many samples, no graph, in
  chunks, to compare generators after training on an absolute scale (nats).

``MIEntropy`` and ``KNNEntropy`` satisfy one small protocol, ``EntropyEstimator``, which
``train.jump_step`` uses when a ``train.Recipe`` has ``entropy`` set (with ``entropy_weight``
:math:`\lambda`):

* ``estimate(z, x_fake) -> [K]``: the entropy estimate (up to a constant), differentiable w.r.t.
  ``x_fake``;
* ``update(z, x_fake)``: train whatever the estimator learns (one optimiser step of T for
  ``MIEntropy``; nothing for ``KNNEntropy``), with ``x_fake`` treated as a constant.

This module imports nothing of ``train`` or ``plot``.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate
from .nets import MemberLinear, frozen

__all__ = ["EntropyEstimator", "StatisticsNet", "shuffle_within_batch", "jsd_mi", "jsd_mi_loss", "MIEntropy",
           "knn_entropy", "KNNEntropy", "sample_entropy", "gaussian_entropy", "uniform_entropy"]


@runtime_checkable
class EntropyEstimator(Protocol):
    r"""What the generator step needs from an estimator of :math:`H(G(Z))` (chapter 7).

    Any object with these two methods will do (``isinstance(obj, EntropyEstimator)`` checks that
    both are there); ``MIEntropy`` and ``KNNEntropy`` are the two of this module. In every generator
    step ``train.jump_step`` first calls ``update`` on the current fakes, then subtracts
    :math:`\lambda` times ``estimate`` from the generator's loss.
    """

    def estimate(self, z: Tensor, x_fake: Tensor) -> Tensor:
        """The entropy estimate of each member's batch, ``[K]``, up to a constant that does not depend
        on the generator. Differentiable w.r.t. ``x_fake`` (``[K, B, ...]``, the fakes made from the
        noise ``z``, ``[K, B, L]``); whatever the estimator learns gets no gradient from it."""
        ...

    def update(self, z: Tensor, x_fake: Tensor) -> None:
        """Train whatever the estimator learns, one step, on the pairs ``(x_fake, z)``; the fakes are
        constants here (no gradient reaches the generator). An estimator that learns nothing does
        nothing."""
        ...


# --- the mutual-information route (MEG) ------------------------------------------------------------

class StatisticsNet(nn.Module):
    r"""The statistics network :math:`T(x, z)` of the MI estimator: ``([K, B, D], [K, B, L]) -> [K, B]``.

    A member-batched MLP (``nets.MemberLinear`` layers) on the concatenation :math:`[x, z]`. A high
    score means "this x was generated from this z".
    """

    def __init__(self, members: int = 1, x_dim: int = 2, z_dim: int = 4, *, width: int = 64, depth: int = 2,
                 activation: Callable[[], nn.Module] = nn.SiLU):
        super().__init__()
        for name, v in (("members", members), ("x_dim", x_dim), ("z_dim", z_dim), ("width", width),
                        ("depth", depth)):
            _validate.positive(name, v, integer=True)
        dims = [x_dim + z_dim] + [width] * depth + [1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(MemberLinear(members, a, b))
            if i < depth:
                layers.append(activation())
        self.layers = nn.Sequential(*layers)
        self.members, self.x_dim, self.z_dim = members, x_dim, z_dim

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        _validate.members_batch("x", x, dim=self.x_dim)
        _validate.members_batch("z", z, dim=self.z_dim)
        if x.shape[:2] != z.shape[:2] or x.shape[0] != self.members:
            raise ValueError(f"x and z must both be [K={self.members}, B, .] with the same B, "
                             f"got {tuple(x.shape)} and {tuple(z.shape)}")
        return self.layers(torch.cat([x, z], dim=-1)).squeeze(-1)


def shuffle_within_batch(z: Tensor, rng: torch.Generator | None = None) -> Tensor:
    """``z`` with its batch order permuted independently in each member: samples of the product of
    the marginals, :math:`p(x)\\,p(z)`, when paired with the unshuffled x. ``[K, B, L] -> [K, B, L]``.
    The permutations are drawn from ``rng`` on its device (without one, on ``z``'s device)."""
    _validate.members_batch("z", z)
    K, B = z.shape[:2]
    dev = rng.device if rng is not None else z.device
    perm = torch.argsort(torch.rand(K, B, generator=rng, device=dev), dim=1).to(z.device)
    return torch.gather(z, 1, perm.unsqueeze(-1).expand_as(z))


def jsd_mi(t_joint: Tensor, t_marginal: Tensor) -> Tensor:
    r"""The Jensen–Shannon MI estimate of Deep InfoMax (Hjelm et al., 2019), used by MEG. ``[K]``.

    .. math:: \hat I_\text{JSD} = \mathbb{E}_{p(x, z)}\big[-\operatorname{sp}(-T(x, z))\big]
              - \mathbb{E}_{p(x)p(z)}\big[\operatorname{sp}(T(x, \tilde z))\big],
              \qquad \operatorname{sp}(a) = \log(1 + e^a),

    with ``t_joint`` the scores of pairs :math:`(G(z), z)` and ``t_marginal`` those of shuffled pairs,
    each ``[K, B]``. At the optimal T it equals :math:`2\,\mathrm{JSD}(p(x,z)\,\|\,p(x)p(z)) - 2\log 2`:
    it is not I itself but grows with it monotonically, which is all a generator that maximises it
    needs (it ranges from :math:`-2\log 2` for independent x and z up to 0).
    """
    _validate.energies("t_joint", t_joint)
    _validate.energies("t_marginal", t_marginal)
    _validate.same_members("t_joint", t_joint, "t_marginal", t_marginal)
    return -F.softplus(-t_joint).mean(1) - F.softplus(t_marginal).mean(1)


def jsd_mi_loss(t_joint: Tensor, t_marginal: Tensor) -> Tensor:
    r"""The statistics network's loss, :math:`-\hat I_\text{JSD}` (``jsd_mi``), ``[K]``.

    .. math:: L_T = \mathbb{E}_{p(x,z)}\big[\operatorname{sp}(-T)\big] + \mathbb{E}_{p(x)p(z)}\big[\operatorname{sp}(T)\big],

    which is exactly the binary cross-entropy of a classifier with logit T, label 1 on the joint
    pairs and 0 on the shuffled ones.
    """
    return -jsd_mi(t_joint, t_marginal)


class MIEntropy:
    r"""MEG's entropy term: :math:`\hat H(G(Z)) = \hat I_\text{JSD}(G(Z); Z)` up to a constant.

    Holds a ``StatisticsNet`` T and its optimiser. ``update`` takes one step of T on
    ``jsd_mi_loss`` with the fakes held fixed; ``estimate`` returns ``jsd_mi`` on the same kind of
    pairs, differentiable w.r.t. ``x_fake`` (T's parameters get no gradient from it), for the
    generator to maximise. The shuffled z come from this object's own random stream (``seed``).

    How this maps onto MEG's own training code (Kumar et al.'s reference implementation): there T and
    G take one Adam step each (lr :math:`10^{-4}`, betas (0.5, 0.9)) on the same binary cross-entropy,
    averaged over the B joint and B shuffled pairs together, i.e. :math:`-\tfrac12 \hat I_\text{JSD}`,
    added to the generator's energy term with coefficient 1. So MEG's setting is
    ``MIEntropy(..., lr=1e-4, betas=(0.5, 0.9))`` with ``Recipe(entropy_weight=0.5)``; its energy
    takes 5 steps per generator step (``Recipe(dig_per_jump=5)``). One difference: MEG steps T and G
    on the same shuffle at once; here T steps first (``update``), then G sees a fresh shuffle.

    Args:
        members, x_dim, z_dim, width, depth: the statistics network (``StatisticsNet``).
        lr, betas: Adam for T (MEG trains its networks with Adam, betas (0.5, 0.9)).
        seed: seeds the within-batch shuffles (a ``torch.Generator`` on ``device``).
        device: where T lives and the shuffles are drawn.
    """

    def __init__(self, members: int, x_dim: int, z_dim: int, *, width: int = 64, depth: int = 2,
                 lr: float = 1e-3, betas: tuple[float, float] = (0.5, 0.9), seed: int = 0,
                 device: torch.device | str = "cpu"):
        _validate.positive("lr", lr)
        self.net = StatisticsNet(members, x_dim, z_dim, width=width, depth=depth).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=betas)
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.last_loss: Tensor | None = None  # T's loss in the latest update, [K]

    def _scores(self, z: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x, z), self.net(x, shuffle_within_batch(z, self.rng))

    def update(self, z: Tensor, x_fake: Tensor) -> None:
        """One Adam step of T on ``jsd_mi_loss``; the loss of that step, ``[K]``, is kept in ``last_loss``."""
        loss = jsd_mi_loss(*self._scores(z.detach(), x_fake.detach()))
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # members never mix
        self.opt.step()
        self.last_loss = loss.detach()

    def state_dict(self) -> dict:
        """T, its optimiser and the shuffle stream, for ``train``'s checkpoints (chapter 8)."""
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.rng.set_state(state["rng"])

    def estimate(self, z: Tensor, x_fake: Tensor) -> Tensor:
        """``jsd_mi`` of the current T on ``(x_fake, z)``, ``[K]``, differentiable w.r.t. ``x_fake``."""
        with frozen(self.net):
            return jsd_mi(*self._scores(z.detach(), x_fake))


# --- k-nearest-neighbour estimates (Kozachenko–Leonenko) -------------------------------------------

def _log_unit_ball(d: int) -> float:
    return (d / 2) * math.log(math.pi) - math.lgamma(d / 2 + 1)


def _kth_distance(x: Tensor, k: int, chunk: int) -> Tensor:
    """Distance of each point of ``x`` [K, N, D] to its k-th nearest other point: [K, N]."""
    N = x.shape[1]
    out = []
    for start in range(0, N, chunk):
        q = x[:, start:start + chunk]
        d2 = (q.unsqueeze(2) - x.unsqueeze(1)).pow(2).sum(-1)  # [K, n, N], exact (no cdist shortcut)
        idx = torch.arange(start, start + q.shape[1], device=x.device)
        d2[:, torch.arange(q.shape[1], device=x.device), idx] = float("inf")  # not its own neighbour
        out.append(d2.topk(k, dim=-1, largest=False).values[..., -1])
    return torch.cat(out, dim=1)


def knn_entropy(x: Tensor, k: int = 1, *, eps: float = 1e-10, chunk: int = 1024) -> Tensor:
    r"""Kozachenko–Leonenko k-nearest-neighbour entropy of each member's sample, in nats. ``[K, N, D] -> [K]``.

    Samples with more axes, such as images ``[K, N, C, H, W]`` (chapter 8), are points of
    :math:`\mathbb R^{C H W}`: they are flattened, so D is the number of pixels times channels.

    .. math:: \hat H = \psi(N) - \psi(k) + \log V_D + \frac{D}{N}\sum_{i=1}^{N} \log \varepsilon_i,
              \qquad V_D = \frac{\pi^{D/2}}{\Gamma(D/2 + 1)},

    with :math:`\varepsilon_i` the Euclidean distance from :math:`x_i` to its k-th nearest neighbour
    among the other N − 1 points and :math:`\psi` the digamma function. It is asymptotically
    unbiased for densities that are smooth enough (Kozachenko & Leonenko, 1987; Kraskov et al.,
    2004). At finite N it is biased where the density changes on the scale of
    :math:`\varepsilon` (upwards at the edges of a bounded support, where the neighbours are all on
    one side); its standard deviation is at most about :math:`D\sqrt{\psi'(k)/N}` (:math:`\approx 1.28\,D/\sqrt N`
    for k = 1), because :math:`D\log\varepsilon_i` fluctuates like the log of a Gamma(k) variable
    (neighbouring distances are negatively correlated, which makes it somewhat smaller for k = 1).

    It is differentiable w.r.t. ``x``: each point is pushed away from its k-th neighbour with a
    force :math:`\propto D/(N\varepsilon_i)`. Distances are clamped below at ``eps`` so that
    duplicated points (a fully collapsed generator) give a large negative number, not
    :math:`-\infty`. ``chunk`` bounds the memory of the pairwise distances (``chunk × N`` per member).
    """
    if isinstance(x, Tensor) and x.ndim > 3:
        x = x.flatten(2)  # an image is one point of pixel space
    _validate.members_batch("x", x)
    _validate.positive("k", k, integer=True)
    _validate.positive("eps", eps)
    _validate.positive("chunk", chunk, integer=True)
    N, D = x.shape[1], x.shape[2]
    if N <= k:
        raise ValueError(f"x must hold more than k={k} samples per member, got shape {tuple(x.shape)}")
    eps_k = _kth_distance(x, k, chunk).clamp_min(eps ** 2).sqrt()
    const = torch.special.digamma(torch.tensor(float(N))) - torch.special.digamma(torch.tensor(float(k)))
    return const.item() + _log_unit_ball(D) + D * eps_k.log().mean(1)


class KNNEntropy:
    r"""The k-NN entropy of the generator's batch as its entropy term (``knn_entropy``).

    Nothing to train: ``update`` does nothing and ``estimate`` is ``knn_entropy(x_fake, k)``, which
    ignores z. It sees only the B samples of one batch, so it measures spread on the scale of the
    batch's nearest-neighbour distances.
    """

    def __init__(self, k: int = 1, *, eps: float = 1e-10):
        _validate.positive("k", k, integer=True)
        _validate.positive("eps", eps)
        self.k, self.eps = k, eps

    def update(self, z: Tensor, x_fake: Tensor) -> None:
        return None

    def estimate(self, z: Tensor, x_fake: Tensor) -> Tensor:
        return knn_entropy(x_fake, self.k, eps=self.eps)


@torch.no_grad()
def sample_entropy(x: Tensor, k: int = 3, *, chunk: int = 512) -> Tensor:
    r"""Evaluation only: the Kozachenko–Leonenko entropy (``knn_entropy``) of many samples, no graph. ``[K]``.

    k = 3 trades a little more bias at sharp features for a smaller variance
    (:math:`\psi'(3) \approx 0.39` against :math:`\psi'(1) \approx 1.64`).
    """
    return knn_entropy(x.detach(), k, chunk=chunk)


def gaussian_entropy(cov: Tensor) -> Tensor:
    r"""Closed form for tests and toy checks: :math:`H(\mathcal N(\mu, \Sigma)) = \tfrac12 \log\det(2\pi e\,\Sigma)`.
    ``cov`` is ``[D, D]`` or ``[K, D, D]``."""
    D = cov.shape[-1]
    return 0.5 * (D * math.log(2 * math.pi * math.e) + torch.logdet(cov))


def uniform_entropy(low: Tensor, high: Tensor) -> Tensor:
    r"""Closed form: a uniform distribution on a box has :math:`H = \sum_d \log(\text{high}_d - \text{low}_d)`."""
    return torch.log(torch.as_tensor(high) - torch.as_tensor(low)).sum(-1)
