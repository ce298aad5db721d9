"""The FHIRPath subset a ViewDefinition compiles to SQL: tokenizer, parser and syntax tree.

Only what the compiler translates is parsed (paths, indexers, function calls, literals,
``%constants``, ``$this``, comparison, arithmetic and boolean operators); anything else is a
:class:`~hacs_persistence.views.definition.ViewDefinitionError` naming the position, so an
unsupported expression is refused when the view is compiled, never mis-evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from hacs_persistence.views.errors import ViewDefinitionError

__all__ = [
    "Binary",
    "Call",
    "Constant",
    "Index",
    "Literal",
    "Member",
    "Node",
    "This",
    "parse",
]


@dataclass(frozen=True)
class Literal:
    """A string, number or boolean literal."""

    value: str | int | Decimal | bool


@dataclass(frozen=True)
class Constant:
    """``%name``: a constant of the view (or ``%rowIndex``)."""

    name: str


@dataclass(frozen=True)
class This:
    """``$this``, or the implicit focus a path starts from."""


@dataclass(frozen=True)
class Member:
    """``base.name`` (``base`` is ``This()`` for a path's first step)."""

    base: Node
    name: str


@dataclass(frozen=True)
class Index:
    """``base[index]``."""

    base: Node
    index: Node


@dataclass(frozen=True)
class Call:
    """``base.name(args)`` (``base`` is ``This()`` for a bare ``name(args)``)."""

    base: Node
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Binary:
    """``left op right`` for comparison, arithmetic, ``|`` and the boolean operators."""

    op: str
    left: Node
    right: Node


Node = Literal | Constant | This | Member | Index | Call | Binary

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
    | (?P<special>\$this|%[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|[=<>+\-*/|.()\[\],])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t"}
# Binding powers, lowest first (FHIRPath's precedence table, for the operators supported).
_INFIX = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "=": 5,
    "!=": 5,
    "<": 6,
    ">": 6,
    "<=": 6,
    ">=": 6,
    "|": 7,
    "+": 8,
    "-": 8,
    "*": 9,
    "/": 9,
}
_WORD_OPERATORS = frozenset({"and", "or", "xor", "implies"})


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _unescape(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _tokens(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(expression):
        if expression[position:].strip() == "":
            break
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise ViewDefinitionError(
                f"FHIRPath {expression!r}: unexpected text at position {position}; "
                "check the expression's syntax."
            )
        kind = match.lastgroup
        assert kind is not None
        text = match.group(kind)
        tokens.append(_Token(kind, text, match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(expression)))
    return tokens


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.at = 0

    def error(self, what: str) -> ViewDefinitionError:
        token = self.tokens[self.at]
        return ViewDefinitionError(
            f"FHIRPath {self.expression!r}: {what} at position {token.position}."
        )

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, text: str) -> None:
        if self.peek().text != text:
            raise self.error(f"expected {text!r}")
        self.take()

    def expression_(self, power: int = 0) -> Node:
        left = self.postfix(self.primary())
        while True:
            token = self.peek()
            op = token.text if token.kind in ("op", "ident") else ""
            if op not in _INFIX or _INFIX[op] <= power:
                return left
            if token.kind == "ident" and op not in _WORD_OPERATORS:
                return left
            self.take()
            right = self.expression_(_INFIX[op])
            left = Binary(op, left, right)

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "string":
            return Literal(_unescape(token.text))
        if token.kind == "number":
            text = token.text
            return Literal(Decimal(text) if "." in text else int(text))
        if token.kind == "special":
            return This() if token.text == "$this" else Constant(token.text[1:])
        if token.kind == "ident":
            if token.text in ("true", "false"):
                return Literal(token.text == "true")
            return self.step(This(), token)
        if token.text == "(":
            inner = self.expression_()
            self.expect(")")
            return inner
        self.at -= 1
        raise self.error("expected a path, literal or '('")

    def step(self, base: Node, token: _Token) -> Node:
        name = token.text.strip("`")
        if self.peek().text == "(":
            self.take()
            args: list[Node] = []
            if self.peek().text != ")":
                args.append(self.expression_())
                while self.peek().text == ",":
                    self.take()
                    args.append(self.expression_())
            self.expect(")")
            return Call(base, name, tuple(args))
        return Member(base, name)

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token.text == ".":
                self.take()
                name = self.take()
                if name.kind != "ident":
                    self.at -= 1
                    raise self.error("expected a name after '.'")
                node = self.step(node, name)
            elif token.text == "[":
                self.take()
                index = self.expression_()
                self.expect("]")
                node = Index(node, index)
            else:
                return node


def parse(expression: object) -> Node:
    """The syntax tree of a FHIRPath expression of the supported subset."""
    if not isinstance(expression, str) or not expression.strip():
        raise ViewDefinitionError(
            f"A FHIRPath expression must be a non-empty string, not {expression!r}."
        )
    parser = _Parser(expression)
    node = parser.expression_()
    if parser.peek().kind != "end":
        raise parser.error("unexpected token")
    return node
