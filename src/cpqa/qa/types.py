"""QA types and the other versioned data files of `cpqa/qa/prompts/` (`qa_types_v1.yaml`,
`label_words_v1.yaml`, `leakage_v1.yaml`): loaded once per version and validated. Each item names
its QA types' version in `generator.prompt_version`; the word lists' version is the stage's
`filters.vocabulary_version` (in the stage signature, not in the item)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, get_args

import yaml

from ..errors import CPQAError
from ..records import QAType

QA_TYPES: tuple[str, ...] = get_args(QAType)
DIRECT_TYPES: tuple[str, ...] = ("DE", "DG", "DS")
"""The types whose answer is one label."""
TargetKind = Literal["none", "speaker", "pair", "reply"]
LABELS = frozenset({"emotion", "gender", "speakers", "affect"})


@dataclass(frozen=True)
class Phrasings:
    """Ways to ask a direct question and give its answer: Jinja snippets that see `target`,
    `facts` and `count_words` (the speaker count in words)."""

    questions: tuple[str, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True)
class QATypeSpec:
    code: str
    name: str
    tests: str
    needs_audio_cues: bool
    """The answer depends on how things are said: the text-only answerability filter checks it."""
    needs_context: bool
    labels: tuple[str, ...]
    """Clip labels the type needs (emotion, gender, speakers; affect: an emotion other than neutral)."""
    instruction: str
    """A Jinja snippet for the generator; it sees `facts` and `target` (`cpqa.qa.targets`)."""
    target: TargetKind = "none"
    """Whom an item is about: `speaker` (one whose labels the type needs are confident), `pair`
    (two speakers to tell apart), `reply` (a speaker and the one who speaks right after them) or
    `none`; v1 snippets ignore it."""
    phrasings: Phrasings | None = None
    """Question and answer snippets from which cpqa writes the item itself (`cpqa.qa.direct`)."""


@dataclass(frozen=True)
class Slot:
    """One requested item: its type and number of turns (more than one: a multi-turn item)."""

    code: str
    turns: int = 1


TEMPLATES = ("generate.system", "generate.user", "regenerate.user", "text_only.system", "text_only.user",
             "judge.user", "type_judge.user")
"""The prompt templates a QA types version uses, each `<job>_<version>.<role>.j2`."""


@dataclass(frozen=True)
class QATypes:
    version: str
    follow_up: str
    """A Jinja snippet for multi-turn items; it sees `turns`."""
    types: dict[str, QATypeSpec]
    templates: dict[str, str]
    """Template (`generate.user`, …) → the version of it this version uses: its own unless its
    file's `templates` names an earlier one (a version changes only the prompts it rewrites)."""
    evidence_chars: int = 160
    """Longest evidence the reply schema allows."""

    def template(self, name: str) -> str:
        job, role = name.split(".")
        return f"{job}_{self.templates[name]}.{role}.j2"


def data_file(name: str) -> str:
    path = resources.files("cpqa.qa") / "prompts" / name
    if not path.is_file():
        raise CPQAError(f"cpqa has no QA data file '{name}' (look in cpqa/qa/prompts/)")
    return path.read_text(encoding="utf-8")


def load_yaml(name: str) -> dict[str, Any]:
    data = yaml.safe_load(data_file(name))
    if not isinstance(data, dict):
        raise CPQAError(f"QA data file '{name}' must hold a mapping")
    return data


def data_digest(prompt_version: str, vocabulary_version: str) -> str:
    """A digest of every data file a QA types version and a word-list version make the qa stage
    read: the types, the templates they name, the label, claim and leakage words."""
    types = load_qa_types(prompt_version)
    names = [f"qa_types_{prompt_version}.yaml", *sorted({types.template(t) for t in TEMPLATES}),
             *(f"{kind}_{vocabulary_version}.yaml" for kind in ("label_words", "claim_words", "leakage"))]
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + data_file(name).encode() + b"\0")
    return digest.hexdigest()[:16]


def available_versions() -> list[str]:
    folder = resources.files("cpqa.qa") / "prompts"
    return sorted(p.name[len("qa_types_"):-len(".yaml")] for p in folder.iterdir()
                  if p.name.startswith("qa_types_") and p.name.endswith(".yaml"))


@lru_cache(maxsize=8)
def load_qa_types(version: str) -> QATypes:
    data = load_yaml(f"qa_types_{version}.yaml")
    types = {}
    for code, entry in (data.get("types") or {}).items():
        if code not in QA_TYPES:
            raise CPQAError(f"qa_types_{version}.yaml: unknown type '{code}' (known: {', '.join(QA_TYPES)})")
        labels = tuple(entry.get("labels") or ())
        if not LABELS.issuperset(labels):
            raise CPQAError(f"qa_types_{version}.yaml: type {code} needs unknown labels {sorted(set(labels) - LABELS)}")
        types[code] = QATypeSpec(code=code, name=entry["name"], tests=entry["tests"],
                                 needs_audio_cues=bool(entry["needs_audio_cues"]),
                                 needs_context=bool(entry["needs_context"]), labels=labels,
                                 instruction=entry["instruction"].strip(), target=entry.get("target", "none"),
                                 phrasings=_phrasings(version, code, entry.get("phrasings")))
        if types[code].target not in get_args(TargetKind):
            raise CPQAError(f"qa_types_{version}.yaml: type {code} has unknown target '{types[code].target}'")
    missing = set(QA_TYPES) - set(types)
    if missing:
        raise CPQAError(f"qa_types_{version}.yaml lacks the types {sorted(missing)}")
    templates = {name: version for name in TEMPLATES} | dict(data.get("templates") or {})
    if unknown := set(templates) - set(TEMPLATES):
        raise CPQAError(f"qa_types_{version}.yaml: unknown templates {sorted(unknown)} (known: {', '.join(TEMPLATES)})")
    return QATypes(version=version, follow_up=data["follow_up"].strip(), types=types, templates=templates,
                   evidence_chars=int(data.get("evidence_chars", 160)))


def _phrasings(version: str, code: str, entry: Any) -> Phrasings | None:
    if entry is None:
        return None
    if code not in DIRECT_TYPES:
        raise CPQAError(f"qa_types_{version}.yaml: type {code} has phrasings, which only the direct types "
                        f"{', '.join(DIRECT_TYPES)} may have (their answer is one label)")
    questions, answers = tuple(entry.get("questions") or ()), tuple(entry.get("answers") or ())
    if not questions or not answers:
        raise CPQAError(f"qa_types_{version}.yaml: type {code} has phrasings without questions or answers")
    return Phrasings(questions=questions, answers=answers)
