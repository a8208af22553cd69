"""How much checking costs on top of parsing: the demo scheme checked in full vs the same files only parsed.

Run: .venv/bin/python bench/bench_definitions.py   (prints figures; no thresholds)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ruamel.yaml import YAML  # noqa: E402

from server import builtins  # noqa: E402, F401 - the registries the definition checks read
from server.definitions.bundle import check_files, library_files, read_source  # noqa: E402
from server.expressions import compile_expression  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from common import median_seconds  # noqa: E402


def timed(fn, repeat: int = 15) -> float:  # noqa: ANN001
    return median_seconds(fn, repeat, warm_up=False)


def main() -> None:
    files = read_source(ROOT / "schemes" / "lidu")
    library = library_files(ROOT)
    everything = {**files, **library}

    def bare_parse() -> None:
        yaml = YAML(typ="safe")
        for text in everything.values():
            yaml.load(text)

    def full_check() -> None:
        check_files(files, library)

    base, full = timed(bare_parse), timed(full_check)
    print(f"definitions: {len(everything)} files, {sum(len(t) for t in everything.values()) / 1024:.0f} KiB")
    print(f"  bare YAML parse (baseline): {base * 1000:8.1f} ms")
    print(f"  parse + schema + references: {full * 1000:7.1f} ms   ratio {full / base:5.1f}x")

    # Each expression beside the same computation written in plain Python (floats rounded as the language
    # rounds them), 20,000 evaluations each, on a compiled expression (once, as definitions are).
    import math

    n = 20_000
    cases = [
        ("floor((0.95 - rate) / 0.005) * 2 if rate < 0.95 else 0", {"rate": 0.9312},
         lambda c: math.floor(round((0.95 - c["rate"]) / 0.005, 9)) * 2 if c["rate"] < 0.95 else 0),
        ("1 if urgency == 'urgent' or coalesce(size_m3, 0) < 3 else 3", {"urgency": "normal", "size_m3": 5.5},
         lambda c: 1 if c["urgency"] == "urgent" or (c["size_m3"] if c["size_m3"] is not None else 0) < 3 else 3),
        ("qty > 3 and kind in ['road', 'lane']", {"qty": 4, "kind": "lane"},
         lambda c: c["qty"] > 3 and c["kind"] in ["road", "lane"]),
    ]
    print(f"expression evaluation, {n:,} runs each (compiled once; plain Python doing the same as baseline)")
    for source, context, plain in cases:
        expression = compile_expression(source)
        assert expression.evaluate(context) == plain(context), source

        def ours(expression=expression, context=context) -> None:  # noqa: ANN001
            for _ in range(n):
                expression.evaluate(context)

        def bare(plain=plain, context=context) -> None:  # noqa: ANN001
            for _ in range(n):
                plain(context)

        b, o = timed(bare, 5), timed(ours, 5)
        print(f"  {source}")
        print(f"    plain Python {b * 1e6 / n:6.2f} µs   safe evaluator {o * 1e6 / n:6.2f} µs   ratio {o / b:5.1f}x"
              "   goal <= 10x")

if __name__ == "__main__":
    main()
