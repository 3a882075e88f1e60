"""The training objectives (convssm.train.objectives) give the losses that the models'
``forward`` computed before the objectives moved out of it: reference values recorded from
that code, for every model kind and option, in float64 (1e-6 relative), and through
``train_step`` (float64 models, float32 loss totals)."""

from __future__ import annotations

import pytest
import torch

from convssm.models import LatentVideoPredictor, VideoPredictor, build_model
from convssm.train import train_step
from convssm.train.config import config_from_dict
from convssm.train.distributed import DistributedContext
from convssm.train.objectives import (
    drop_loss_positions,
    latent_prediction_loss,
    pixel_loss,
    video_prediction_loss,
)
from convssm.train.state import create_train_state
from convssm.train.step import recall_frame_weights, sequence_loss

# recorded from the models' forward(...).loss (and train.step.weighted_pixel_loss) before
# the losses left forward
REF = {
    "vp_convs5_tf_mse_l1": 0.9221747949279608,
    "vp_convs5_tf_mse": 0.993659387603761,
    "vp_convs5_roll2_mse_l1": 0.8554707368314884,
    "vp_convs5_roll3_mse_detach": 0.953913933586206,
    "vp_convlstm_tf_mse_l1": 0.5505790575155887,
    "vp_convlstm_tf_mse": 0.5091856082516091,
    "vp_convlstm_roll2_mse_l1": 0.5765629348444317,
    "vp_convlstm_roll3_mse_detach": 0.5268221205035686,
    "vp_transformer_tf_mse_l1": 0.6333265559314489,
    "vp_transformer_tf_mse": 0.6198610191720743,
    "vp_transformer_roll2_mse_l1": 0.6251115690956841,
    "vp_transformer_roll3_mse_detach": 0.6088300365297322,
    "vp_actions_tf": 0.8210335569371676,
    "vp_actions_roll2": 0.8352596822363243,
    "vp_norm_tf_mse_l1": 0.4840945386439368,
    "vp_norm_tf_mse": 0.4227073250038873,
    "vp_norm_roll2": 0.5105920224193565,
    "vp_tbptt_4_2": 0.9221747949279608,
    "vp_recall_w07_mse": 0.9434695839881897,
    "vp_recall_w07_mse_l1": 0.8864212036132812,
    "lvp_convs5_ls001": 2.8742316561707426,
    "lvp_convlstm_ls001": 2.8626788114015205,
    "lvp_transformer_ls001": 2.896134646458731,
    "lvp_ls01": 2.8713503716592994,
    "lvp_ls0": 2.874551798894236,
    "lvp_actions": 2.9080762493614594,
    "lvp_causal_eval": 2.7908065436590266,
    "lvp_causal_eval_noact": 2.9348131058175952,
    "lvp_causal_dropout_train_seed0": 2.8304313278022377,
    "lvp_causal_dropout_train_seed1": 2.895188321674385,
    "lvp_causal_dropout_train_seed2": 2.895188321674385,
    "lvp_drop05_seed0": 2.8383169246796975,
    "lvp_drop05_seed0_positions": [0, 4],
    "lvp_drop05_seed1": 2.8383169246796975,
    "lvp_drop05_seed1_positions": [0, 4],
    "lvp_drop05_seed2": 2.753773239878166,
    "lvp_drop05_seed2_positions": [3, 4],
    "lvp_drop05_actions_seed0": 3.000380829569885,
    "lvp_drop05_eval": 2.9080762493614594,
    "step_vp_tf": [0.9221748113632202, 0.7512015700340271, 0.7214253544807434],
    "step_vp_mse_roll2": [0.9110773801803589, 0.6959646344184875, 0.9459620118141174],
    "step_vp_tbptt2": [0.9221748113632202, 0.7512015700340271, 0.7293903827667236],
    "step_vp_accum2": [0.9221748113632202, 0.7512015700340271, 0.7214254140853882],
    "step_vp_recall": [1.0582622289657593, 1.0760915279388428, 0.9345935583114624],
    "step_lvp_drop05": [2.9481067657470703, 2.9253997802734375, 2.8378665447235107],
    "step_lvp_causal": [2.8304312229156494, 3.040628671646118, 2.548841953277588],
}

