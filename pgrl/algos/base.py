"""The small interface every algorithm implements, and helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from pgrl.encoders import make_encoder, needs_encoder
from pgrl.errors import ConfigError, EnvError
from pgrl.losses import masked_mean
from pgrl.spaces import SpaceInfo

Collection = Literal["rollout", "episodes", "replay"]


@dataclass(frozen=True, kw_only=True)
class LoopSettings:
    """How much the generic loop collects, stores and samples for one algorithm.

    Each algorithm builds it from its config (:meth:`Algorithm.loop_settings`), so the loop
    reads these numbers and nothing else of a config. A field a collection does not use is 0.
    """

    rollout_steps: int = 0
    """"rollout": vector steps T per update (a rollout of N environments × T steps)"""
    episodes_per_env: int = 0
    """"episodes": whole episodes each environment runs per update"""
    buffer_size: int = 0
    """"replay": capacity of the replay buffer (transitions)"""
    learning_starts: int = 0
    """"replay": environment steps of uniformly random actions before the first update"""
    minibatch_size: int = 0
    """"replay": transitions B sampled from the buffer for one update"""
    updates_per_step: int = 0
    """"replay": updates per collected transition"""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """step sizes: constant, or decayed linearly to 0 over the run's budget"""

    @classmethod
    def replay(cls, config: Any) -> LoopSettings:
        """The settings of a replay-buffer algorithm, read from the fields its config shares
        with DDPG's (buffer_size, learning_starts, minibatch_size, updates_per_step)."""
        return cls(
            buffer_size=config.buffer_size,
            learning_starts=config.learning_starts,
            minibatch_size=config.minibatch_size,
            updates_per_step=config.updates_per_step,
        )


class Algorithm(Protocol):
    """What the generic loop needs from an algorithm.

    The algorithm owns its networks and optimizers; the loop owns environments, storage,
    logging, evaluation and checkpoints.
    """

    collection: Collection
    """how the loop feeds it: fixed-length rollouts, whole episodes, or replay minibatches"""

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """Network-side actions ``(N, *action_shape)`` for flat observations ``(N, O)``.

        Both on the CPU, whatever device the networks live on (``pgrl.spaces.to_env_actions``
        turns the actions into what the environment takes).
        """
        ...

    def update(self, data: Any) -> dict[str, Tensor]:
        """One update from a Rollout or a Batch already on the networks' device; returns
        metrics as 0-d tensors."""
        ...

    def modules(self) -> dict[str, nn.Module]:
        """Every network, by name (for checkpoints and weight transfer)."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer, by name (for checkpoints and learning-rate schedules)."""
        ...

    def loop_settings(self) -> LoopSettings:
        """How much the loop collects, stores and samples per update, from the config."""
        ...

    def exploration_state(self) -> Tensor:
        """The state of the exploration-noise process (for checkpoints); empty if none."""
        ...

    def load_exploration_state(self, state: Tensor) -> None:
        """Continue the exploration-noise process from :meth:`exploration_state`'s tensor."""
        ...


@torch.no_grad()
def explained_variance(value: Tensor, returns: Tensor, mask: Tensor | None = None) -> Tensor:
    """How much of the returns' variance the critic explains: SB3's ``train/explained_variance``.

    EV = 1 − Var(G − V) / Var(G), population variances over the real transitions: 1 is a
    perfect fit, 0 no better than the mean of G, below 0 worse. Where Var(G) = 0, SB3 logs
    nan; pgrl stops a run on any non-finite metric, so there it takes scikit-learn's finite
    value (``force_finite``): 1 when Var(G − V) = 0 as well, else 0.

    Args:
        value: ``(...)`` V(s_t) of the rollout, as it was before the update; detached here.
        returns: ``(...)`` G_t, the critic's regression target.
        mask: optional ``(...)`` 1 for real transitions.

    Returns:
        A 0-d tensor (no ``.item()``: the loop averages it with the other update metrics).

    Reference: Stable-Baselines3, ``common/utils.py`` ``explained_variance``, logged over the
    rollout by its A2C and PPO; scikit-learn's ``explained_variance_score``.

    Example:
        >>> round(explained_variance(torch.tensor([1.0, 2.0, 3.0]),
        ...                          torch.tensor([1.0, 2.0, 5.0])).item(), 4)
        0.6923
        >>> explained_variance(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 2.0])).item()
        0.0
    """
    value, returns = value.detach(), returns.detach()
    error = returns - value
    var_returns = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    var_error = masked_mean((error - masked_mean(error, mask)) ** 2, mask)
    finite = (var_error == 0).to(returns.dtype)  # scikit-learn's value when Var(G) = 0
    return torch.where(var_returns > 0, 1.0 - var_error / var_returns, finite)


