import pytest

from cpqa.errors import CPQAError
from cpqa.llm.jsonout import check_output, check_schema, repair_json_text

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}


def test_valid_output_is_parsed_without_repair():
    checked = check_output('{"question": "Q?", "answer": "A."}', SCHEMA)
    assert checked.parsed == {"question": "Q?", "answer": "A."}
    assert not checked.repaired and checked.error is None


@pytest.mark.parametrize("text", [
    'Sure! Here is the item:\n```json\n{"question": "Q?", "answer": "A.",}\n```\nHope it helps.',
    'The JSON is {"question": "Q?", "answer": "A."} as requested.',
    '{"question": "Q?", "answer": "A.",\n}',
    '```\n{"question": "Q?", "answer": "A."}\n```',
])
def test_prose_fences_and_trailing_commas_are_repaired(text):
    checked = check_output(text, SCHEMA)
    assert checked.parsed == {"question": "Q?", "answer": "A."}
    assert checked.repaired


def test_braces_inside_strings_do_not_confuse_the_extraction():
    text = 'x {"question": "what is {this}?", "answer": "a \\"quoted\\" } brace"} y'
    assert check_output(text, SCHEMA).parsed["answer"] == 'a "quoted" } brace'


@pytest.mark.parametrize("text, needle", [
    ("I cannot help with that.", "not JSON"),
    ('{"question": "Q?"', "not JSON"),
    ('{"question": "Q?"}', "'answer' is a required property"),
    ('{"question": 3, "answer": "A"}', "question"),
])
def test_unrepairable_or_invalid_output_is_reported(text, needle):
    checked = check_output(text, SCHEMA)
    assert checked.parsed is None and needle in checked.error


def test_repair_returns_none_without_json():
    assert repair_json_text("no json here") is None


def test_an_invalid_schema_is_a_user_error():
    with pytest.raises(CPQAError, match="schema"):
        check_schema({"type": "no-such-type"})
