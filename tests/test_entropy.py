"""Chapter 7's library: entropy estimators (egan_lib.entropy) and the entropy term in train.jump_step.

Tolerances of the k-NN tests come from the estimator's known behaviour, not from tuning:

* standard deviation: D log(eps_i) fluctuates like the log of a Gamma(k) variable, so one estimate
  on N points has a standard deviation of about D sqrt(psi'(k) / N) (an upper bound in practice:
  neighbouring distances are negatively correlated). We test the mean of K independent members
  within 4 standard errors, and each member within 5 standard deviations.
* bias: smooth unbounded densities (Gaussians) have a bias of order (k / N)^(2/D), far below the
  standard error here; a uniform on a box has a boundary bias: the points within about r_k =
  sqrt(k / (pi rho N)) of an edge (a fraction perimeter * r_k / area) see at most half a ball of
  neighbours, which at most doubles eps^D, i.e. adds at most log 2 each. So the bias is at most
  (perimeter * r_k / area) * log 2, which we add to the tolerance.
"""

import math

import pytest
import torch

from egan_lib import entropy, gan, losses, nets, penalties, train


def _sd(D, k, N):
    return D * math.sqrt(float(torch.special.polygamma(1, torch.tensor(float(k)))) / N)


@pytest.mark.parametrize("k", [1, 3])
def test_knn_entropy_of_gaussians(k):
    K, N, D = 8, 2000, 2
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1.0, 0.5])
    x = torch.randn(K, N, D, generator=g) * scale
    h = entropy.knn_entropy(x, k)
    true = entropy.gaussian_entropy(torch.diag(scale ** 2))
    sd = _sd(D, k, N)
    assert h.shape == (K,)
    assert abs(h.mean() - true) < 4 * sd / math.sqrt(K) + (k / N) ** (2 / D)
    assert ((h - true).abs() < 5 * sd).all()


def test_knn_entropy_of_gaussians_in_higher_dimension():
    K, N, D, k = 8, 2000, 3, 1
    x = torch.randn(K, N, D, generator=torch.Generator().manual_seed(1)) * 2.0
    true = entropy.gaussian_entropy(4.0 * torch.eye(D))
    h = entropy.knn_entropy(x, k)
    # in 3D the smooth-density bias is of order (k/N)^(2/3) ~ 0.006, still far below 4 standard errors
    assert abs(h.mean() - true) < 4 * _sd(D, k, N) / math.sqrt(K) + (k / N) ** (2 / D)


@pytest.mark.parametrize("k", [1, 3])
def test_knn_entropy_of_uniform_boxes(k):
    K, N, D = 8, 2000, 2
    low, high = torch.tensor([0.0, -1.0]), torch.tensor([2.0, 0.0])
    x = low + (high - low) * torch.rand(K, N, D, generator=torch.Generator().manual_seed(2))
    true = entropy.uniform_entropy(low, high)
    area, perimeter = 2.0, 6.0
    r_k = math.sqrt(k / (math.pi * (1 / area) * N))
    boundary_bias = perimeter * r_k / area * math.log(2)
    h = entropy.knn_entropy(x, k)
    sd = _sd(D, k, N)
    assert -4 * sd / math.sqrt(K) < float(h.mean() - true) < 4 * sd / math.sqrt(K) + boundary_bias


