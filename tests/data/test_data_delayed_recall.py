"""DelayedRecall: the layout of a video, purity of its items, disjoint splits, the baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convssm.data import DelayedRecall, MovingMNIST


def _set(**kw):
    opts = dict(delay=12, seed=3)
    opts.update(kw)
    return DelayedRecall(8, **opts)


def test_layout_pattern_distractor_cue_recall():
    ds = _set(recall_frames=3)
    item = ds[2]
    video, recall = item["video"], item["recall"]
    assert video.shape == (12 + 3 + 2, 1, 16, 16) and video.dtype == torch.float32
    assert recall.tolist() == [False] * 14 + [True] * 3
    assert ds.cue_index == 13 and ds.num_frames == 17
    raw = ds.video_uint8(2)
    assert raw[0].max() > 0
    for t in (14, 15, 16):  # the pattern again, exactly
        np.testing.assert_array_equal(raw[t], raw[0])
    cue = raw[13]
    assert cue[0].min() == 255 and cue[-1].min() == 255 and cue[1:-1, 1:-1].max() == 0
    # the distractor is dimmer than the pattern: at most half of its digit's brightest pixel
    assert 0 < raw[1:13].max() <= 128
    assert not np.array_equal(raw[1], raw[12])  # it moves
    assert video.min() >= -1 and video.max() <= 1


def test_items_are_pure_functions_of_seed_split_index():
    a, b = _set(), _set()
    np.testing.assert_array_equal(a.video_uint8(5), b.video_uint8(5))
    np.testing.assert_array_equal(a.video_uint8(5), a.video_uint8(5))
    assert not np.array_equal(a.video_uint8(5), a.video_uint8(6))
    assert not np.array_equal(a.video_uint8(5), _set(seed=4).video_uint8(5))
    assert not np.array_equal(a.video_uint8(5), _set(split="eval").video_uint8(5))
    # the patterns do not depend on the delay: the same digit at 12 and at 300
    np.testing.assert_array_equal(a.pattern_frame(1), _set(delay=300).video_uint8(1)[0])


def test_splits_draw_disjoint_digits_as_moving_mnist_does():
    train, ev = _set(split="train"), _set(split="eval")
    mm_train = MovingMNIST(1, image_size=16, digit_size=8, split="train")
    mm_eval = MovingMNIST(1, image_size=16, digit_size=8, split="eval")
    np.testing.assert_array_equal(train.pool, mm_train.pool)
    np.testing.assert_array_equal(ev.pool, mm_eval.pool)
    flat_train = {p.tobytes() for p in train.pool}
    assert not any(p.tobytes() in flat_train for p in ev.pool[:200])


def test_mean_pattern_is_the_training_average_for_both_splits():
    train, ev = _set(), _set(split="eval", delay=40)
    mean = train.mean_pattern()
    assert mean.shape == (1, 16, 16)
    torch.testing.assert_close(mean, ev.mean_pattern())
    # the mean over many random placements is blurred: darker than a digit, brighter than 0
    assert -1 < float(mean.mean()) < float(train[0]["video"][0].max())
    assert float(mean.min()) >= -1


def test_more_items_and_other_sizes():
    ds = DelayedRecall(2, delay=3, image_size=32, num_items=2, recall_frames=1)
    assert ds.digit_size == 16 and ds[0]["video"].shape == (6, 1, 32, 32)
    assert DelayedRecall(1, delay=0)[0]["video"].shape == (6, 1, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(delay=-1), "delay must be an int >= 0"),
        (dict(delay=2.5), "delay must be an int"),
        (dict(delay=4, recall_frames=0), "recall_frames must be an int >= 1"),
        (dict(delay=4, split="test"), "split must be one of"),
        (dict(delay=4, digit_size=15), "digit_size .* must leave room"),
        (dict(delay=4, distractor_intensity=1.0), "distractor_intensity must be in"),
        (dict(delay=4, step=2), "step must be in"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DelayedRecall(4, **kwargs)


def test_index_errors():
    ds = _set()
    with pytest.raises(IndexError, match="out of range"):
        ds[8]
    with pytest.raises(TypeError, match="index must be an int"):
        ds.video_uint8(1.0)


def test_varied_delays_keep_the_length_and_move_the_pattern():
    fixed, varied = _set(), _set(min_delay=3)
    starts = []
    for i in range(8):
        a, b = fixed.video_uint8(i), varied.video_uint8(i)
        assert b.shape == a.shape
        (start,) = [t for t in range(13) if np.array_equal(b[t], a[0])]  # the same pattern, once
        np.testing.assert_array_equal(b[13:], a[13:])  # the same cue and recall
        assert 0 <= start <= 12 - 3 and b[:13].max() > 0
        starts.append(start)
    assert len(set(starts)) > 1
    with pytest.raises(ValueError, match="min_delay .* must not exceed delay"):
        _set(min_delay=13)


def test_varied_delays_can_move_the_cue_instead_with_each_videos_recall_frames():
    fixed, varied = _set(recall_frames=3), _set(recall_frames=3, min_delay=3, vary="cue")
    cues = []
    for i in range(8):
        a, item = fixed.video_uint8(i), varied[i]
        b, recall = varied.video_uint8(i), item["recall"]
        assert b.shape == a.shape and recall.shape == (a.shape[0],)
        np.testing.assert_array_equal(b[0], a[0])  # the pattern stays at frame 0
        (cue,) = [t for t in range(1, 17) if b[t][0].min() == 255]  # the one cue frame
        assert 4 <= cue <= 13 and b[1:cue].max() <= 128  # after 3 to 12 distractor frames
        assert recall.nonzero().flatten().tolist() == [cue + 1, cue + 2, cue + 3]
        assert torch.equal(recall, varied.recall_mask(i))
        for t in range(cue + 1, 17):  # the patterns again, until the last frame
            np.testing.assert_array_equal(b[t], a[0])
        cues.append(cue)
    assert len(set(cues)) > 1
    with pytest.raises(ValueError, match="pass index"):
        varied.recall_mask()
    with pytest.raises(ValueError, match="vary must be 'pattern' or 'cue'"):
        _set(vary="both")


def test_a_share_of_the_distractor_keeps_everything_else_and_the_default_streams():
    full, default = _set(min_delay=3, vary="cue"), _set(min_delay=3, vary="cue")
    shared = _set(min_delay=3, vary="cue", min_distractor_share=0.0)
    lengths = []
    for i in range(8):
        a, b = full.video_uint8(i), shared.video_uint8(i)
        np.testing.assert_array_equal(a, default.video_uint8(i))  # 1.0: nothing drawn more
        cue = int(full[i]["recall"].nonzero()[0]) - 1
        assert torch.equal(shared[i]["recall"], full[i]["recall"])
        np.testing.assert_array_equal(b[0], a[0])  # the pattern, the cue, the recall
        np.testing.assert_array_equal(b[cue:], a[cue:])
        shown = [t for t in range(1, cue) if b[t].any()]
        for t in shown:  # where the distractor shows, it is the full set's frame
            np.testing.assert_array_equal(b[t], a[t])
        if shown:  # one run of consecutive frames
            assert shown == list(range(shown[0], shown[-1] + 1))
        lengths.append(len(shown) / (cue - 1))
    assert min(lengths) < 0.9 and len(set(lengths)) > 2
    # videos whose pattern moves: frames before the pattern keep their distractor
    moved = _set(min_delay=3, min_distractor_share=0.5)
    plain = _set(min_delay=3)
    for i in range(8):
        a, b = plain.video_uint8(i), moved.video_uint8(i)
        (start,) = [t for t in range(13) if np.array_equal(a[t], a[-1])]
        np.testing.assert_array_equal(b[: start + 1], a[: start + 1])
        assert (b[start + 1 : 13] != 0).any(axis=(1, 2)).sum() >= round(0.5 * (12 - start))
    for bad in (-0.1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="min_distractor_share must be in"):
            _set(min_distractor_share=bad)


def test_distractor_speeds_can_vary_down_to_still():
    plain, varied = _set(delay=40), _set(delay=40, min_step=0.0)
    moves = []
    for i in range(8):
        a, b = plain.video_uint8(i), varied.video_uint8(i)
        np.testing.assert_array_equal(b[0], a[0])  # the pattern, cue and recall stay
        np.testing.assert_array_equal(b[41:], a[41:])
        assert b[1:41].max() <= 128 and (b[1:41] > 0).any(axis=(1, 2)).all()
        moves.append(sum(not np.array_equal(b[t], b[t + 1]) for t in range(1, 40)))
    full = [sum(not np.array_equal(a[t], a[t + 1]) for t in range(1, 40)) for a in
            (plain.video_uint8(i) for i in range(8))]  # fmt: skip
    assert min(moves) < min(full) and len(set(moves)) > 2
    with pytest.raises(ValueError, match=r"min_step must be in \[0, step=0.15\]"):
        _set(min_step=0.2)
