"""YAML loading that remembers where every mapping key and list item stood in the file.

Validation errors must name file:line:field; PyYAML's plain loaders drop positions, so this loader keeps
them in a side table keyed by the path of each value (a tuple of keys and indices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, TopologyError

Path_ = tuple[str | int, ...]


@dataclass
class MarkedDoc:
    """A loaded YAML document plus the line (1-based) of each path inside it."""

    data: Any
    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest known prefix of ``path`` (errors inside a value point at its key)."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return None

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(message, self.file, self.line_of(path), ".".join(str(p) for p in path))


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, path + ("<key>",), {}, file)
            if key in out:
                raise TopologyError([Problem(f"duplicate key {key!r}", file, key_node.start_mark.line + 1,
                                             ".".join(str(p) for p in path + (key,)))])
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), lines, file) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_marked(path: str | Path, text: str | None = None) -> MarkedDoc:
    """Parse a YAML file (or ``text`` under that name) keeping line numbers; syntax errors become TopologyError."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise TopologyError([Problem(f"cannot read file: {exc.strerror}", name)]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TopologyError([Problem(f"not valid YAML: {getattr(exc, 'problem', exc)}", name,
                                     mark.line + 1 if mark else None)]) from None
    if node is None:
        raise TopologyError([Problem("the file is empty", name)])
    lines: dict[Path_, int] = {}
    data = _construct(node, (), lines, name)
    return MarkedDoc(data, name, lines)
