"""The study's command line."""

from __future__ import annotations

import pytest

from replay.cli import main


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "(default 30% of the chunks)" in shown and "--rollback" in shown and "--jobs" in shown


def test_a_bad_option_is_refused_by_name(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--seeds", "many"])
    assert exited.value.code == 2
    assert "argument --seeds: invalid" in capsys.readouterr().err
