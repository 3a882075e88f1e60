"""Models as :class:`convssm.run.teco_eval.VideoGenerator`: pixels in, pixels out.

- :class:`PredictorGenerator`: a pixel-space ``VideoPredictor`` (deterministic); with
  ``num_actions > 0`` it needs actions (it has no "no action" input), with 0 it takes none.
- :class:`LatentGenerator`: a VQ-latent model (``LatentVideoPredictor``) with its frame
  tokenizer (``VQTokenizer``): the context is encoded to codes, the model samples codes one
  frame at a time (an independent categorical draw per position at ``temperature``, from
  one seeded ``torch.Generator``), and the tokenizer decodes them to frames. Such a model
  runs with or without actions (its "no action" token).

Actions are passed on as the data set has them; the model reads them in its own convention.
"""

from __future__ import annotations

from typing import Any

import torch

from convssm._precision import autocast_context

__all__ = ["PredictorGenerator", "LatentGenerator"]


class PredictorGenerator:
    """``model.generate(context, horizon, actions=...)`` of a VideoPredictor, under no_grad.

    Args:
        model: a ``VideoPredictor`` (or anything with that ``generate`` and ``num_actions``).
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (autocast for the model).
    """

    def __init__(self, model: torch.nn.Module, precision: str = "fp32") -> None:
        self.model = model
        self.precision = precision
        self.takes_actions = self.needs_actions = int(getattr(model, "num_actions", 0)) > 0

    @torch.no_grad()
    def __call__(
        self, context: torch.Tensor, horizon: int, actions: torch.Tensor | None
    ) -> torch.Tensor:
        self.model.eval()
        kwargs = {} if actions is None else {"actions": actions}
        with autocast_context(context.device, self.precision):
            return self.model.generate(context, horizon, **kwargs)


class LatentGenerator:
    """Tokenizer-encode, sample codes with the latent model, tokenizer-decode.

    Args:
        model: has ``generate(codes (B, T_c, h, w), horizon, actions=None, temperature=,
            generator=) -> (B, horizon, h, w)`` and ``num_actions``.
        tokenizer: has ``encode(frames (B, T, C, H, W)) -> codes (B, T, h, w)`` and
            ``decode(codes) -> frames`` in [-1, 1].
        temperature, seed: sampling temperature and the seed of the one generator.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: torch.nn.Module,
        *,
        temperature: float = 1.0,
        seed: int = 0,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.precision = precision
        self.rng = torch.Generator(device=torch.device(device)).manual_seed(seed)
        self.takes_actions = int(getattr(model, "num_actions", 0)) > 0
        self.needs_actions = False

    @torch.no_grad()
    def __call__(
        self, context: torch.Tensor, horizon: int, actions: torch.Tensor | None
    ) -> torch.Tensor:
        self.model.eval()
        self.tokenizer.eval()
        kwargs: dict[str, Any] = {"temperature": self.temperature, "generator": self.rng}
        if hasattr(self.model, "sampling_options"):  # TECO: its config's draft-and-revise
            kwargs.update(self.model.sampling_options())
        with autocast_context(context.device, self.precision):
            codes = self.tokenizer.encode(context)
            sampled = self.model.generate(codes, horizon, actions=actions, **kwargs)
            frames = self.tokenizer.decode(sampled)
        return frames.float().clamp(-1.0, 1.0)
