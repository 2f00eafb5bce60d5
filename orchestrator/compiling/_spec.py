"""Load a graph file: YAML into plain data, with the position of every key and value.

Positions let every later check point at the exact ``FILE:LINE:COL`` a user must
edit. Duplicate keys are errors (YAML itself keeps the last one silently), and
dates stay strings (a graph file has no use for timestamps). Aliases may copy
only so many values (``alias_copy_limit``): nested aliases multiply, and a short
"billion laughs" file would otherwise expand into gigabytes.

    doc = load_document(Path("graphs/diamond.yaml"))
    doc.problems                             # duplicate keys, ...
    doc.value_at(("spec", "nodes", "pre"))   # -> Location(file, line, column)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import Diagnostic, GraphFileError
from orchestrator.plan import Location

DataPath = tuple[Any, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
ALIAS_COPIES_MIN = 100_000  # values aliases may copy in any file
ALIAS_COPIES_PER_VALUE = 10  # ... or this many per value written, if that is more


def alias_copy_limit(written: int) -> int:
    """How many values the aliases of a file with ``written`` values may copy."""
    return max(ALIAS_COPIES_MIN, ALIAS_COPIES_PER_VALUE * written)


class _AliasNode(yaml.Node):
    """One use of an alias (``*name``): where it is written and the node it copies.

    The composer shares the anchored node between its uses; wrapping each use keeps
    its position, so a copy that goes over the limit is reported where it is written."""

    def __init__(self, target: yaml.Node, anchor: str, mark: yaml.Mark) -> None:
        super().__init__(target.tag, target.value, mark, mark)
        self.target = target
        self.anchor = anchor


class _Loader(yaml.SafeLoader):
    """A safe loader that leaves dates as strings, keeps where each alias is used,
    and counts the values written (for the alias copy limit)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.written = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = super().compose_node(parent, index)
            assert target is not None  # an alias names an anchored node, or composing raised
            return _AliasNode(target, str(event.anchor), event.start_mark)
        self.written += 1
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class SpecDocument:
    """A parsed graph file: ``data`` is plain JSON-like data; ``keys`` and ``values``
    map a path (keys and list indexes from the root) to where it was written."""

    file: str
    path: Path
    data: Any
    keys: Mapping[DataPath, Location] = field(default_factory=dict)
    values: Mapping[DataPath, Location] = field(default_factory=dict)
    problems: tuple[Diagnostic, ...] = ()  # found while parsing, e.g. duplicate keys

    def value_at(self, path: DataPath) -> Location:
        """Where the value at ``path`` starts (or its closest written ancestor)."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Location(self.file, 1, 1)

    def key_at(self, path: DataPath) -> Location:
        """Where the key of the entry at ``path`` is written, else where its value is."""
        for end in range(len(path), 0, -1):
            found = self.keys.get(path[:end])
            if found is not None:
                return found
        return self.value_at(path)


def _location(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass
class _Builder:
    """Turns a composed YAML node tree into plain data, recording positions."""

    file: str
    loader: _Loader
    keys: dict[DataPath, Location] = field(default_factory=dict)
    values: dict[DataPath, Location] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    copy_limit: int = ALIAS_COPIES_MIN
    _active: set[int] = field(default_factory=set)
    _aliases: list[_AliasNode] = field(default_factory=list)  # being expanded, outermost first
    _copies: int = 0

    def error(self, node: yaml.Node, message: str) -> None:
        where = _location(self.file, node)
        self.problems.append(Diagnostic(self.file, where.line, where.column, message))

    def _count_copy(self) -> None:
        """Count one value copied by an alias; past the limit, stop at the outermost
        alias being expanded: that is the use the user wrote that grew too large."""
        self._copies += 1
        if self._copies <= self.copy_limit:
            return
        alias = self._aliases[0]
        self.error(
            alias,
            f"YAML aliases copy more than {self.copy_limit} values, here at *{alias.anchor}:"
            " aliases of aliases multiply; write the repeated values out or nest fewer aliases",
        )
        raise GraphFileError(self.problems)

    def _expand(self, alias: _AliasNode, build: Any, *args: Any) -> Any:
        """Run ``build(alias.target, *args)`` counting every value it copies."""
        self._aliases.append(alias)
        try:
            return build(alias.target, *args)
        finally:
            self._aliases.pop()

    def build(self, node: yaml.Node, path: DataPath) -> Any:
        if isinstance(node, _AliasNode):
            return self._expand(node, self.build, path)
        if self._aliases:
            self._count_copy()
        self.values.setdefault(path, _location(self.file, node))
        if id(node) in self._active:
            self.error(node, "an alias refers to itself: recursive YAML is not supported")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self.loader.construct_object(node, deep=True)
        finally:
            self._active.discard(id(node))

    def _key(self, node: yaml.Node) -> Any:
        if isinstance(node, _AliasNode):
            return self._expand(node, self._key)
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, "a key must be a plain value, not a list or a map")
            return None
        key = self.loader.construct_object(node, deep=True)
        return key

    def _mapping(self, node: yaml.MappingNode, path: DataPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node)
            if key is None and not isinstance(key_node, yaml.ScalarNode):
                continue
            if key in result:
                first = self.keys[(*path, key)]
                self.error(
                    key_node,
                    f"duplicate key {key!r} (first written at line {first.line}, "
                    f"column {first.column})",
                )
                continue
            self.keys[(*path, key)] = _location(self.file, key_node)
            result[key] = self.build(value_node, (*path, key))
        for merged in merges:
            self._merge(merged, result, path)
        return result

    def _merge(self, node: yaml.Node, result: dict[Any, Any], path: DataPath) -> None:
        """``<<: *base``: keys written in the mapping itself win over merged ones."""
        if isinstance(node, _AliasNode) and isinstance(node.target, yaml.SequenceNode):
            self._expand(node, self._merge, result, path)
            return
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            merged = self._merged(source, path)
            if merged is None:
                continue
            for key, value in merged.items():
                result.setdefault(key, value)

    def _merged(self, source: yaml.Node, path: DataPath) -> dict[Any, Any] | None:
        """The map one ``<<`` source stands for (an alias is expanded and counted)."""
        if isinstance(source, _AliasNode):
            expanded: dict[Any, Any] | None = self._expand(source, self._merged, path)
            return expanded
        if not isinstance(source, yaml.MappingNode):
            self.error(source, "`<<` merges only maps")
            return None
        merged: dict[Any, Any] | None = self.build(source, path)  # counted, recursion-checked
        return merged


def parse_document(text: str, file: str, path: Path | None = None) -> SpecDocument:
    """Parse YAML ``text``; raise ``GraphFileError`` if it is not YAML at all.

    Problems that still leave usable data (duplicate keys) go in ``problems``, so
    they are reported together with everything found later."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:  # a character YAML refuses, such as NUL
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        code = error.character if isinstance(error.character, int) else ord(error.character)
        message = f"invalid YAML: character U+{code:04X} is not allowed in a YAML file"
        raise GraphFileError([Diagnostic(file, line, column, message)]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise GraphFileError([Diagnostic(file, 1, 1, "the file is empty")])
        builder = _Builder(file, loader, copy_limit=alias_copy_limit(loader.written))
        data = builder.build(root, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        raise GraphFileError([Diagnostic(file, line, column, f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as error:
        raise GraphFileError([Diagnostic(file, 1, 1, f"invalid YAML: {error}")]) from None
    finally:
        loader.dispose()
    return SpecDocument(
        file, path or Path(file), data, builder.keys, builder.values, tuple(builder.problems)
    )


def load_document(path: Path | str) -> SpecDocument:
    """Read and parse a graph file; ``file`` in diagnostics is ``path`` as given."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise GraphFileError([Diagnostic(file, 1, 1, f"cannot read the file: {reason}")]) from None
    return parse_document(text, file, Path(path))
