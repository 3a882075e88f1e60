"""``sequence_group`` (context parallelism over time) on ConvS5 and the predictors built on it.

Two gloo processes, spawned inside the test, hold uneven chunks of time (5 and 3 input
frames); each rank's outputs equal that chunk of one process's output on the whole sequence,
and the parameter gradients summed over the ranks equal one process's gradients (float64).
The predictors take overlapping pieces (each starting at the last frame of the one before),
so that their input frames are the ranks' chunks. Models that cannot split time refuse the
keyword.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from gloo import gloo_group

from convssm.models import LatentVideoPredictor, VideoPredictor
from convssm.nn import ConvS5

LENGTHS = [5, 3]  # input frames per rank
OPTIONS = {
    "convs5": {"depth": 2, "state_dim": 4, "norm_groups": 4},
    "convlstm": {"depth": 1},
    "transformer": {"embed_dim": 16, "mlp_dim": 16, "heads": 2, "depth": 1, "window": 16,
                    "max_len": 32},
}  # fmt: skip


def _stack():
    torch.manual_seed(0)
    return ConvS5(dim=4, state_dim=4, depth=2, norm_groups=2).double().eval()


def _predictor(name="convs5"):
    torch.manual_seed(0)
    m = VideoPredictor(image_size=8, encoder_widths=[4, 8], norm_groups=4, dim=8,
                       sequence_model=name, sequence_options=OPTIONS[name])  # fmt: skip
    return m.double().eval()


def _latent():
    torch.manual_seed(0)
    m = LatentVideoPredictor(codebook_size=8, latent_size=4, dim=8, code_embed_dim=4,
                             encoder_widths=[8], decoder_widths=[8], decoder_blocks=1,
                             norm_groups=4, num_actions=3, causal_masking=True, mask_context=3,
                             sequence_options=OPTIONS["convs5"])  # fmt: skip
    return m.double().eval()


def _data():
    """Inputs for the whole sequence, upstream weights of the sum-over-frames losses."""
    t = sum(LENGTHS)
    g = torch.Generator().manual_seed(1)
    d = torch.float64
    return {
        "x": torch.randn(2, t, 4, 3, 3, generator=g, dtype=d),
        "s0": [torch.randn(2, 4, 3, 3, generator=g, dtype=torch.complex128) for _ in range(2)],
        "wx": torch.randn(2, t, 4, 3, 3, generator=g, dtype=d),
        "video": (torch.rand(2, t + 1, 1, 8, 8, generator=g, dtype=d) * 2 - 1) * 0.9,
        "wv": torch.randn(2, t, 1, 8, 8, generator=g, dtype=d),
        "codes": torch.randint(0, 8, (2, t + 1, 4, 4), generator=g),
        "actions": torch.randint(0, 3, (2, t + 1), generator=g),
        "wl": torch.randn(2, t, 8, 4, 4, generator=g, dtype=d),
    }


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _run(data, start=0, stop=None, group=None):
    """Outputs, final states and gradients of the three models on frames [start, stop) of
    the input (the predictors get the piece [start, stop + 1))."""
    stop = sum(LENGTHS) if stop is None else stop
    kw = {} if group is None else {"sequence_group": group}
    out = {}
    m = _stack()
    m.activation_checkpointing = True  # the group passes through the recomputed layers too
    y, states = m(data["x"][:, start:stop], data["s0"], **kw)
    (y * data["wx"][:, start:stop]).sum().backward()
    out["stack"] = (y.detach(), [s.detach() for s in states], _grads(m))
    m = _predictor()
    res = m(data["video"][:, start : stop + 1], **kw)
    (res.predictions * data["wv"][:, start:stop]).sum().backward()
    out["predictor"] = (res.predictions.detach(), res.working_targets, _grads(m))
    m = _latent()
    res = m(data["codes"][:, start : stop + 1], data["actions"][:, start : stop + 1], **kw)
    (res.logits * data["wl"][:, start:stop]).sum().backward()
    out["latent"] = (res.logits.detach(), None, _grads(m))
    return out


def _worker(rank, world, init_file, out_file):
    with gloo_group(rank, world, init_file):
        torch.set_num_threads(1)
        start = sum(LENGTHS[:rank])
        out = _run(_data(), start, start + LENGTHS[rank], dist.group.WORLD)
        for _, _, grads in out.values():
            for g in grads.values():
                dist.all_reduce(g)
        torch.save(out, f"{out_file}.{rank}")


def test_chunks_over_ranks_equal_one_process(tmp_path):
    world = len(LENGTHS)
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=world)
    ranks = [torch.load(tmp_path / f"out.{r}") for r in range(world)]
    data = _data()
    whole = _run(data)
    first = _run(data, 0, LENGTHS[0])["stack"][1]  # states at the end of rank 0's chunk
    tol = dict(rtol=1e-10, atol=1e-10)
    for key in ("stack", "predictor", "latent"):
        y, _, grads = whole[key]
        torch.testing.assert_close(torch.cat([r[key][0] for r in ranks], dim=1), y, **tol)
        for r in ranks:
            assert r[key][2].keys() == grads.keys()
            for name, g in grads.items():
                torch.testing.assert_close(r[key][2][name], g, **tol, msg=f"{key} {name}")
    torch.testing.assert_close(ranks[-1]["stack"][1], whole["stack"][1], **tol)
    torch.testing.assert_close(ranks[0]["stack"][1], first, **tol)
    targets = torch.cat([r["predictor"][1] for r in ranks], dim=1)
    torch.testing.assert_close(targets, whole["predictor"][1], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["convlstm", "transformer"])
def test_models_that_cannot_split_time_refuse(name):
    model = _predictor(name)
    video = torch.zeros(1, 3, 1, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=f"{name!r} does not support sequence_group"):
        model(video, sequence_group=object())  # refused before any use of the group
    with pytest.raises(ValueError, match="does not support sequence_group"):
        model.sequence(torch.zeros(1, 2, 8, 2, 2, dtype=torch.float64), sequence_group=object())


def test_rollout_is_refused_with_a_group():
    with pytest.raises(ValueError, match="rollout_context cannot be combined"):
        _predictor()(torch.zeros(1, 3, 1, 8, 8), rollout_context=1, sequence_group=object())


@pytest.mark.parametrize("chunk", [None, 2, 3])
def test_sequence_states_are_the_forward_states_without_decoding(chunk):
    model = _predictor()
    data = _data()
    with torch.no_grad():
        states = model.sequence_states(data["video"], chunk=chunk)
        want = model(data["video"]).states
    for s, w in zip(states, want, strict=True):
        torch.testing.assert_close(s, w, rtol=1e-12, atol=1e-12)