def test_knn_entropy_scales_exactly():
    # H(s X) = H(X) + D log s holds for the estimator itself, exactly: all distances scale by s
    x = torch.randn(3, 300, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(entropy.knn_entropy(3.0 * x), entropy.knn_entropy(x) + 2 * math.log(3.0))


def test_knn_entropy_members_are_independent_and_chunking_changes_nothing():
    x = torch.randn(3, 200, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    h = entropy.knn_entropy(x, 2)
    for k in range(3):
        torch.testing.assert_close(entropy.knn_entropy(x[k:k + 1], 2), h[k:k + 1])
    torch.testing.assert_close(entropy.knn_entropy(x, 2, chunk=7), h)
    torch.testing.assert_close(entropy.sample_entropy(x, 2, chunk=13), h)


def test_knn_entropy_is_differentiable_and_finite_on_duplicates():
    x = torch.zeros(2, 50, 2, requires_grad=True)
    h = entropy.knn_entropy(x)
    assert torch.isfinite(h).all()
    x2 = torch.randn(2, 50, 2, requires_grad=True)
    (g,) = torch.autograd.grad(entropy.knn_entropy(x2).sum(), x2)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    # spreading the points raises the estimate: the gradient points outwards on average
    assert (g * x2).sum() > 0


def test_knn_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="x"):
        entropy.knn_entropy(torch.randn(10, 2))
    with pytest.raises(ValueError, match="k"):
        entropy.knn_entropy(torch.randn(1, 10, 2), 0)
    with pytest.raises(ValueError, match="more than k"):
        entropy.knn_entropy(torch.randn(1, 3, 2), 3)


def test_shuffle_is_a_permutation_within_each_member():
    z = torch.arange(2 * 50, dtype=torch.float32).reshape(2, 50, 1).expand(2, 50, 3).contiguous()
    s = entropy.shuffle_within_batch(z, torch.Generator().manual_seed(0))
    for k in range(2):
        assert torch.equal(s[k, :, 0].sort().values, z[k, :, 0])
        assert not torch.equal(s[k], z[k])
        assert torch.equal(s[k, :, 0], s[k, :, 2])  # whole rows move together


def test_jsd_mi_formula_and_loss():
    t_j = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    t_m = torch.tensor([[0.5, -0.5], [0.0, 3.0]])
    sp = torch.nn.functional.softplus
    expect = torch.stack([(-sp(-t_j[k])).mean() - sp(t_m[k]).mean() for k in range(2)])
    torch.testing.assert_close(entropy.jsd_mi(t_j, t_m), expect)
    torch.testing.assert_close(entropy.jsd_mi_loss(t_j, t_m), -expect)
    # the loss is binary cross-entropy with label 1 on joint pairs, 0 on shuffled ones
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(entropy.jsd_mi_loss(t_j, t_m)[0],
                               bce(t_j[0], torch.ones(2)) + bce(t_m[0], torch.zeros(2)))
    # T = 0 everywhere (a classifier that knows nothing) gives the floor -2 log 2
    torch.testing.assert_close(entropy.jsd_mi(torch.zeros(1, 4), torch.zeros(1, 4)), torch.tensor([-2 * math.log(2)]))


def test_statistics_net_is_member_batched():
    T = entropy.StatisticsNet(3, 2, 4, width=8, depth=2)
    x, z = torch.randn(3, 5, 2), torch.randn(3, 5, 4)
    out = T(x, z)
    assert out.shape == (3, 5)
    with pytest.raises(ValueError):
        T(x, torch.randn(3, 6, 4))


def test_mi_estimator_ranks_dependence():
    # member 0: x = z[:, :2] (dependent); member 1: x independent of z. The trained JSD estimate
    # must be clearly higher for the dependent pair; for the independent one it stays near -2 log 2.
    torch.manual_seed(0)
    est = entropy.MIEntropy(2, 2, 4, width=32, depth=2, lr=3e-3, seed=1)
    g = torch.Generator().manual_seed(2)
    for _ in range(300):
        z = torch.randn(2, 128, 4, generator=g)
        x = torch.stack([z[0, :, :2], torch.randn(128, 2, generator=g)])
        est.update(z, x)
    z = torch.randn(2, 1024, 4, generator=g)
    x = torch.stack([z[0, :, :2], torch.randn(1024, 2, generator=g)]).requires_grad_(True)
    before = [p.grad.clone() for p in est.net.parameters()]  # left by the last update
    h = est.estimate(z, x)
    assert h[0] > -2 * math.log(2) + 0.5
    assert abs(h[1] + 2 * math.log(2)) < 0.1
    # differentiable w.r.t. x, while T's parameters receive no gradient
    h.sum().backward()
    assert x.grad is not None and all(torch.equal(p.grad, b) for p, b in zip(est.net.parameters(), before))


def test_recipe_validates_the_entropy_fields():
    with pytest.raises(ValueError, match="entropy"):
        train.Recipe(entropy=object())
    with pytest.raises(ValueError, match="entropy_weight"):
        train.Recipe(entropy_weight=1.0)
    with pytest.raises(ValueError, match="entropy_weight"):
        train.Recipe(entropy=entropy.KNNEntropy(), entropy_weight=-1.0)


@pytest.mark.parametrize("make", [lambda: entropy.KNNEntropy(), lambda: entropy.MIEntropy(2, 2, 4, width=8)])
def test_jump_step_minimises_minus_lambda_h_plus_energy(make):
    torch.manual_seed(0)
    U = nets.MLPEnergy(2, width=8, depth=1)
    G = nets.MLPGenerator(2, latent_dim=4, width=8, depth=1)
    z = G.noise(64, torch.Generator().manual_seed(0))
    G0 = nets.MLPGenerator(2, latent_dim=4, width=8, depth=1)
    G0.load_state_dict(G.state_dict())
    est, lam = make(), 0.7
    # the reference gradient, computed by hand (the estimator is updated first, then evaluated)
    if hasattr(est, "net"):
        ref = entropy.MIEntropy(2, 2, 4, width=8)
        ref.net.load_state_dict(est.net.state_dict())
        ref.opt.load_state_dict(est.opt.state_dict())
        ref.rng.set_state(est.rng.get_state())
    else:
        ref = entropy.KNNEntropy()
    x0 = G0(z)
    ref.update(z, x0.detach())
    loss = losses.generator_energy(U(x0)) - lam * ref.estimate(z, x0)
    loss.sum().backward()
    U.zero_grad(set_to_none=True)  # the reference pass touched U; jump_step must not
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    out = train.jump_step(U, G, opt, z, train.Recipe(entropy=est, entropy_weight=lam))
    assert set(out) == {"loss_g", "entropy"} and out["entropy"].shape == (2,)
    for p, p0 in zip(G.parameters(), G0.parameters()):
        torch.testing.assert_close(p, p0 - 0.1 * p0.grad)
    assert all(p.grad is None for p in U.parameters())


def test_train_records_entropy_and_weight_zero_leaves_generator_step_unchanged():
    from egan_lib import data
    ring = data.ring()

    def run(recipe):
        gan_run = gan.GAN2D(members=2, width=16, depth=2, latent_dim=4, recipe=recipe, steps=20, batch=32).build()
        h = gan_run.train(ring, progress=False, log_every=5)
        return gan_run.generator, h

    base = train.Recipe(penalty=penalties.on_real(penalties.r1), gamma=2.0)
    G_a, _ = run(base)
    G_b, h_b = run(train.Recipe(penalty=base.penalty, gamma=2.0, entropy=entropy.KNNEntropy(), entropy_weight=0.0))
    for p, q in zip(G_a.parameters(), G_b.parameters()):
        torch.testing.assert_close(p, q)
    assert h_b["entropy"].shape == (4, 2)


def test_knn_entropy_treats_an_image_as_one_point_of_pixel_space():
    x = torch.randn(2, 300, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(entropy.knn_entropy(x), entropy.knn_entropy(x.flatten(2)))
