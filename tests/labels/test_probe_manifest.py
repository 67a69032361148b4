"""Probe manifests are read with ingest's table reader: gzipped, BOM-prefixed, TSV, short rows."""

import gzip

import pytest

from cpqa.errors import CPQAError
from cpqa.labels.probe_manifest import read_manifest

ROWS = "file,label,speaker,start_s,end_s\na.wav,happy,s1,,\nb.wav,sad,s2,1.5,3.0\nc.wav,,s1,,\n"


def _check(examples, folder):
    assert [(e.label, e.speaker, e.start, e.end) for e in examples] == [("happy", "s1", None, None),
                                                                         ("sad", "s2", 1.5, 3.0)]
    assert examples[0].audio == str((folder / "a.wav").resolve())


def test_gzipped_manifest(tmp_path):
    path = tmp_path / "manifest.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(ROWS)
    _check(read_manifest(path, "label"), tmp_path)


def test_bom_prefixed_manifest(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text(ROWS, encoding="utf-8-sig")  # Excel's "CSV UTF-8": the first column is still 'file'
    _check(read_manifest(path, "label"), tmp_path)


def test_tsv_and_missing_column(tmp_path):
    path = tmp_path / "manifest.tsv"
    path.write_text(ROWS.replace(",", "\t"))
    _check(read_manifest(path, "label"), tmp_path)
    with pytest.raises(CPQAError, match="no column 'emotion'"):
        read_manifest(path, "emotion")
