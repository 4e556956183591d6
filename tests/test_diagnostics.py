"""pgrl.diagnostics: the training callback changes nothing, its statistics are right, the
ladder orders the estimators on CartPole, and the estimates agree with exact values on
finite MDPs."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import pgrl
from pgrl.collect import Collector
from pgrl.diagnostics import GradientDiagnostics, gradient_stats
from pgrl.diagnostics.calibration import calibrate
from pgrl.diagnostics.callback import (
    acting_copy,
    batched_flat_grads,
    chunk_gradients,
    episode_returns,
    flat_grad,
    policy_parameters,
    prepared_batch,
    surrogate_loss,
)
from pgrl.diagnostics.cli import main
from pgrl.diagnostics.ladder import ladder
from pgrl.diagnostics.stats import (
    chunk_masks,
    completed_steps,
    paired_gain,
    surrogate_correlation,
    value_fit,
)
from pgrl.errors import ConfigError
from pgrl.logger import read_metrics


def _same_parameters(a: pgrl.Agent, b: pgrl.Agent) -> bool:
    for name, module in a.algorithm.modules().items():
        other = b.algorithm.modules()[name].state_dict()
        for key, tensor in module.state_dict().items():
            if not torch.equal(tensor, other[key]):
                return False
    return True


@pytest.mark.parametrize(("algo", "steps"), [("a2c", 2_400), ("ppo", 2_048)])
def test_diagnostics_leave_training_unchanged_and_log_finite_columns(algo, steps, tmp_path):
    # every=2: A2C (8 envs × 5 steps) makes about 60 updates, PPO (8 × 32) about 8; PPO also
    # measures its surrogate and return gains (4 episodes before and after each diagnosis)
    plain = pgrl.train(algo, "CartPole-v1", steps=steps, seed=3, eval_episodes=0)
    diagnostics = GradientDiagnostics(every=2, surrogate_episodes=4 if algo == "ppo" else 0)
    watched = pgrl.train(
        algo,
        "CartPole-v1",
        steps=steps,
        seed=3,
        eval_episodes=0,
        callbacks=[diagnostics],
        run_dir=tmp_path / "run",
        log_interval=512,
    )
    assert _same_parameters(plain, watched)
    assert diagnostics.updates >= 8 and len(diagnostics.records) == diagnostics.updates // 2
    # the columns reach metrics.csv under their '/' names, and every logged value is finite
    columns = read_metrics(tmp_path / "run")
    names = [c for c in columns if c.startswith("diag/")]
    expected = {
        "diag/grad_norm",
        "diag/cov_trace",
        "diag/snr",
        "diag/noise_scale",
        "diag/pairwise_cosine",
        "diag/fresh_cosine",
        "diag/fresh_seconds",
        "diag/seconds",
        "diag/value_ev",
        "diag/value_rel_error",
    }
    if algo == "ppo":
        expected |= {
            "diag/surrogate_gain",
            "diag/return_gain",
            "diag/return_gain_se",
            "diag/surrogate_seconds",
            "diag/surrogate_return_corr",
        }
    assert expected <= set(names)
    for name in names:
        values = columns[name][~torch.from_numpy(columns[name]).isnan().numpy()]
        assert len(values) > 0, name
        assert all(math.isfinite(v) for v in values), name
    for record in diagnostics.records:
        assert -1.0 <= record["diag/fresh_cosine"] <= 1.0
        assert record["diag/cov_trace"] > 0
        if algo == "ppo":  # the update raises the surrogate it optimizes, on its own batch
            assert record["diag/surrogate_gain"] > 0
            assert record["diag/return_gain_se"] >= 0
    if algo == "ppo":
        assert diagnostics.surrogate_correlation == surrogate_correlation(diagnostics.records)
        assert -1.0 <= diagnostics.surrogate_correlation <= 1.0


def test_diagnostics_on_replay_batches_leave_sac_unchanged():
    # SAC's policy loss samples actions from torch's global generator: it must be restored
    config = {"learning_starts": 100, "hidden_sizes": (32, 32)}
    plain = pgrl.train("sac", "Pendulum-v1", steps=160, seed=1, eval_episodes=0, config=config)
    diagnostics = GradientDiagnostics(every=10)
    watched = pgrl.train(
        "sac",
        "Pendulum-v1",
        steps=160,
        seed=1,
        eval_episodes=0,
        config=config,
        callbacks=[diagnostics],
    )
    assert _same_parameters(plain, watched)
    assert diagnostics.records and all(math.isfinite(r["diag/snr"]) for r in diagnostics.records)
    assert "diag/fresh_cosine" not in diagnostics.records[0]  # off-policy: no fresh sample


def test_gradient_stats_by_hand():
    # chunks (1,0), (3,0), (1,2), (3,−2): ḡ = (2, 0), per-coordinate variances 4/3 and 8/3
    # (divide by K − 1 = 3), S = 4, ‖G‖²^ = 4 − 4/4 = 3, SNR = 3 / 1 = 3, B_simple = 8 / 3
    grads = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.0, 2.0], [3.0, -2.0]])
    stats = gradient_stats(grads, batch_size=8)
    assert stats.grad_norm == pytest.approx(2.0)
    assert stats.cov_trace == pytest.approx(4.0)
    assert stats.snr == pytest.approx(3.0)
    assert stats.noise_scale == pytest.approx(8 / 3)
    assert stats.per_sample_trace == pytest.approx(8.0)
    # cosines: (1,0)·(3,0) = 1; (1,0)·(1,2) = 1/√5; (1,0)·(3,−2) = 3/√13; ...
    unit = torch.nn.functional.normalize(grads, dim=1)
    pairs = [float(unit[i] @ unit[j]) for i in range(4) for j in range(4) if i != j]
    assert stats.pairwise_cosine == pytest.approx(sum(pairs) / 12)


def test_gradient_stats_unbiased_signal_and_noise():
    # K Gaussian chunks around G: E[signal] = ‖G‖², E[S] = tr Σ_chunk, over many repeats
    generator = torch.Generator().manual_seed(0)
    g, sigma, k, repeats = torch.tensor([1.0, -2.0, 0.5]), 1.5, 8, 4_000
    signal, trace = [], []
    for _ in range(repeats):
        chunks = g + sigma * torch.randn(k, 3, generator=generator)
        s = gradient_stats(chunks, batch_size=k)
        signal.append(s.signal)
        trace.append(s.cov_trace)
    signal_t, trace_t = torch.tensor(signal), torch.tensor(trace)
    assert abs(float(signal_t.mean()) - 5.25) < 4 * float(signal_t.std()) / repeats**0.5
    assert abs(float(trace_t.mean()) - 3 * sigma**2) < 4 * float(trace_t.std()) / repeats**0.5


def test_chunk_masks_split_envs_then_time_and_keep_placeholders_out():
    mask = torch.ones(6, 8)
    mask[5, 0] = 0.0
    masks, axis = chunk_masks(mask, 4)
    assert axis == "env" and masks.shape == (4, 6, 8)
    assert torch.equal(masks.sum(0), mask)  # disjoint, covering every real row
    assert torch.equal(masks[0][:, :2], mask[:, :2]) and masks[0][:, 2:].sum() == 0
    masks, axis = chunk_masks(torch.ones(8, 2), 4)
    assert axis == "time" and masks[1, 2:4].sum() == 4 and masks[1].sum() == 4
    masks, axis = chunk_masks(torch.ones(10), 4)
    assert axis == "row" and masks.sum(1).tolist() == [3.0, 3.0, 2.0, 2.0]


def test_completed_steps_stop_at_a_cut():
    # env 0: terminates at t=2; env 1: cut (truncated) at t=1, then runs to the rollout end
    term = torch.tensor([[False, False], [False, False], [True, False], [False, False]])
    trunc = torch.tensor([[False, False], [False, True], [False, False], [False, False]])
    done = completed_steps(term, trunc, torch.ones(4, 2))
    assert done.tolist() == [[True, False], [True, False], [True, False], [False, False]]


def test_value_fit_limits():
    returns = torch.tensor([1.0, 2.0, 4.0])
    assert value_fit(returns, returns) == (1.0, 0.0)
    ev, _ = value_fit(torch.full((3,), float(returns.mean())), returns)
    assert ev == pytest.approx(0.0)


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="chunks"):
        GradientDiagnostics(every=1, chunks=2)
    with pytest.raises(ConfigError, match="every"):
        GradientDiagnostics(every=0)
    with pytest.raises(ConfigError, match="surrogate_episodes"):
        GradientDiagnostics(every=1, surrogate_episodes=1)  # no standard error from one
    with pytest.raises(ConfigError, match="surrogate_episodes=0"):
        pgrl.train(
            "a2c",
            "CartPole-v1",
            steps=40,
            eval_episodes=0,
            callbacks=[GradientDiagnostics(every=1, surrogate_episodes=2)],
        )


def test_paired_gain_and_surrogate_correlation_by_hand():
    # d = (1, −1, 3, 1): mean 1, sample variance (0 + 4 + 4 + 0)/3 = 8/3, se = √(8/3)/2
    gain, se = paired_gain(torch.tensor([2.0, 0.0, 5.0, 3.0]), torch.tensor([1.0, 1.0, 2.0, 2.0]))
    assert gain == 1.0 and se == pytest.approx(math.sqrt(8 / 3) / 2)
    # x = (0, 1, 2), y = (1, 0, 2): centred (−1, 0, 1)·(0, −1, 1) = 1, norms √2 √2: r = 1/2
    records = [
        {"diag/surrogate_gain": x, "diag/return_gain": y}
        for x, y in ((0.0, 1.0), (1.0, 0.0), (2.0, 2.0))
    ]
    assert surrogate_correlation(records) == pytest.approx(0.5)
    assert math.isnan(surrogate_correlation(records[:2]))  # fewer than 3 pairs


def test_return_gain_uses_common_random_numbers():
    # the same policy twice, from the same seed: every paired episode is identical, so the
    # gain is exactly 0 with no error; the stochastic policy differs between seeds
    agent = pgrl.train("ppo", "CartPole-v1", steps=512, seed=0, eval_episodes=0)
    algorithm: Any = agent.algorithm
    envs = agent.environment().make_vec(4)
    device = torch.device("cpu")
    try:
        frozen = acting_copy(algorithm)
        old = episode_returns(frozen, envs, 5, device)
        new = episode_returns(algorithm.act, envs, 5, device)
        other = episode_returns(algorithm.act, envs, 6, device)
    finally:
        envs.close()
    assert paired_gain(new, old) == (0.0, 0.0)
    assert not torch.equal(old, other)
    assert bool((old >= 8).all())  # whole CartPole episodes (at least 8 steps each)


def test_surrogate_gain_is_measured_on_the_batch_prepared_before_the_update():
    # PPO with observation normalization: prepare absorbs the rollout into the statistics;
    # a constant learning rate (the linear schedule ends a run at 0)
    config = {"normalize_obs": True, "lr_schedule": "constant"}
    agent = pgrl.train("ppo", "CartPole-v1", steps=512, seed=1, eval_episodes=0, config=config)
    algorithm: Any = agent.algorithm
    envs = agent.environment().make_vec(8)
    try:
        rollout = Collector(envs, 3).rollout(algorithm.act, 32)
    finally:
        envs.close()
    statistics = {k: v.clone() for k, v in algorithm.obs_normalizer.state_dict().items()}
    data = prepared_batch(algorithm, rollout)
    for key, value in algorithm.obs_normalizer.state_dict().items():  # put back
        assert torch.equal(value, statistics[key])
    # at θ_old, ρ = 1: −L^CLIP = −mean Â (0 with normalized advantages)
    before = surrogate_loss(algorithm, data)
    assert before == pytest.approx(-float(data.advantage.mean()), abs=1e-6)
    algorithm.update(rollout)
    assert surrogate_loss(algorithm, data) < before  # the update raised its surrogate
    # the same rollout prepared again after the update has π_θ' as π_old: ρ = 1, no gain
    again = prepared_batch(algorithm, rollout)
    assert surrogate_loss(algorithm, again) == pytest.approx(
        -float(again.advantage.mean()), abs=1e-6
    )


def test_ladder_orders_variance_on_cartpole():
    # a2c trained 5,000 steps (seed 0), then 112 episodes (7 per environment × 16) measured,
    # one gradient each; measured variance ratios to r(τ) at seeds 0-3:
    # G_t 0.27-0.32, G_t − V̂ 0.15-0.20: the ordering has a wide margin
    result = ladder(episodes=100, seed=0, reference_multiple=1, train_steps=5_000)
    variance = {row.name: row.variance for row in result.rows}
    assert result.episodes >= 100
    assert variance["r(τ)"] > variance["G_t"] > variance["G_t − V̂"]
    for row in result.rows:
        assert math.isfinite(row.snr) and -1.0 <= row.cosine <= 1.0
    # the baseline rungs point closer to the large-sample gradient than r(τ)
    assert result.row("G_t − V̂").cosine > result.row("r(τ)").cosine


def test_diagnose_cli_writes_table_report_and_figure(tmp_path, capsys):
    code = main(["--episodes", "20", "--batch-episodes", "5", "--train-steps", "1000",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    assert "G_t − V̂" in capsys.readouterr().out
    assert {p.name for p in tmp_path.iterdir()} == {"ladder.md", "ladder.json", "ladder.png"}
    assert "| r(τ) |" in (tmp_path / "ladder.md").read_text()


@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_on_finite_mdp_matches_exact_values(seed):
    # 300 batches of n = 32 trajectories (8 chunks of 4) on the random MDP of `seed`; exact
    # ∇J from the policy gradient theorem, tr Σ of one trajectory from 100,000 trajectories
    c = calibrate(seed=seed, repeats=300, reference_trajectories=100_000)
    # the chunk estimates of ‖∇J‖² and tr Σ are unbiased: within 4 standard errors
    assert abs(c.signal - c.exact_signal) < 4 * c.signal_se
    assert abs(c.trace - c.exact_trace) < 4 * math.hypot(c.trace_se, c.exact_trace_se)
    # pooled SNR and B_simple: ratios of those means, within 4 delta-method standard errors
    relative = math.hypot(c.signal_se / c.signal, c.trace_se / c.trace)
    assert abs(c.noise_scale / c.exact_noise_scale - 1) < 4 * relative
    assert abs(c.snr / c.exact_snr - 1) < 4 * relative
    # the fresh-sample cosine is the product of the two batches' cosines with ∇J ...
    assert abs(c.fresh_cosine - c.fresh_cosine_predicted) < 4 * math.hypot(
        c.fresh_cosine_se, c.exact_cosine_se
    )
    # ... so it under-reads cos(ĝ_n, ∇J), by a little for m = 4
    assert c.fresh_cosine < c.exact_cosine < c.fresh_cosine + 0.05


@pytest.mark.parametrize(
    ("algo", "config"),
    [
        ("ppo", {"normalize_obs": True, "normalize_reward": True}),
        ("reinforce", {"baseline": "value"}),
    ],
)
def test_diagnostics_leave_normalizers_and_episodic_runs_unchanged(algo, config):
    # PPO's policy_objective prepares the rollout as the update does and puts the running
    # statistics back; REINFORCE collects whole episodes (the fresh sample too)
    plain = pgrl.train(algo, "CartPole-v1", steps=1_024, seed=2, eval_episodes=0, config=config)
    surrogate_episodes = 2 if algo == "ppo" else 0
    diagnostics = GradientDiagnostics(
        every=1, fresh_multiple=2, surrogate_episodes=surrogate_episodes
    )
    watched = pgrl.train(
        algo,
        "CartPole-v1",
        steps=1_024,
        seed=2,
        eval_episodes=0,
        config=config,
        callbacks=[diagnostics],
    )
    assert _same_parameters(plain, watched)
    assert diagnostics.records
    assert all(math.isfinite(r["diag/fresh_cosine"]) for r in diagnostics.records)
    if surrogate_episodes:
        assert all(math.isfinite(r["diag/return_gain"]) for r in diagnostics.records)


def test_vectorized_chunk_gradients_equal_one_backward_pass_each():
    agent = pgrl.train("a2c", "CartPole-v1", steps=400, seed=0, eval_episodes=0)
    collector = Collector(agent.environment().make_vec(8), 11)
    rollout = collector.rollout(agent.algorithm.act, 5)
    algorithm: Any = agent.algorithm
    params = policy_parameters(algorithm)
    before = [None if p.grad is None else p.grad.clone() for p in params]
    masks, _ = chunk_masks(rollout.mask, 4)
    losses = algorithm.policy_objective(rollout, masks)
    batched = batched_flat_grads(losses, params)
    looped = torch.stack([flat_grad(loss, params, retain_graph=True) for loss in losses])
    torch.testing.assert_close(batched, looped)
    # the rows-weighted mean of the chunk gradients is the whole batch's gradient
    _, whole, axis, size = chunk_gradients(algorithm, rollout, 4)
    direct = flat_grad(algorithm.policy_objective(rollout), params, retain_graph=False)
    torch.testing.assert_close(whole, direct)
    assert axis == "env" and size == float(rollout.mask.sum())
    for p, old in zip(params, before, strict=True):  # the optimizer's .grad buffers untouched
        if old is None:
            assert p.grad is None
        else:
            assert p.grad is not None and torch.equal(p.grad, old)


def test_the_cli_flag_and_the_api_argument_turn_diagnostics_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv

    from pgrl.cli import main

    run = tmp_path / "r"
    argv = ["train", "a2c", "--steps", "400", "--diagnostics", "2", "--run-dir", str(run)]
    assert main([*argv, "--quiet", "--eval-episodes", "0"]) == 0
    header = next(csv.reader((run / "metrics.csv").open()))
    assert "diag/snr" in header and "diag/noise_scale" in header
    with pytest.raises(pgrl.errors.ConfigError, match="diagnostics_every must be"):
        pgrl.train("a2c", steps=100, diagnostics_every=-1)


def test_the_cli_measures_ppos_surrogate_against_the_return(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv

    from pgrl.cli import main as pgrl_main

    run = tmp_path / "r"
    argv = ["train", "ppo", "--steps", "2048", "--diagnostics", "4", "--run-dir", str(run)]
    argv += ["--diagnostics-surrogate", "2", "--quiet", "--eval-episodes", "0"]
    argv += ["--set", "num_envs=2", "--set", "rollout_steps=128", "--set", "minibatch_size=64"]
    assert pgrl_main(argv) == 0
    header = next(csv.reader((run / "metrics.csv").open()))
    assert "diag/surrogate_gain" in header and "diag/return_gain" in header
    with pytest.raises(ConfigError, match="needs diagnostics_every"):
        pgrl.train("ppo", steps=100, diagnostics_surrogate=2)
