"""The model store: versions, latest, integrity, atomic and concurrent saves, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from runners import models
from runners.errors import ModelCorrupt, ModelError, ModelNotFound
from runners.models.sklearn import SklearnRunnable
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]
GRAPHCTL = str(Path(sys.executable).parent / "graphctl")
SIGS = {"predict": {"batchable": True, "batch_dim": 0}}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRAPHCTL_HOME", str(tmp_path))
    return tmp_path


def _estimator(seed: int = 0) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 3))
    return LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))


def test_save_get_list_and_latest(store: Path) -> None:
    first = models.save(
        "clf", _estimator(0), framework="sklearn", signatures=SIGS, metadata={"owner": "ml"}
    )
    second = models.save("clf", _estimator(1), framework="sklearn", signatures=SIGS)
    assert first.name == second.name == "clf" and first.version < second.version
    assert models.get("clf:latest").ref == second == models.get("clf").ref
    info = models.get(first)
    assert info.framework == "sklearn" and info.format == "joblib"
    assert info.signatures["predict"].batchable and info.metadata == {"owner": "ml"}
    assert info.files["model.joblib"].size == info.size > 0
    assert info.path.parent.parent == store / "models"
    assert [str(i.ref) for i in models.list_models()] == [str(first), str(second)]
    models.verify(info)


def test_delete_removes_one_version(store: Path) -> None:
    first = models.save("clf", _estimator(0), framework="sklearn", signatures=SIGS)
    second = models.save("clf", _estimator(1), framework="sklearn", signatures=SIGS)
    assert models.delete("clf:latest") == second
    assert models.get("clf:latest").ref == first
    models.delete(first)
    assert models.list_models() == []
    with pytest.raises(ModelNotFound, match="'clf' is not in the store"):
        models.get("clf")


def test_missing_and_corrupt_entries_are_named(store: Path) -> None:
    ref = models.save("clf", _estimator(), framework="sklearn", signatures=SIGS)
    with pytest.raises(ModelNotFound, match="versions"):
        models.get("clf:20000101T000000000000-000000")
    info = models.get(ref)
    info.model_path.write_bytes(info.model_path.read_bytes() + b"tampered")
    with pytest.raises(ModelCorrupt, match="sha256 no longer matches"):
        SklearnRunnable(str(ref))
    (info.path / "model.json").write_text("{not json")
    with pytest.raises(ModelCorrupt, match=str(ref)):
        models.get(ref)
    assert models.list_models() == []  # unreadable entries are left out of the listing


def test_bad_arguments_are_refused_before_writing(store: Path) -> None:
    with pytest.raises(ModelError, match="unknown model framework"):
        models.save("clf", _estimator(), framework="xgboost", signatures=SIGS)
    with pytest.raises(ModelError, match="no method 'fit'"):
        models.save("clf", _estimator(), framework="sklearn", signatures={"fit": {}})
    with pytest.raises(ModelError, match="invalid model name"):
        models.save("a/b", _estimator(), framework="sklearn", signatures=SIGS)
    assert not (store / "models" / "clf").exists() or models.list_models() == []


def test_a_save_killed_midway_leaves_no_entry(
    store: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The model file comes from a pipe we control: the saver is SIGKILLed while
    the file is half copied into the store."""
    fifo = tmp_path_factory.mktemp("fifo") / "model.joblib"
    os.mkfifo(fifo)
    code = (
        "from runners import models; "
        f"models.save('clf', {str(fifo)!r}, framework='sklearn', signatures={SIGS!r})"
    )
    saver = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "GRAPHCTL_HOME": str(store)}
    )
    try:
        with open(fifo, "wb") as writer:
            writer.write(b"x" * 100_000)
            writer.flush()
            staged = store / "models" / "clf"
            wait_until(lambda: any(p.stat().st_size for p in staged.glob(".tmp-*/*")))
            saver.send_signal(signal.SIGKILL)
            saver.wait(timeout=30)
    except BrokenPipeError:
        pass  # the reader died first: exactly the crash we want
    finally:
        if saver.poll() is None:
            saver.kill()
            saver.wait(timeout=30)
    assert saver.returncode == -signal.SIGKILL
    assert models.list_models() == []
    with pytest.raises(ModelNotFound):
        models.get("clf:latest")


def test_concurrent_saves_from_two_processes_get_distinct_versions(store: Path) -> None:
    code = (
        "import sys; from sklearn.dummy import DummyClassifier; from runners import models\n"
        "clf = DummyClassifier().fit([[0], [1]], [0, 1])\n"
        "refs = [str(models.save('clf', clf, framework='sklearn')) for _ in range(10)]\n"
        "print('\\n'.join(refs))\n"
    )
    env = {**os.environ, "GRAPHCTL_HOME": str(store)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    refs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0
        refs += out.split()
    assert len(set(refs)) == 20
    assert sorted(refs) == [str(i.ref) for i in models.list_models()]


def test_cli_list_show_delete(store: Path) -> None:
    ref = models.save("clf", _estimator(), framework="sklearn", signatures=SIGS)

    def graphctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GRAPHCTL, "models", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "GRAPHCTL_HOME": str(store)},
        )

    listed = graphctl("list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [m["ref"] for m in json.loads(listed.stdout)] == [str(ref)]
    assert str(ref) in graphctl("list").stdout
    shown = json.loads(graphctl("show", "clf", "-o", "json").stdout)
    assert shown["framework"] == "sklearn" and shown["signatures"]["predict"]["batchable"]
    missing = graphctl("show", "nope")
    assert missing.returncode == 1 and "'nope' is not in the store" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert json.loads(graphctl("delete", str(ref), "-o", "json").stdout) == {"deleted": str(ref)}
    assert json.loads(graphctl("list", "-o", "json").stdout) == []
