"""The config file: defaults, clear errors with file/line/key path, did-you-mean."""

from __future__ import annotations

import json

import pytest

from bot.config import load_config, parse_config, schema
from bot.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_empty_file_gives_every_default():
    config = parse_config("")
    assert config.rfc["comment_period"] == {"default": "14d"}
    assert config.rfc["reactions"]["+1"] == "approve"
    assert config.rfc["vote_rules"]["default"]["quorum"] == 2
    assert config.section("github")["api_url"] == "https://api.github.com"


def test_partial_section_keeps_other_defaults():
    config = parse_config("rfc:\n  vote_rules:\n    breaking_change: {quorum: 5}\n")
    assert config.rfc["vote_rules"]["breaking_change"]["quorum"] == 5
    assert config.rfc["vote_rules"]["breaking_change"]["threshold"] == 0.6667
    assert config.rfc["directory"] == "rfcs"


def test_bad_duration_names_file_line_key_and_form():
    text = "rfc:\n  comment_period:\n    standard: two weeks\n"
    assert problems(text) == [
        '.github/cvf.yml:3: rfc.comment_period.standard: '
        'expected a duration like "14d", got "two weeks"'
    ]


def test_unknown_key_suggests_the_close_one():
    assert problems("rfc:\n  comittee:\n    users: [a]\n") == [
        ".github/cvf.yml:2: rfc.comittee: unknown key 'comittee'; did you mean 'committee'?"
    ]


def test_every_problem_is_listed_in_file_order():
    text = "rfc:\n  quorum: 3\n  vote_rules:\n    default: {quorum: many}\n"
    found = problems(text)
    assert found[0].startswith(".github/cvf.yml:2: rfc.quorum: unknown key")
    assert found[1] == ('.github/cvf.yml:4: rfc.vote_rules.default.quorum: '
                        'expected a whole number, got a string "many"')


def test_broken_yaml_gives_its_line_not_a_traceback():
    found = problems("rfc:\n  directory: [rfcs\n  types: []\n")
    assert found[0].startswith(".github/cvf.yml:")
    assert "invalid YAML" in found[0]


def test_top_level_list_is_refused_with_a_hint():
    assert "expected a mapping of sections" in problems("- rfc\n")[0]


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("nope.yml", root=tmp_path)


def test_missing_default_file_means_defaults(tmp_path):
    assert load_config(root=tmp_path).rfc["directory"] == "rfcs"


def test_schema_is_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    json.dumps(schema())
