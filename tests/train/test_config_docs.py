"""docs/configuration.md is generated from the config classes and cannot go stale."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from convssm.train import config_docs

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
COMMAND = "python -m convssm.train.config_docs docs/configuration.md"


def test_the_page_is_current():
    assert PAGE.is_file(), f"docs/configuration.md is missing; generate it with `{COMMAND}`"
    assert PAGE.read_text() == config_docs.render(), (
        "docs/configuration.md differs from the config classes; regenerate it with "
        f"`{COMMAND}` (from the repository root) and commit the result"
    )


def test_every_key_of_every_section_is_listed():
    page = PAGE.read_text()
    for key in ("`train.init_from`", "`eval.teco.context_with_actions`", "`loss.disc_layers`",
                "`model.codebook_update`", "`model.label_smoothing`", "`data.num_workers`",
                "`optim.warmup_steps`"):  # fmt: skip
        assert key in page


def test_docstring_sections_are_parsed():
    def documented():
        """Prose.

        Attributes:
            a: first, over
                two lines.
            b, c: shared (see ``a``).

        Returns:
            d: not a field.
        """

    docs = config_docs.field_docs(documented)
    assert docs == {"a": "first, over two lines.", "b": "shared (see ``a``).",
                    "c": "shared (see ``a``)."}  # fmt: skip


def test_a_field_without_meaning_is_an_error():
    @dataclass
    class Bare:
        """A config.

        Attributes:
            x: documented.
        """

        x: int = 1
        y: int = 2

    with pytest.raises(ValueError, match=r"Bare\.y has no meaning"):
        config_docs._table(Bare, "")
