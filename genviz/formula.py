"""A log-density typed by a user, read through a whitelist over Python's syntax tree.

`parse_formula("-((x**2 + y**2)**0.5 - 2)**2 / 0.08")` returns a `Formula`, a tree of small
closures over float64 torch operations, built from the only syntax it allows: numbers, `x`, `y`,
`pi`, `e`, `+ - * / **` (a constant exponent of at most ±16), unary signs, comparisons as the
condition of `where(condition, a, b)`, and the functions in `FUNCTIONS`. Anything else is refused
with one line that says what is not allowed. The text is parsed, never run: nothing from it reaches
eval, exec or compile, and no attribute is looked up by a name it contains. Its length, node count
and depth are capped, so reading and evaluating it costs a bounded amount.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, reduce
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MAX_CHARS = 500
MAX_NODES = 200  # expression nodes: bounds the work per evaluated point
MAX_DEPTH = 100  # nesting: bounds the recursion of building and evaluating (a long sum nests too)
MAX_EXPONENT = 16  # |p| in a ** p; larger ones only overflow
MAX_TERMS = 8  # arguments of logsumexp, minimum and maximum
EXAMPLE = "-((x**2 + y**2)**0.5 - 2)**2 / 0.08"

Values = Callable[[Any, Any], Any]  # (x, y) float64 tensors -> values, float64

# name -> (fewest arguments, most arguments); each name's torch operation is in `_operations`.
FUNCTIONS: dict[str, tuple[int, int]] = {
    "exp": (1, 1),
    "log": (1, 1),
    "sqrt": (1, 1),
    "abs": (1, 1),
    "sin": (1, 1),
    "cos": (1, 1),
    "tanh": (1, 1),
    "sigmoid": (1, 1),
    "logsumexp": (1, MAX_TERMS),
    "minimum": (2, MAX_TERMS),
    "maximum": (2, MAX_TERMS),
}
CONSTANTS = {"pi": math.pi, "e": math.e}
ALLOWED = "use x, y, pi, e, numbers, + - * / **, where(condition, a, b) and " + ", ".join(FUNCTIONS)
BINARY: dict[type, str] = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
COMPARE: dict[type, str] = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}


@lru_cache(maxsize=1)
def _operations() -> dict[str, Callable[..., Any]]:
    """The torch operation of every name above, imported when a formula is first evaluated: reading
    one, and refusing it, needs no torch, so the command line refuses a bad formula at once."""
    import torch

    def logsumexp(*terms: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(torch.stack(torch.broadcast_tensors(*terms)), 0)

    return {
        "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs,
        "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
        "logsumexp": logsumexp,
        "minimum": lambda *terms: reduce(torch.minimum, terms),
        "maximum": lambda *terms: reduce(torch.maximum, terms),
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
        "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
        "pow": torch.pow, "where": torch.where, "and": torch.logical_and,
        "constant": lambda value: torch.tensor(value, dtype=torch.float64),
    }  # fmt: skip


# What a refused construct is called in a message.
REFUSED: dict[type, str] = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "`:=`",
    ast.Subscript: "a subscript `[…]`",
    ast.Slice: "a slice",
    ast.Starred: "`*`",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.BoolOp: "`and`/`or`",
    ast.IfExp: "`… if … else …` (use where(condition, a, b))",
    ast.Await: "`await`",
    ast.Yield: "`yield`",
    ast.YieldFrom: "`yield`",
}
OPERATORS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|"}
OPERATORS |= {ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.Not: "not", ast.Invert: "~"}


class FormulaError(ValueError):
    """A formula that cannot be used; the message is one line saying what is wrong."""


@dataclass(frozen=True)
class Formula:
    """A parsed formula: `text` as typed, `values` its float64 function of (x, y)."""

    text: str
    values: Values

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """points: (n, 2) -> (n,) float64."""
        import torch

        x, y = points[:, 0].double(), points[:, 1].double()
        return torch.broadcast_to(self.values(x, y), x.shape)


def parse_formula(text: str) -> Formula:
    """Read `text` as a log-density in x and y; raises FormulaError, naming what is not allowed."""
    text = text.strip()
    if not text:
        raise FormulaError(f"type a log-density in x and y, e.g. {EXAMPLE}")
    if len(text) > MAX_CHARS:
        raise FormulaError(f"the formula has {len(text):,} characters; the limit is {MAX_CHARS}")
    if not text.isascii():
        where = next(i for i, c in enumerate(text) if not c.isascii())
        raise FormulaError(f"{text[where]!r} at position {where + 1} is not allowed: only ASCII characters")
    tree = _syntax_tree(text)
    _check_size(tree)
    return Formula(text, _Builder(text).build(tree.body))


def _syntax_tree(text: str) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as error:
        where = f" at position {error.offset}" if error.offset else ""
        raise FormulaError(f"cannot read the formula{where}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError):  # a NUL byte; nesting beyond the parser's stack
        raise FormulaError("cannot read the formula: it is not a single expression") from None


def _check_size(tree: ast.Expression) -> None:
    """Count expression nodes, then measure nesting without recursion, before anything is built."""
    if sum(isinstance(node, ast.expr) for node in ast.walk(tree)) > MAX_NODES:
        raise FormulaError(f"the formula has more than {MAX_NODES} terms; simplify it")
    stack = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels")
        stack += [(child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]


class _Builder:
    """Turns allowed syntax nodes into closures; refuses every other node."""

    def __init__(self, text: str) -> None:
        self.text = text

    def build(self, node: ast.expr) -> Values:
        if isinstance(node, ast.Constant):
            value = _number(node.value, self._source(node))
            return lambda x, y: _operations()["constant"](value)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Attribute):
            raise FormulaError(f"`{node.attr}` is not allowed: {ALLOWED}")
        if isinstance(node, ast.Compare):
            raise FormulaError("a comparison is allowed only as the condition of where(condition, a, b)")
        raise FormulaError(f"{REFUSED.get(type(node), type(node).__name__)} is not allowed: {ALLOWED}")

    def _source(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or type(node).__name__

    def _name(self, node: ast.Name) -> Values:
        if node.id == "x":
            return lambda x, y: x
        if node.id == "y":
            return lambda x, y: y
        if node.id in CONSTANTS:
            value = CONSTANTS[node.id]
            return lambda x, y: _operations()["constant"](value)
        raise FormulaError(f"`{node.id}` is not allowed: {ALLOWED}")

    def _unary(self, node: ast.UnaryOp) -> Values:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda x, y: -operand(x, y)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise FormulaError(f"`{OPERATORS.get(type(node.op), '?')}` is not allowed: {ALLOWED}")

    def _binary(self, node: ast.BinOp) -> Values:
        if isinstance(node.op, ast.Pow):
            return self._power(node)
        operation = BINARY.get(type(node.op))
        if operation is None:
            raise FormulaError(f"`{OPERATORS.get(type(node.op), '?')}` is not allowed: {ALLOWED}")
        left, right = self.build(node.left), self.build(node.right)
        return lambda x, y: _operations()[operation](left(x, y), right(x, y))

    def _power(self, node: ast.BinOp) -> Values:
        """base ** p with p a number in [−MAX_EXPONENT, MAX_EXPONENT]: a power tower could only overflow."""
        exponent = _constant_exponent(node.right)
        if exponent is None or abs(exponent) > MAX_EXPONENT:
            raise FormulaError(
                f"`{self._source(node)}`: an exponent must be a number between −{MAX_EXPONENT} and "
                f"{MAX_EXPONENT}, got `{self._source(node.right)}`"
            )
        base = self.build(node.left)
        return lambda x, y: _operations()["pow"](base(x, y), exponent)

    def _call(self, node: ast.Call) -> Values:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        shown = name or self._source(node.func)
        if name != "where" and name not in FUNCTIONS:
            raise FormulaError(f"`{shown}(…)` is not allowed: {ALLOWED}")
        if node.keywords:
            raise FormulaError(f"`{name}(…)` takes no keyword arguments")
        if name == "where":
            return self._where(node)
        fewest, most = FUNCTIONS[name]
        if not fewest <= len(node.args) <= most:
            wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise FormulaError(f"`{name}(…)` takes {wanted} argument(s), got {len(node.args)}")
        arguments = [self.build(argument) for argument in node.args]
        return lambda x, y: _operations()[name](*(argument(x, y) for argument in arguments))

    def _where(self, node: ast.Call) -> Values:
        if len(node.args) != 3 or not isinstance(node.args[0], ast.Compare):
            raise FormulaError(
                "where takes three arguments: where(condition, a, b), e.g. where(x < 0, -x, x)"
            )
        condition = self._condition(node.args[0])
        then, otherwise = self.build(node.args[1]), self.build(node.args[2])
        return lambda x, y: _operations()["where"](condition(x, y), then(x, y), otherwise(x, y))

    def _condition(self, node: ast.Compare) -> Values:
        """a < b, or a chain a < b <= c (each pair must hold)."""
        if any(type(op) not in COMPARE for op in node.ops):
            raise FormulaError("a condition compares with <, <=, > or >=")
        terms = [self.build(term) for term in [node.left, *node.comparators]]
        tests = [COMPARE[type(op)] for op in node.ops]

        def holds(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            values = [term(x, y) for term in terms]
            operations = _operations()
            pairs = [operations[test](a, b) for test, a, b in zip(tests, values, values[1:], strict=False)]
            return reduce(operations["and"], pairs)

        return holds


def _number(value: object, shown: str) -> float:
    """A numeric literal as a finite float; text, booleans, complex numbers and overflow refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "text in quotes" if isinstance(value, str | bytes) else f"`{shown}`"
        raise FormulaError(f"{kind} is not allowed: {ALLOWED}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FormulaError(f"`{shown}` is not a finite number")
    return number


def _constant_exponent(node: ast.expr) -> float | None:
    """The exponent's value when it is a plain number (with an optional sign), else None."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return None
    if not isinstance(node.value, int | float) or abs(node.value) > MAX_EXPONENT:
        return None
    return sign * float(node.value)