OPT = {
    "convs5": {"depth": 2, "state_dim": 4, "norm_groups": 4},
    "convlstm": {"depth": 2},
    "transformer": {"embed_dim": 16, "mlp_dim": 16, "heads": 2, "depth": 1, "window": 16,
                    "max_len": 32},
}  # fmt: skip
STATS = {"count": 10, "mean": [290.0, 0.5], "std": [4.0, 0.1],
         "min": [280.0, 0.5], "max": [300.0, 0.5]}  # fmt: skip
K, S = 12, 4  # the latent model's codebook size and grid
LOPT = {
    "convs5": dict(state_dim=4, depth=2, norm_groups=4),
    "convlstm": dict(depth=2),
    "transformer": dict(embed_dim=16, depth=2, heads=2, mlp_dim=32, max_len=64),
}


def _close(got, key):
    torch.testing.assert_close(float(got), REF[key], rtol=1e-6, atol=0, msg=key)


def _vp(name="convs5", **kw):
    torch.manual_seed(0)
    args = dict(image_size=8, encoder_widths=[4, 8], norm_groups=4, dim=8, sequence_model=name,
                sequence_options=OPT[name])  # fmt: skip
    return VideoPredictor(**{**args, **kw}).double().eval()


def _video(t=7, c=1):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(2, t, c, 8, 8, generator=g, dtype=torch.float64) * 2 - 1) * 0.9


def _lvp(name="convs5", **kw):
    torch.manual_seed(0)
    args = dict(dim=8, sequence_model=name, sequence_options=LOPT[name], code_embed_dim=6,
                encoder_widths=(8,), decoder_widths=(8,), decoder_blocks=2,
                norm_groups=4)  # fmt: skip
    return LatentVideoPredictor(K, S, **{**args, **kw}).double()


def _codes():
    return torch.randint(0, K, (2, 6, S, S), generator=torch.Generator().manual_seed(0))


