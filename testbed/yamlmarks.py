"""YAML loading that remembers where every mapping key and list item stood in the file.

Validation errors must name file:line:field; PyYAML's plain loaders drop positions, so this loader keeps
them in a side table keyed by the path of each value (a tuple of keys and indices).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .errors import Problem, TopologyError, did_you_mean

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
            text = Path(path).read_text(encoding="utf-8")
        except IsADirectoryError:
            raise TopologyError([Problem("is a directory, not a YAML file", name)]) from None
        except OSError as exc:
            raise TopologyError([Problem(f"cannot read file: {exc.strerror}", name)]) from None
        except UnicodeDecodeError as exc:
            raise TopologyError([Problem(f"not a text file (byte {exc.start} is not UTF-8): a YAML file "
                                         "was expected", name)]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise TopologyError([Problem("the file is empty", name)])
        lines: dict[Path_, int] = {}
        data = _construct(node, (), lines, name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TopologyError([Problem(f"not valid YAML: {getattr(exc, 'problem', exc)}", name,
                                     mark.line + 1 if mark else None)]) from None
    except RecursionError:
        raise TopologyError([Problem("nested too deeply to be a lab or scenario file", name)]) from None
    return MarkedDoc(data, name, lines)


# ---------------------------------------------------------------- did-you-mean for pydantic locations

def _keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts (aliases where a field has one)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def _step(tp: Any, part: Any) -> Any:
    """The type one pydantic ``loc`` part leads to from ``tp`` (None when it leads nowhere known)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return args[0] if args else None
    if origin is dict:
        return args[1] if len(args) == 2 else None
    members = [a for a in args if a is not type(None)] if origin in (typing.Union, types.UnionType) else []
    for m in members:  # pydantic names the member tried: its tag (``tcpseq``) or its class name
        inner = typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m
        tag = getattr(inner, "model_fields", {}).get("kind")
        tags = typing.get_args(tag.annotation) if tag is not None else ()
        if part in tags or part == getattr(inner, "__name__", None):
            return inner
    if len(members) == 1:
        return _step(members[0], part)
    return None


def unknown_field(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``unknown field 'intervall_ms'; did you mean 'interval_ms'?`` for pydantic's extra_forbidden error
    at ``loc`` (the last part is the unknown key), walking ``model`` to the mapping that refused it."""
    *where, key = loc or ("?",)
    tp: Any = model
    for part in where:
        if isinstance(part, str) and "[" in part:  # 'function-after[...]' and similar wrappers
            continue
        tp = _step(tp, part)
        if tp is None:
            break
    while typing.get_origin(tp) in (typing.Annotated, typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) != 1 and typing.get_origin(tp) is not typing.Annotated:
            break
        tp = inner[0]
    keys = _keys(tp) if isinstance(tp, type) and issubclass(tp, BaseModel) else []
    return f"unknown field {key!r}" + did_you_mean(key, keys)
