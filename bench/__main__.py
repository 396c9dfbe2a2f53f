"""``python -m bench [rules] [service] [health]``: run benchmarks, print each figure and verdict."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.processes import CpuMeter, machine_busy
from bench.report import Figure, table

PARTS = ("rules", "service", "health")
NOISY_BUSY = 0.2
"""Above this share of busy CPU before the start, the closing table carries a warning."""


def _run_rules(figures: list[Figure], args: argparse.Namespace) -> None:
    from bench import evaluation

    evaluation.run(figures, profile=args.profile)


def _run_service(figures: list[Figure], args: argparse.Namespace) -> None:
    from bench import service

    service.run(figures, log_dir=args.logs)


_text_rows: list[tuple[str, str, str, str]] = []
"""Figures of benchmarks that report finished rows (figure, value, budget, verdict)."""


def _run_health(figures: list[Figure], args: argparse.Namespace) -> None:
    from bench import health_report

    _text_rows.extend(health_report.run())


RUNNERS: dict[str, Callable[[list[Figure], argparse.Namespace], None]] = {
    "rules": _run_rules,
    "service": _run_service,
    "health": _run_health,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts (all by default); 0 unless a benchmark broke."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark leanguard against its budgets; every figure beside a baseline.",
    )
    parser.add_argument(
        "parts", nargs="*", metavar="part", help="rules, service, health (default: all)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of evaluate() for every variant, not only those over budget",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        metavar="DIR",
        help="keep the output of every process the service benchmark starts in DIR",
    )
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r} (choose from {', '.join(PARTS)})")
    parts = list(dict.fromkeys(args.parts)) or list(PARTS)
    figures: list[Figure] = []
    broken: list[str] = []
    busy = machine_busy()
    print(f"[bench] {os.cpu_count()} CPUs, {busy:.0%} busy before the start", flush=True)
    started = time.monotonic()
    load: list[str] = []
    for part in parts:
        meter = CpuMeter()
        try:
            RUNNERS[part](figures, args)
        except Exception:
            traceback.print_exc()
            print(f"[{part}] the benchmark broke; its remaining figures are missing", flush=True)
            broken.append(part)
        busy_share, others = meter.shares()
        load.append(f"{part}: machine {busy_share:.0%} busy, not ours ~{others:.0%}")
    elapsed = time.monotonic() - started
    print(f"\nleanguard benchmarks ({', '.join(parts)}; {elapsed:.0f} s)\n")
    print(table(figures) if figures else "(no figures)")
    if _text_rows:
        width = max(len(row[0]) for row in _text_rows)
        print()
        for name, value, budget, verdict in _text_rows:
            print(f"{name:<{width}} | {value:>10} | budget {budget:<10} | {verdict}")
    print(
        f"\nCPU while each part ran ({os.cpu_count()} CPUs; ours is this process and the ones it "
        f"started, PostgreSQL and Redis are not): {'; '.join(load)}."
    )
    if busy > NOISY_BUSY:
        print(
            f"The machine was {busy:.0%} busy before the benchmarks started (other processes): "
            "every figure ran beside that load and is noisier and lower than on a quiet machine."
        )
    if broken:
        print(f"\nBroken: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
