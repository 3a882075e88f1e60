"""The check every published folder's test makes of its recorded commands."""

from __future__ import annotations

import shlex
from pathlib import Path

from convssm.cli.main import build_parser
from convssm.train.config import ExperimentConfig, load_config

REPO = Path(__file__).resolve().parents[1]


def check_publish_commands(commands: list[str]) -> list[ExperimentConfig]:
    """Assert that ``commands`` (a folder's reproduce commands) are ``convssm train`` /
    ``convssm publish`` lines that parse with the CLI, ending with the publication, and that
    every config they train loads from this repository; return those configs in order."""
    assert commands and commands[-1].startswith("convssm publish "), commands
    parser = build_parser()
    configs = []
    for command in commands:
        words = shlex.split(command)
        assert words[:1] == ["convssm"] and words[1] in ("train", "publish"), command
        args = parser.parse_args(words[1:])
        if words[1] == "train":
            configs.append(load_config(REPO / args.config))
    return configs
