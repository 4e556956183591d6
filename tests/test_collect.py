"""The collector turns both Gymnasium autoreset modes into the same clean transitions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from pgrl.buffers import ReplayBuffer
from pgrl.collect import Collector
from pgrl.errors import CheckpointError, NonFiniteError


class CounterEnv(gym.Env):
    """obs = [t, episode]; reward t + 1; terminates after ``length`` steps (or a time limit)."""

    def __init__(self, length: int = 3, box: bool = False, bad_at: int | None = None) -> None:
        self.length, self.bad_at = length, bad_at
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = (
            gym.spaces.Box(-1.0, 1.0, (1,), np.float32) if box else gym.spaces.Discrete(2)
        )
        self.episode = -1
        self.last_action = None

    def _obs(self) -> np.ndarray:
        value = np.nan if self.bad_at is not None and self.t == self.bad_at else self.t
        return np.array([value, self.episode], dtype=np.float32)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return self._obs(), {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.last_action = action
        self.t += 1
        return self._obs(), float(self.t), self.t >= self.length, False, {}


def make(lengths, mode, time_limit=None, box=False, bad_at=None):  # type: ignore[no-untyped-def]
    def thunk(length):  # type: ignore[no-untyped-def]
        def f():  # type: ignore[no-untyped-def]
            env = CounterEnv(length, box, bad_at)
            if time_limit is not None:
                env = gym.wrappers.TimeLimit(env, time_limit)
            return env

        return f

    return SyncVectorEnv([thunk(n) for n in lengths], autoreset_mode=mode)


def zeros(obs: torch.Tensor) -> torch.Tensor:
    return torch.zeros(obs.shape[0], dtype=torch.int64)


def valid_transitions(rollout) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Per environment, the list of real transitions (s, r, s', terminated, truncated)."""
    out = []
    for n in range(rollout.obs.shape[1]):
        rows = []
        for t in range(rollout.obs.shape[0]):
            if rollout.mask[t, n] == 1:
                rows.append(
                    (
                        tuple(rollout.obs[t, n].tolist()),
                        rollout.rewards[t, n].item(),
                        tuple(rollout.next_obs[t, n].tolist()),
                        bool(rollout.terminated[t, n]),
                        bool(rollout.truncated[t, n]),
                    )
                )
        out.append(rows)
    return out


def test_next_step_reset_step_is_a_placeholder_never_learned_from() -> None:
    collector = Collector(make([2, 3], AutoresetMode.NEXT_STEP), seed=0)
    rollout = collector.rollout(zeros, 6)
    # env 0 (length 2): steps t0, t1 (terminates), t2 is the reset step, t3, t4 (terminates), t5 reset
    assert rollout.mask[:, 0].tolist() == [1, 1, 0, 1, 1, 0]
    assert rollout.truncated[:, 0].tolist() == [False, False, True, False, False, True]
    # the terminal transition's s' is the true final observation [2, episode 0]
    assert rollout.next_obs[1, 0].tolist() == [2.0, 0.0]
    assert rollout.terminated[1, 0]
    # after the reset step the new episode starts from [0, 1]
    assert rollout.obs[3, 0].tolist() == [0.0, 1.0]
    assert collector.env_steps == int(rollout.mask.sum().item()) == 4 + 5


def test_same_step_final_observation_goes_to_next_obs() -> None:
    collector = Collector(make([2, 3], AutoresetMode.SAME_STEP), seed=0)
    rollout = collector.rollout(zeros, 4)
    assert rollout.mask.min().item() == 1.0
    assert rollout.next_obs[1, 0].tolist() == [2.0, 0.0]  # not the reset observation
    assert rollout.obs[2, 0].tolist() == [0.0, 1.0]


def test_both_autoreset_modes_give_the_same_transitions() -> None:
    same = Collector(make([2, 3, 4], AutoresetMode.SAME_STEP), seed=0).rollout(zeros, 12)
    nxt = Collector(make([2, 3, 4], AutoresetMode.NEXT_STEP), seed=0).rollout(zeros, 16)
    for a, b in zip(valid_transitions(same), valid_transitions(nxt), strict=True):
        n = min(len(a), len(b))
        assert n >= 9
        assert a[:n] == b[:n]


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_time_limit_is_truncation_not_termination(mode: AutoresetMode) -> None:
    collector = Collector(make([100], mode, time_limit=3), seed=0)
    rollout = collector.rollout(zeros, 4)
    assert rollout.truncated[2, 0] and not rollout.terminated[2, 0]
    assert rollout.next_obs[2, 0].tolist() == [3.0, 0.0]  # the true final observation
    returns, lengths = collector.stats.pop()
    assert returns == [1.0 + 2.0 + 3.0] and lengths == [3]


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_episodes_runs_each_env_for_exactly_k_episodes(mode: AutoresetMode) -> None:
    collector = Collector(make([2, 5], mode), seed=0)
    rollout = collector.episodes(zeros, episodes_per_env=2)
    ends = (rollout.terminated & (rollout.mask == 1)).sum(0).tolist()
    assert ends == [2, 2]
    assert int(rollout.mask[:, 0].sum()) == 4 and int(rollout.mask[:, 1].sum()) == 10
    returns, lengths = collector.stats.pop()
    assert sorted(lengths) == [2, 2, 5, 5]
    assert sorted(returns) == [3.0, 3.0, 15.0, 15.0]


