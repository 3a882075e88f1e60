"""Published model folders load, generate, and their cards say what their runs did; the first
study's format-1 folders (now test fixtures) still load and generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convssm.models import VideoPredictor

REPO = Path(__file__).resolve().parents[2]
PRETRAINED = REPO / "pretrained"
FORMAT1 = REPO / "tests" / "fixtures" / "format1"  # the first study's folders, format 1


@pytest.mark.parametrize("name", ["convs5", "convlstm", "transformer"])
def test_format1_model_folder_loads_and_generates(name):
    assert json.loads((FORMAT1 / name / "config.json").read_text())["format_version"] == 1
    model = VideoPredictor.from_pretrained(FORMAT1 / name).eval()
    assert model.config.sequence_model == name
    context = torch.rand(1, 4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    frames = model.generate(context, horizon=3)
    assert frames.shape == (1, 3, 1, 32, 32) and bool(torch.isfinite(frames).all())
    assert sum(f.stat().st_size for f in (FORMAT1 / name).iterdir()) < 5 * 2**20


# the Moving-MNIST cards (the recall cards have their own test)
CARDS = sorted(c for c in PRETRAINED.glob("*/*/training.json") if c.parent.parent.name != "recall")


# the Moving-MNIST folders written by `convssm publish` (their facts in lineage.json)
RUN_CARDS = sorted((PRETRAINED / "moving_mnist").glob("*/lineage.json"))


def test_the_demo_model_is_published():
    demo = PRETRAINED / "moving_mnist" / "convs5_1digit_roll48_24"
    assert (demo / "training.json") in CARDS or (demo / "lineage.json") in RUN_CARDS


@pytest.mark.parametrize("card", CARDS, ids=[c.parent.name for c in CARDS])
def test_published_model_reproduces_its_card_scores(card):
    """Each model card's scores on its first 4 held-out videos, to the printed precision."""
    from convssm.data import MovingMNIST
    from convssm.metrics import psnr, ssim, trivial_predictor_scores

    info = json.loads(card.read_text())
    assert (card.parent / "README.md").is_file() and info["command"]
    data, ev = info["data"], info["recipe"]["eval"]
    model = VideoPredictor.from_pretrained(card.parent).eval()
    ds = MovingMNIST(ev["videos"], num_frames=ev["context"] + ev["horizon"],
                     image_size=data["image_size"], num_digits=data["num_digits"],
                     digit_size=data["digit_size"], step=data["step"], split="eval",
                     seed=ev["seed"])  # fmt: skip
    videos = torch.stack([ds[i] for i in range(info["card_videos"])])
    c = ev["context"]
    pred = (model.generate(videos[:, :c], ev["horizon"]).clamp(-1, 1) + 1) / 2
    truth = (videos[:, c:] + 1) / 2
    got = trivial_predictor_scores(pred, truth, (videos[:, c - 1] + 1) / 2, (10, 100))
    got["psnr@10"] = float(psnr(pred[:, :10], truth[:, :10]).clamp(max=100).mean())
    got["ssim@10"] = float(ssim(pred[:, :10], truth[:, :10]).mean())
    for key in ("rel_best@10", "rel_empty@100", "brightness@50-100", "psnr@10", "ssim@10"):
        assert round(got[key], 3) == pytest.approx(round(info["card_scores"][key], 3), abs=1.01e-3)


MOVING_MNIST_CARDS = [c for c in CARDS if c.parent.parent.name == "moving_mnist"]


@pytest.mark.parametrize(
    "card", MOVING_MNIST_CARDS, ids=[c.parent.name for c in MOVING_MNIST_CARDS]
)
def test_card_reproduce_commands_parse_and_build_this_model(card):
    """The card's Reproduce commands parse with the CLI, their configs load, and the last one
    trains a model of exactly the published architecture."""
    import shlex

    from convssm.cli.main import build_parser
    from convssm.train.config import load_config

    text = (card.parent / "README.md").read_text()
    (line,) = [x for x in text.splitlines() if x.startswith("- **Reproduce**:")]
    commands = line.split("`")[1].split(" && ")
    assert commands and all(c.startswith("convssm train ") for c in commands), line
    parser = build_parser()
    configs = []
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        configs.append(load_config(Path(REPO, args.config)))
    assert configs[-1].model == VideoPredictor.from_pretrained(card.parent).config
    for before, after in zip(configs, configs[1:], strict=False):  # phases chain by init_from
        assert after.train.init_from == f"runs/{before.name}"


@pytest.mark.parametrize("card", RUN_CARDS, ids=[c.parent.name for c in RUN_CARDS])
def test_published_run_reproduces_its_held_out_scores(card):
    """A folder `convssm publish` wrote scores as its run scored that step: the same held-out
    videos (experiment.yaml's eval section), generated and scored by the same code."""
    from convssm.train.checkpoint import read_experiment_yaml
    from convssm.train.heldout import HeldOutScorer

    want = json.loads(card.read_text())["scores"]
    model = VideoPredictor.from_pretrained(card.parent).eval()
    cfg = read_experiment_yaml(card.parent, model.config)
    got, _ = HeldOutScorer(cfg, torch.device("cpu")).score(model)
    keys = ("rel_best@10", "rel_empty@100", "brightness@50-100", "psnr@10", "ssim@10")
    assert all(k in want for k in keys), sorted(want)
    for key in keys:
        assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-4), key


@pytest.mark.parametrize("card", RUN_CARDS, ids=[c.parent.name for c in RUN_CARDS])
def test_published_run_commands_parse_and_build_this_model(card):
    """The commands a `convssm publish` folder records parse with the CLI, the configs they
    train load from this repository, and the last one builds exactly the published model."""
    import shlex

    from convssm.cli.main import build_parser
    from convssm.train.config import load_config

    commands = json.loads(card.read_text())["commands"]
    text = (card.parent / "README.md").read_text()
    assert all(c in text for c in commands)
    parser = build_parser()
    configs = []
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "convssm" and words[1] in ("train", "publish"), command
        args = parser.parse_args(words[1:])
        if words[1] == "train":
            configs.append(load_config(Path(REPO, args.config)))
    assert commands[-1].startswith("convssm publish ")
    assert configs and configs[-1].model == VideoPredictor.from_pretrained(card.parent).config
