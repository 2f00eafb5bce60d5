"""The local model store and its pre-built framework runners.

    from runners import models
    ref = models.save("digits", clf, framework="sklearn",
                      signatures={"predict": {"batchable": True, "batch_dim": 0}})
    models.list_models(); models.get("digits:latest"); models.delete(ref)

A graph serves a stored model without writing a class:
``runners: {digits: {model: digits:latest}}``.
"""

from __future__ import annotations

from runners.errors import ModelCorrupt, ModelError, ModelNotFound
from runners.models.frameworks import FRAMEWORKS, Framework, framework_for
from runners.models.refs import LATEST, ModelRef, Signature, parse_ref
from runners.models.store import (
    FileInfo,
    ModelInfo,
    delete,
    get,
    list_models,
    load_verified,
    resolve,
    save,
    store_home,
    verify,
)

__all__ = [
    "FRAMEWORKS",
    "LATEST",
    "FileInfo",
    "Framework",
    "ModelCorrupt",
    "ModelError",
    "ModelInfo",
    "ModelNotFound",
    "ModelRef",
    "Signature",
    "delete",
    "framework_for",
    "get",
    "list_models",
    "load_verified",
    "parse_ref",
    "resolve",
    "save",
    "store_home",
    "verify",
]