@torch.no_grad()
def value_mse(value: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """mean (y − V)², the number SB3 logs as ``train/value_loss`` (its ``F.mse_loss``).

    A report, not a loss: it takes the tensors the critic loss was computed from, detached,
    so the update differentiates only its own loss (pgrl's ½(y − V)² or Huber).

    Example:
        >>> value_mse(torch.tensor([0.0, 0.0, 9.0]), torch.tensor([1.0, 3.0, 0.0]),
        ...           torch.tensor([1.0, 1.0, 0.0])).item()
        5.0
    """
    return masked_mean((target.detach() - value.detach()) ** 2, mask)


@torch.no_grad()
def gaussian_std(policy: nn.Module) -> Tensor | None:
    """mean_i exp(log σ_i) of a Gaussian policy with a state-independent log σ: SB3's
    ``train/std``; None for any other policy (categorical, or a network's log σ(s)).

    Example:
        >>> from pgrl.nets import GaussianPolicy
        >>> gaussian_std(GaussianPolicy(3, 2, (8,), log_std_init=0.0)).item()
        1.0
    """
    log_std = getattr(policy, "log_std", None)
    return log_std.detach().exp().mean() if isinstance(log_std, Tensor) else None


def current_learning_rate(optimizer: torch.optim.Optimizer) -> Tensor:
    """The step size the optimizer takes now (after any annealing), as a 0-d float64 tensor
    on the CPU: SB3's ``train/learning_rate``.

    Example:
        >>> net = nn.Linear(1, 1)
        >>> current_learning_rate(torch.optim.SGD(net.parameters(), lr=0.25)).item()
        0.25
    """
    return torch.tensor(float(optimizer.param_groups[0]["lr"]), dtype=torch.float64)


def require_box(name: str, spaces: SpaceInfo, env_id: str = "this environment") -> None:
    """Raise a helpful error when a continuous-only algorithm meets another action space."""
    if spaces.action_kind != "box":
        raise EnvError(
            f"{name} needs a continuous (Box) action space; {env_id} has "
            f"{spaces.act_space or spaces.action_kind}. Try 'ppo', 'a2c' or 'reinforce', which "
            "take Discrete, Box, MultiDiscrete and MultiBinary actions."
        )


NetworkFactory = Callable[..., nn.Module]
"""``networks["encoder"]``: ``factory(observation_space) -> nn.Module`` with ``out_dim``;
a role (``"policy"``, ``"value"``, ...): ``factory(spaces, config) -> nn.Module``."""

# what each role's module must provide (docs/networks.md states the full protocol)
ROLE_METHODS: dict[str, tuple[str, ...]] = {
    "policy": ("sample", "mode", "log_prob_entropy"),
    "value": ("forward",),
    "actor": ("forward",),
    "critic": ("forward",),
}


def check_networks(
    algorithm: str, networks: Mapping[str, NetworkFactory] | None, roles: Sequence[str]
) -> dict[str, NetworkFactory]:
    """The user's network factories, after checking every key names a role of ``algorithm``
    (or is ``"encoder"``) and every value is callable."""
    factories = dict(networks or {})
    valid = ("encoder", *roles)
    for key, factory in factories.items():
        if key not in valid:
            raise ConfigError(
                f"networks: {algorithm} has no network {key!r}; valid keys: {', '.join(valid)}"
            )
        if not callable(factory):
            raise ConfigError(f"networks[{key!r}] must be a callable factory, got {factory!r}")
    return factories


def encoder_maker(
    spaces: SpaceInfo, factories: Mapping[str, NetworkFactory]
) -> Callable[[], nn.Module | None]:
    """A function that builds a fresh encoder for one network, or None when the networks
    take the flat observation directly (a flat vector without images, no custom encoder).

    Each call builds a new encoder: networks never share one (each trains its own).
    """
    custom = factories.get("encoder")
    space = spaces.observation_space
    if custom is not None:

        def build_custom() -> nn.Module:
            encoder = custom(space)
            out_dim = getattr(encoder, "out_dim", None)
            if not isinstance(encoder, nn.Module) or not isinstance(out_dim, int) or out_dim < 1:
                raise ConfigError(
                    "networks['encoder'] must return an nn.Module with an int attribute out_dim "
                    f">= 1 (the width of its features); got {type(encoder).__name__} with "
                    f"out_dim={out_dim!r}"
                )
            return encoder

        return build_custom
    if space is not None and needs_encoder(space):
        return lambda: make_encoder(space)
    return lambda: None


def role_network(
    role: str,
    factories: Mapping[str, NetworkFactory],
    spaces: SpaceInfo,
    config: Any,
    default: Callable[[], nn.Module],
    methods: Sequence[str] | None = None,
) -> Any:  # an nn.Module that meets the role's protocol (the default's, or the user's)
    """The network for ``role``: the user's ``factory(spaces, config)`` when ``networks`` has
    one (checked to be an ``nn.Module`` with the role's methods), else ``default()``."""
    factory = factories.get(role)
    if factory is None:
        return default()
    module = factory(spaces, config)
    needed = ROLE_METHODS.get(role, ()) if methods is None else methods
    missing = [m for m in needed if not callable(getattr(module, m, None))]
    if not isinstance(module, nn.Module) or missing:
        raise ConfigError(
            f"networks[{role!r}] must return an nn.Module with {', '.join(needed)}; got "
            f"{type(module).__name__}" + (f" without {', '.join(missing)}" if missing else "")
        )
    return module


def place(modules: Sequence[nn.Module], device: torch.device | None) -> None:
    """Move every module to ``device`` (before any optimizer is built over them)."""
    if device is not None:
        for module in modules:
            module.to(device)


def to_device(x: Tensor, device: torch.device | None) -> Tensor:
    """``x`` on ``device`` (unchanged when ``device`` is None or ``x`` is already there)."""
    if device is None or x.device == device:
        return x
    return x.to(device)


def to_cpu(x: Tensor) -> Tensor:
    """``x`` on the CPU, where the collector reads actions."""
    return x if x.device.type == "cpu" else x.cpu()


def policy_and_value(
    algorithm: str,
    spaces: SpaceInfo,
    config: Any,
    networks: Mapping[str, NetworkFactory] | None,
    *,
    with_value: bool = True,
) -> tuple[Any, Any]:
    """The stochastic policy and the state-value critic of an on-policy algorithm.

    Each is the user's (``networks["policy"]``, ``networks["value"]``) or the default for the
    spaces: a policy for the action space and V(s), each on its own encoder when the
    observation needs one. ``with_value=False``: no critic (None).
    """
    from pgrl.nets import ValueNet, policy_for  # nets imports this module's protocols

    factories = check_networks(algorithm, networks, ("policy", "value"))
    encoder = encoder_maker(spaces, factories)
    hidden = config.hidden_sizes
    policy = role_network(
        "policy",
        factories,
        spaces,
        config,
        lambda: policy_for(spaces, hidden, config.log_std_init, encoder=encoder()),
    )
    value = None
    if with_value:
        value = role_network(
            "value",
            factories,
            spaces,
            config,
            lambda: ValueNet(spaces.obs_dim, hidden, encoder=encoder()),
        )
    return policy, value