def _acts():
    return torch.randint(0, 3, (2, 6), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
@pytest.mark.parametrize("name", sorted(OPT))
def test_video_predictor_losses_teacher_forcing_and_rollout(name):
    m, v = _vp(name), _video()
    _close(video_prediction_loss(m(v)), f"vp_{name}_tf_mse_l1")
    _close(video_prediction_loss(m(v), "mse"), f"vp_{name}_tf_mse")
    _close(video_prediction_loss(m(v, rollout_context=2)), f"vp_{name}_roll2_mse_l1")
    out = m(v, rollout_context=3, detach_feedback=True)
    _close(video_prediction_loss(out, "mse"), f"vp_{name}_roll3_mse_detach")


@torch.no_grad()
def test_video_predictor_losses_with_actions_and_normalised_fields():
    m = _vp(num_actions=3)
    a = torch.randint(0, 3, (2, 7), generator=torch.Generator().manual_seed(2))
    _close(video_prediction_loss(m(_video(), a)), "vp_actions_tf")
    _close(video_prediction_loss(m(_video(), a, rollout_context=2)), "vp_actions_roll2")
    m = _vp(image_channels=2, normalization=STATS)
    scale = torch.tensor([10.0, 0.0], dtype=torch.float64).view(2, 1, 1)
    x = _video(c=2) * scale + torch.tensor([290.0, 0.5], dtype=torch.float64).view(2, 1, 1)
    out = m(x)
    _close(video_prediction_loss(out), "vp_norm_tf_mse_l1")
    _close(video_prediction_loss(out, "mse"), "vp_norm_tf_mse")
    _close(video_prediction_loss(m(x, rollout_context=2)), "vp_norm_roll2")
    # scored in the working range, bit for bit: the output carries it, no mapping back
    unit = m.normalizer.normalize(x)
    assert torch.equal(out.working_targets, unit[:, 1:])
    assert torch.equal(out.predictions, m.normalizer.denormalize(out.working_predictions))


@torch.no_grad()
def test_tbptt_pieces_and_recall_weights():
    m, v = _vp(), _video()
    states, total = None, 0.0
    for s, e in ((0, 4), (4, 6)):
        loss, states = sequence_loss(m, v[:, s : e + 1], None, states)
        total = total + loss * (e - s) / 6
    _close(total, "vp_tbptt_4_2")
    recall = torch.zeros(2, 7, dtype=torch.bool)
    recall[:, -2:] = True
    w = recall_frame_weights(recall, 0.7)
    out = m(v)
    _close(video_prediction_loss(out, "mse", w), "vp_recall_w07_mse")
    _close(video_prediction_loss(out, "mse_l1", w), "vp_recall_w07_mse_l1")


@torch.no_grad()
def test_latent_losses_label_smoothing_actions_and_causal_masking():
    codes, acts = _codes(), _acts()
    for name in sorted(LOPT):
        m = _lvp(name).eval()
        _close(latent_prediction_loss(m(codes), codes, m.config), f"lvp_{name}_ls001")
    for ls, key in ((0.1, "lvp_ls01"), (0.0, "lvp_ls0")):
        m = _lvp(label_smoothing=ls).eval()
        _close(latent_prediction_loss(m(codes), codes, m.config), key)
    m = _lvp(num_actions=3).eval()
    _close(latent_prediction_loss(m(codes, acts), codes, m.config), "lvp_actions")
    m = _lvp(num_actions=3, causal_masking=True, mask_context=3).eval()
    _close(latent_prediction_loss(m(codes, acts), codes, m.config), "lvp_causal_eval")
    _close(latent_prediction_loss(m(codes), codes, m.config), "lvp_causal_eval_noact")
    m = _lvp(num_actions=3, causal_masking=True, mask_context=3, action_dropout=0.5).train()
    for seed in range(3):
        torch.manual_seed(seed)
        out = m(codes, acts)
        _close(latent_prediction_loss(out, codes, m.config), f"lvp_causal_dropout_train_seed{seed}")


@torch.no_grad()
def test_latent_drop_loss_draws_and_scores_the_same_positions():
    codes = _codes()
    m = _lvp(drop_loss_rate=0.5).train()
    for seed in range(3):
        torch.manual_seed(seed)
        loss, _ = sequence_loss(m, codes, None, kind="latent_video_predictor")
        _close(loss, f"lvp_drop05_seed{seed}")
        torch.manual_seed(seed)
        positions = drop_loss_positions(5, 0.5)
        assert positions.tolist() == REF[f"lvp_drop05_seed{seed}_positions"]
        assert m(codes, positions=positions).logits.shape == (2, 2, K, S, S)
    m = _lvp(drop_loss_rate=0.5, num_actions=3).train()
    torch.manual_seed(0)
    loss, _ = sequence_loss(m, codes, _acts(), kind="latent_video_predictor")
    _close(loss, "lvp_drop05_actions_seed0")
    m.eval()  # out of training every position is scored
    _close(sequence_loss(m, codes, _acts(), kind="latent_video_predictor")[0], "lvp_drop05_eval")
    assert drop_loss_positions(5, 0.0) is None


VPM = {"image_size": 8, "encoder_widths": [4, 8], "norm_groups": 4, "dim": 8,
       "sequence_model": "convs5", "sequence_options": OPT["convs5"]}  # fmt: skip
LM = {"kind": "latent_video_predictor", "codebook_size": K, "latent_size": S, "dim": 8,
      "sequence_options": LOPT["convs5"], "code_embed_dim": 6, "encoder_widths": [8],
      "decoder_widths": [8], "decoder_blocks": 2, "norm_groups": 4}  # fmt: skip
CODES = {"dataset": "codes", "seq_len": 6, "root": "x"}


def _step_losses(model, train, batches, data=None):
    cfg = config_from_dict(
        {
            "model": model,
            "data": data or {"seq_len": 7},
            "optim": {"warmup_steps": 1, "lr": 1e-2},
            "train": {
                "steps": 10,
                "batch_size": 2,
                "precision": "fp32",
                "progress": False,
                **train,
            },  # fmt: skip
        }
    )
    torch.manual_seed(0)
    state = create_train_state(cfg, build_model(cfg.model).double(), 8, True, DistributedContext())
    return [float(train_step(state, b)["loss"]) for b in batches]


def _recall_batches():
    rec = torch.zeros(2, 7, dtype=torch.bool)
    rec[:, -2:] = True
    return [
        {
            "video": torch.rand(2, 7, 1, 16, 16, generator=torch.Generator().manual_seed(i)) * 2
            - 1,
            "recall": rec,
        }  # fmt: skip
        for i in range(3)
    ]


RECALL_DATA = {
    "dataset": "delayed_recall",
    "seq_len": 7,
    "options": {"delay": 3, "recall_frames": 2},
}
STEP_CASES = {
    "step_vp_tf": (VPM, {}, "video", None),
    "step_vp_mse_roll2": (VPM, {"pixel_loss": "mse", "rollout_context": 2}, "video", None),
    "step_vp_tbptt2": (VPM, {"tbptt_chunk": 2}, "video", None),
    "step_vp_accum2": (VPM, {"grad_accum": 2}, "video", None),
    "step_vp_recall": (
        {**VPM, "image_size": 16},
        {"recall_loss_share": 0.5, "pixel_loss": "mse"},
        "recall",
        RECALL_DATA,
    ),
    "step_lvp_drop05": ({**LM, "drop_loss_rate": 0.5, "label_smoothing": 0.1}, {}, "codes", CODES),
    "step_lvp_causal": (
        {**LM, "num_actions": 3, "causal_masking": True, "mask_context": 3, "action_dropout": 0.5},
        {},
        "codes_actions",
        CODES,
    ),
}


@pytest.mark.parametrize("case", sorted(STEP_CASES))
def test_train_step_losses_are_unchanged(case):
    model, train, batches, data = STEP_CASES[case]
    codes = _codes()
    batches = {
        "video": [_video(), _video() * 0.5, _video().flip(1)],
        "recall": _recall_batches(),
        "codes": [codes, codes.flip(1), codes.flip(0)],
        "codes_actions": [
            {"video": c, "actions": _acts()} for c in (codes, codes.flip(1), codes.flip(0))
        ],
    }[batches]
    got = _step_losses(model, train, batches, data)
    torch.testing.assert_close(got, REF[case], rtol=1e-6, atol=0)


def test_pixel_loss_weights_and_kinds():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 5, 1, 4, 4, generator=g), torch.rand(2, 5, 1, 4, 4, generator=g)
    for kind in ("mse", "mse_l1"):
        plain = pixel_loss(pred, target, kind)
        for w in (torch.full((2, 5), 1 / 5), torch.full((5,), 1 / 5)):
            torch.testing.assert_close(pixel_loss(pred, target, kind, w), plain)
    with pytest.raises(ValueError, match="pixel_loss must be one of"):
        pixel_loss(pred, target, "l2")
    with pytest.raises(ValueError, match="frame_weights must have shape"):
        pixel_loss(pred, target, frame_weights=torch.full((2, 4), 0.25))


def test_forward_takes_no_loss_options_and_returns_no_loss():
    m, v = _vp(), _video()
    with pytest.raises(TypeError, match="pixel_loss"):
        m(v, pixel_loss="mse")
    assert not hasattr(m(v), "loss")
    lm, codes = _lvp(), _codes()
    for option in ("label_smoothing", "drop_loss_rate"):
        with pytest.raises(TypeError, match=option):
            lm(codes, **{option: 0.1})
    assert not hasattr(lm(codes), "loss")