def test_box_actions_are_clipped_only_for_the_environment() -> None:
    envs = make([5], AutoresetMode.SAME_STEP, box=True)
    collector = Collector(envs, seed=0)
    step = collector.step(torch.tensor([[3.0]]))
    assert step.actions.tolist() == [[3.0]]  # what the policy sampled, for its log-prob
    assert envs.envs[0].unwrapped.last_action.tolist() == [1.0]  # what the env received


def test_non_finite_observation_names_env_and_step() -> None:
    collector = Collector(make([5, 5], AutoresetMode.SAME_STEP, bad_at=2), seed=0)
    collector.step(zeros(torch.zeros(2, 2)))
    with pytest.raises(NonFiniteError, match=r"observation from environment 0 at vector step 2"):
        collector.step(zeros(torch.zeros(2, 2)))


def test_replay_buffer_stores_only_real_transitions_and_wraps() -> None:
    collector = Collector(make([2], AutoresetMode.NEXT_STEP), seed=0)
    buffer = ReplayBuffer(4, obs_dim=2, act_shape=(), discrete=True)
    for _ in range(6):  # 4 real transitions and 2 reset steps
        buffer.add(collector.step(zeros(torch.zeros(1, 2))))
    assert len(buffer) == 4
    assert sorted(buffer.rewards.tolist()) == [1.0, 1.0, 2.0, 2.0]
    assert buffer.terminated.sum().item() == 2
    for _ in range(2):
        buffer.add(collector.step(zeros(torch.zeros(1, 2))))
    assert len(buffer) == 4 and buffer.position == 2  # wrapped: 6 writes into 4 slots
    batch = buffer.sample(64)
    assert batch.obs.shape == (64, 2) and batch.terminated.dtype == torch.float32


def test_replay_buffer_bytes_per_transition_equals_raw_size() -> None:
    buffer = ReplayBuffer(1000, obs_dim=3, act_shape=(1,), discrete=False)
    # s, s' (3 floats each), a (1 float), r (1 float) as float32 = 32 bytes; 2 bool flags
    assert buffer.bytes_per_transition == ReplayBuffer.raw_bytes_per_transition(3, 1) == 34


@pytest.mark.parametrize("box", [False, True])
def test_each_environment_acts_from_its_own_generator_whatever_its_batch(box: bool) -> None:
    # environments 2 and 3 of a run act alike on their own and beside environments 0 and 1
    from pgrl.nets import CategoricalPolicy, GaussianPolicy

    torch.manual_seed(0)
    policy = GaussianPolicy(2, 1, (8,)) if box else CategoricalPolicy(2, 2, (8,))
    whole = Collector(make([9] * 4, AutoresetMode.SAME_STEP, box=box), seed=5)
    share = Collector(make([9] * 2, AutoresetMode.SAME_STEP, box=box), seed=5, first_env=2)
    for _ in range(3):
        a, b = whole.act(policy.sample), share.act(policy.sample)
        torch.testing.assert_close(a[2:], b)  # (continuous: up to the forward's last bits)
        assert torch.equal(whole.random_actions()[2:], share.random_actions())
    assert whole.generator_states()[2:] == share.generator_states()


def test_acting_generators_continue_from_their_saved_states() -> None:
    first = Collector(make([9, 9], AutoresetMode.SAME_STEP, box=True), seed=1)
    first.random_actions()
    saved = first.generator_states()
    expected = first.random_actions()
    second = Collector(make([9, 9], AutoresetMode.SAME_STEP, box=True), seed=1)
    second.set_generator_states(saved)
    assert torch.equal(second.random_actions(), expected)
    with pytest.raises(CheckpointError, match="2 acting generators for 1 environments"):
        Collector(make([9], AutoresetMode.SAME_STEP), seed=1).set_generator_states(saved)


def test_acting_leaves_the_global_generators_alone() -> None:
    from pgrl.nets import CategoricalPolicy

    policy = CategoricalPolicy(2, 2, (8,))
    collector = Collector(make([9, 9], AutoresetMode.SAME_STEP), seed=0)
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    collector.act(policy.sample)
    collector.random_actions()
    assert np.random.random() == before
