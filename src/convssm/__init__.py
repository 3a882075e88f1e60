"""convssm: convolutional state space models (ConvS5) for long spatiotemporal sequences.

Where to start:

- ``convssm.nn.ConvS5``: the ConvS5 stack, ``y, states = ConvS5(dim, state_dim, depth)(x)``
  on (B, T, C, H, W) tensors, and ``step(x_t, states)`` for one frame at a time;
  ``convssm.nn`` also holds the baselines (``ConvLSTM``, ``FrameTransformer``).
- ``convssm.models.VideoPredictor``: frames in, frames out. Load a trained one with
  ``VideoPredictor.from_pretrained(folder or "owner/name" on the Hugging Face Hub)``, then
  ``model.generate(context, horizon, progress=True)``. ``LatentVideoPredictor`` and
  ``VQTokenizer`` are the VQ-latent pipeline.
- ``convssm.data`` (Moving-MNIST, MazeWorld, video folders, your own arrays) and
  ``convssm.metrics`` (PSNR, SSIM, LPIPS, FVD offline).
- The command line, ``convssm`` (``python -m convssm``): ``convssm demo``, ``convssm train
  CONFIG``, ``convssm evaluate CHECKPOINT``, ``convssm generate CHECKPOINT``, ``convssm data``;
  ``convssm COMMAND --help`` for each.
- The documentation: the README and docs/ of the repository (docs/training.md for the CLI,
  docs/custom_data.md for your own arrays, docs/configuration.md for every config key).

``set_value_checks(False)`` turns off the value checks (NaN/inf, ranges) that read tensors
back to the host, which stalls a GPU.
"""

from convssm._checks import set_value_checks, value_checks, value_checks_enabled

__version__ = "0.1.0"

__all__ = ["set_value_checks", "value_checks", "value_checks_enabled"]
