"""The local model store: immutable, hashed, atomically written model versions.

    ref = runners.models.save("digits", estimator, framework="sklearn",
                              signatures={"predict": {"batchable": True}})
    info = runners.models.get("digits:latest")

Layout: ``<home>/models/<name>/<version>/`` holds the model file and
``model.json`` (framework, format, signatures, creation time, sha256 and size
of every file, user metadata). ``<home>`` is ``GRAPHCTL_HOME``, read at each
call, else the user's data folder. A version is written into a hidden temporary
folder next to its final place, then renamed into place in one step: a crash
mid-save leaves no entry, and two concurrent saves of one name get two
versions (a microsecond timestamp plus a random suffix, so they also sort by
age and ``latest`` is the newest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import platformdirs

from runners.errors import ModelCorrupt, ModelError, ModelNotFound
from runners.models.frameworks import framework_for
from runners.models.refs import LATEST, ModelRef, Signature, parse_ref, parse_signatures

METADATA_FILE = "model.json"
SCHEMA_VERSION = 1
_CHUNK = 1 << 20
_HIDDEN = "."  # temporary and deleted entries start with it; never listed

StorePath = str | os.PathLike[str] | None


@dataclass(frozen=True)
class FileInfo:
    """One stored file: its sha256 (hex) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ModelInfo:
    """A stored model version, as its metadata file describes it."""

    name: str
    version: str
    framework: str
    format: str
    model_file: str
    signatures: Mapping[str, Signature]
    created: str
    files: Mapping[str, FileInfo]
    path: Path
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    @property
    def model_path(self) -> Path:
        return self.path / self.model_file

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as ``graphctl models show -o json`` prints it."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": str(self.ref),
            "framework": self.framework,
            "format": self.format,
            "model_file": self.model_file,
            "signatures": {k: s.to_dict() for k, s in self.signatures.items()},
            "created": self.created,
            "size": self.size,
            "files": {k: {"sha256": f.sha256, "size": f.size} for k, f in self.files.items()},
            "metadata": dict(self.metadata),
            "path": str(self.path),
        }


def store_home(store: StorePath = None) -> Path:
    """The store's root folder: ``store``, else ``GRAPHCTL_HOME``, else the user data dir."""
    if store is not None:
        return Path(store)
    env = os.environ.get("GRAPHCTL_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("graphctl"))


def _models_dir(store: StorePath) -> Path:
    return store_home(store) / "models"


def _new_version() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{secrets.token_hex(3)}"


def save(
    name: str,
    obj_or_path: Any,
    *,
    framework: str,
    signatures: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    store: StorePath = None,
) -> ModelRef:
    """Store a model object (or copy a model file) as a new immutable version of ``name``."""
    ModelRef(name, LATEST)  # validates the name
    fw = framework_for(framework)
    sigs = parse_signatures(signatures if signatures is not None else fw.default_signatures)
    fw.check_methods(sigs)
    json.dumps(dict(metadata or {}))  # user metadata must be JSON, fail before writing
    parent = _models_dir(store) / name
    tmp = _staging_dir(parent)
    try:
        model_file, fmt = _write_model(fw.name, obj_or_path, tmp)
        files = {p.name: _hash_file(p) for p in sorted(tmp.iterdir())}
        version = _new_version()
        doc = {
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "version": version,
            "framework": fw.name,
            "format": fmt,
            "model_file": model_file,
            "signatures": {k: s.to_dict() for k, s in sigs.items()},
            "created": datetime.now(UTC).isoformat(),
            "files": {k: {"sha256": f.sha256, "size": f.size} for k, f in files.items()},
            "metadata": dict(metadata or {}),
        }
        _write_durably(tmp / METADATA_FILE, json.dumps(doc, indent=2).encode())
        os.rename(tmp, parent / version)  # the commit point: all or nothing
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ModelRef(name, version)


def _staging_dir(parent: Path) -> Path:
    # A concurrent ``delete`` may remove an empty ``parent`` between the two calls.
    for _ in range(3):
        parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            return Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    raise ModelError(f"cannot create a folder in the model store at {parent}")


def _write_model(framework: str, obj_or_path: Any, dest: Path) -> tuple[str, str]:
    fw = framework_for(framework)
    if isinstance(obj_or_path, str | os.PathLike):
        source = Path(obj_or_path)
        if not source.exists():
            raise ModelError(f"model file {str(source)!r} does not exist")
        fmt = fw.detect_format(source)
        filename = fw.filename_for(fmt)
        with open(source, "rb", buffering=0) as src, open(dest / filename, "wb") as out:
            _copy(src, out)
            os.fsync(out.fileno())
        return filename, fmt
    filename, fmt = fw.write(obj_or_path, dest)
    with open(dest / filename, "rb+") as written:
        os.fsync(written.fileno())
    return filename, fmt


def _copy(src: BinaryIO, out: BinaryIO) -> None:
    # A plain read/write loop (not shutil.copyfile) so pipes and devices work too.
    while chunk := src.read(_CHUNK):
        out.write(chunk)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _hash_file(path: Path) -> FileInfo:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileInfo(sha256=digest.hexdigest(), size=size)


def _versions(parent: Path) -> list[str]:
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if not p.name.startswith(_HIDDEN))


