"""``help(convssm)`` tells a newcomer where to start, and every name it points to exists."""

from __future__ import annotations

import pydoc
import re
from pathlib import Path

import convssm
import convssm.models
import convssm.nn
from convssm.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_help_points_to_the_layer_the_loader_the_cli_and_the_docs():
    text = pydoc.render_doc(convssm, renderer=pydoc.plaintext)
    for needed in ("ConvS5", "VideoPredictor.from_pretrained", "progress=True", "convssm train",
                   "python -m convssm", "docs/training.md", "README"):  # fmt: skip
        assert needed in text, needed
    # what it names is real: the classes, the method, the commands and the pages
    assert callable(convssm.nn.ConvS5) and callable(convssm.models.VideoPredictor.from_pretrained)
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for command in re.findall(r"``convssm (\w+)", convssm.__doc__):
        assert command in commands or command == "COMMAND", command
    for page in re.findall(r"docs/[\w.]+\.md", convssm.__doc__):
        assert (ROOT / page).is_file(), page
