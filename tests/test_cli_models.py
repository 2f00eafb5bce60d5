"""``graphctl models`` in this process against a real store in a temporary
folder: the table, JSON and YAML views, delete, and the store's errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from orchestrator.cli import main
from orchestrator.cli._models import _size
from runners import models


@pytest.fixture
def store(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).normal(size=(20, 3))
    estimator = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    for _ in range(2):
        models.save("clf", estimator, framework="sklearn", store=tmp_path)
    return tmp_path


def test_list_table_has_a_header_and_one_row_per_version(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "--store", str(store), "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["MODEL", "FRAMEWORK", "METHODS", "SIZE", "CREATED"]
    versions = [str(info.ref) for info in models.list_models(store=store)]
    assert [row.split()[0] for row in rows] == versions
    assert all(row.split()[1:3] == ["sklearn", "predict"] for row in rows)


def test_list_json_and_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--store", str(tmp_path), "list", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["models", "--store", str(tmp_path), "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["MODEL", "FRAMEWORK", "METHODS", "SIZE", "CREATED"]
    assert captured.err == f"(no models in {tmp_path})\n"


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_show_prints_the_metadata(
    store: Path, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "--store", str(store), "show", "clf", "-o", output]) == 0
    text = capsys.readouterr().out
    doc = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert doc == models.get("clf", store=store).to_dict()


def test_delete_removes_latest_and_says_which(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newest = str(models.resolve("clf", store=store))
    assert main(["models", "--store", str(store), "delete", "clf:latest", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": newest}
    left = str(models.resolve("clf", store=store))
    assert main(["models", "--store", str(store), "delete", left]) == 0
    assert capsys.readouterr().out == f"deleted {left}\n"
    assert models.list_models(store=store) == []


def test_store_errors_are_one_line(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--store", str(store), "show", "absent"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphctl: error: ") and "absent" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (5000 * 1024**3, "5000.0 GiB"),
    ],
)
def test_sizes_are_human_readable(size: int, text: str) -> None:
    assert _size(size) == text
