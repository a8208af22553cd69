"""Safe expression language for conditions and formulas in YAML definitions (see engine.py)."""

from .engine import (
    FUNCTIONS,
    MAX_INT,
    MAX_LENGTH,
    MAX_NODES,
    MAX_SECONDS,
    MAX_STRING_LENGTH,
    Expression,
    ExpressionError,
    check_expression,
    compile_expression,
)

__all__ = [
    "FUNCTIONS",
    "MAX_INT",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_SECONDS",
    "MAX_STRING_LENGTH",
    "Expression",
    "ExpressionError",
    "check_expression",
    "compile_expression",
]
