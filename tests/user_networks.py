"""Networks a user would write, for the ``networks=`` tests."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.distributions import Categorical

from pgrl.spaces import SpaceInfo


class TinyPolicy(nn.Module):
    """A user's categorical policy: its own layers, sampling with torch.distributions."""

    def __init__(self, spaces: SpaceInfo, config: Any) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(spaces.obs_dim, 32), nn.Tanh())
        self.head = nn.Linear(32, spaces.act_dim)

    def forward(self, obs: Tensor) -> Tensor:
        return self.head(self.body(obs))

    def sample(self, obs: Tensor) -> Tensor:
        return Categorical(logits=self(obs)).sample()

    def mode(self, obs: Tensor) -> Tensor:
        return self(obs).argmax(-1)

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        dist = Categorical(logits=self(obs))
        return dist.log_prob(action), dist.entropy()