def resolve(ref: str | ModelRef, *, store: StorePath = None) -> ModelRef:
    """``name:latest`` (or ``name``) → the newest ``name:VERSION``; checks it exists."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    parent = _models_dir(store) / parsed.name
    versions = _versions(parent)
    if not versions:
        raise ModelNotFound(
            f"model {parsed.name!r} is not in the store at {store_home(store)}", ref=str(parsed)
        )
    if parsed.version == LATEST:
        return ModelRef(parsed.name, versions[-1])
    if parsed.version not in versions:
        raise ModelNotFound(
            f"model {str(parsed)!r} is not in the store; versions: {', '.join(versions[-5:])}",
            ref=str(parsed),
        )
    return parsed


def get(ref: str | ModelRef, *, store: StorePath = None) -> ModelInfo:
    """The metadata of one stored version (``name:latest`` resolves to the newest)."""
    exact = resolve(ref, store=store)
    path = _models_dir(store) / exact.name / exact.version
    try:
        doc = json.loads((path / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise ModelCorrupt(
            f"model {str(exact)!r} is corrupt: {METADATA_FILE} is missing in {path}",
            ref=str(exact),
        ) from None
    except (OSError, ValueError) as error:
        raise ModelCorrupt(
            f"model {str(exact)!r} is corrupt: cannot read {path / METADATA_FILE}: {error}",
            ref=str(exact),
        ) from None
    return _info_from_doc(exact, path, doc)


def _info_from_doc(ref: ModelRef, path: Path, doc: Any) -> ModelInfo:
    try:
        return ModelInfo(
            name=ref.name,
            version=ref.version,
            framework=str(doc["framework"]),
            format=str(doc["format"]),
            model_file=str(doc["model_file"]),
            signatures=parse_signatures(doc["signatures"]),
            created=str(doc["created"]),
            files={
                str(k): FileInfo(sha256=str(v["sha256"]), size=int(v["size"]))
                for k, v in doc["files"].items()
            },
            path=path,
            metadata=dict(doc.get("metadata") or {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError, ModelError) as error:
        raise ModelCorrupt(
            f"model {str(ref)!r} is corrupt: bad {METADATA_FILE} ({type(error).__name__}: {error})",
            ref=str(ref),
        ) from None


def verify(info: ModelInfo) -> None:
    """Check every file against its recorded size and sha256; ``ModelCorrupt`` if not."""
    for filename, expected in info.files.items():
        target = info.path / filename
        if not target.is_file():
            raise ModelCorrupt(
                f"model {str(info.ref)!r} is corrupt: {filename} is missing", ref=str(info.ref)
            )
        actual = _hash_file(target)
        if actual != expected:
            raise ModelCorrupt(
                f"model {str(info.ref)!r} is corrupt: {filename} changed since it was saved"
                " (its sha256 no longer matches); refusing to load it",
                ref=str(info.ref),
            )


def list_models(*, store: StorePath = None) -> list[ModelInfo]:
    """Every readable stored version, by name then age. Corrupt entries are left
    out here; ``get`` on them names the problem."""
    root = _models_dir(store)
    if not root.is_dir():
        return []
    found: list[ModelInfo] = []
    for parent in sorted(p for p in root.iterdir() if p.is_dir()):
        for version in _versions(parent):
            try:
                found.append(get(ModelRef(parent.name, version), store=store))
            except ModelError:
                continue
    return found


def delete(ref: str | ModelRef, *, store: StorePath = None) -> ModelRef:
    """Remove one version (``name:latest`` removes the newest); returns what was removed."""
    exact = resolve(ref, store=store)
    parent = _models_dir(store) / exact.name
    trash = parent / f"{_HIDDEN}del-{exact.version}-{secrets.token_hex(3)}"
    os.rename(parent / exact.version, trash)  # atomic: readers see it or not at all
    shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):  # other versions (or a concurrent save) live here
        parent.rmdir()
    return exact


def load_verified(ref: str | ModelRef, *, framework: str, store: StorePath = None) -> ModelInfo:
    """``get`` + ``verify`` + a framework check: what a framework runner does before it
    reads (and, for pickle-based formats, runs code from) a model file."""
    info = get(ref, store=store)
    if info.framework != framework:
        raise ModelError(
            f"model {str(info.ref)!r} is a {info.framework} model, not {framework}",
            ref=str(info.ref),
        )
    verify(info)
    return info
