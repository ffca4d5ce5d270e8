"""Fuzzing the player's message handler and its playback of mutated streams (issue 13):
a few hundred cases by default, thousands with `-m slow`."""

from __future__ import annotations

import pytest

from tests.fuzzing import session_corpus
from tests.player.fuzz import fuzz_channel, fuzz_streams


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    return session_corpus(tmp_path_factory.getbasetemp())


def test_hostile_messages_never_break_the_handler(gop_file):
    result = fuzz_channel(gop_file, 400, seed=1)
    assert result["failures"] == 0, result["failure_examples"]


def test_mutated_streams_are_concealed_never_shown_wrong(corpus):
    result = fuzz_streams(corpus, 13, seed=1)  # one case of each mutation kind per codec
    assert result["failures"] == 0, result["failure_examples"]
    assert result["cases"] >= 40 and result["streams_concealing_damage"] > 10


@pytest.mark.slow
def test_many_hostile_messages(gop_file):
    result = fuzz_channel(gop_file, 20_000, seed=2)
    assert result["failures"] == 0, result["failure_examples"]


@pytest.mark.slow
def test_many_mutated_streams(corpus):
    result = fuzz_streams(corpus, 150, seed=2)
    assert result["failures"] == 0, result["failure_examples"]
