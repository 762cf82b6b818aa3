"""How much ``parse_event`` costs next to a bare ``json.loads`` of the same bytes.

    uv run python -m bench.parsing [--seconds 1.0]

Two payloads: a ``Message`` event (about 1 KB, the common case) and a Chat Close event with a
50-message history (about 19.5 KB, the largest event a receiver usually sees). Both functions run
in the same process, interleaved round by round, so that noise from other processes on the
machine hits both; each function's best (lowest) round is kept, and the ratio of the two bests is
what to compare between runs and machines. ``json.loads`` itself varies by about 8% from one
process to the next (its dicts depend on the string hash seed, ``PYTHONHASHSEED``), so the ratio of
the large payload moves by as much between runs: compare several.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from omnihook.contracts import parse_event

from .payloads import close_event, encode, message_event

__all__ = ["large_payload", "measure_parsing", "small_payload"]


def small_payload() -> bytes:
    """A visitor ``Message`` event (about 1 KB), as Rocket.Chat posts it."""
    return encode(message_event())


def large_payload() -> bytes:
    """A Chat Close event with a 50-message history (about 19 KB)."""
    return encode(close_event())


def _round(function: Callable[[bytes], object], body: bytes, calls: int) -> float:
    """Seconds per call over ``calls`` calls."""
    perf_counter = time.perf_counter
    start = perf_counter()
    for _ in range(calls):
        function(body)
    return (perf_counter() - start) / calls


def _calls_per_round(body: bytes, seconds: float) -> int:
    # Calibrate on parse_event (the slower of the two) so that a round lasts about `seconds`.
    calls = 1
    while True:
        elapsed = _round(parse_event, body, calls) * calls
        if elapsed >= 0.02:
            return max(1, int(calls * seconds / elapsed))
        calls *= 2


def _measure(name: str, body: bytes, seconds: float, rounds: int) -> dict[str, object]:
    calls = _calls_per_round(body, seconds / (2 * rounds))
    best_loads = best_parse = float("inf")
    for _ in range(rounds):
        # Interleaved: a burst of noise from another process lands on both, not on one of them.
        best_loads = min(best_loads, _round(json.loads, body, calls))
        best_parse = min(best_parse, _round(parse_event, body, calls))
    return {
        "payload": name,
        "bytes": len(body),
        "json_loads_us": best_loads * 1e6,
        "parse_event_us": best_parse * 1e6,
        "ratio": best_parse / best_loads,
    }


def measure_parsing(seconds_per_case: float = 1.0) -> list[dict[str, object]]:
    """Best-round µs per call of ``json.loads`` and of ``parse_event`` on each payload, and the
    ratio ``parse_event_us / json_loads_us``. Each payload takes about ``seconds_per_case``."""
    rounds = 10
    cases = (("Message event", small_payload()), ("close, 50 messages", large_payload()))
    for _, body in cases:
        parse_event(body)  # fail early on a payload the contracts reject; warms caches too
    return [_measure(name, body, seconds_per_case, rounds) for name, body in cases]


def _table(results: list[dict[str, object]]) -> str:
    lines = [
        f"{'payload':<20} {'bytes':>7} {'json.loads µs':>14} {'parse_event µs':>15} {'ratio':>6}"
    ]
    for row in results:
        lines.append(
            f"{row['payload']!s:<20} {row['bytes']!s:>7} {row['json_loads_us']:>14.1f}"
            f" {row['parse_event_us']:>15.1f} {row['ratio']:>6.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parsing", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="Time spent on each payload (default 1)."
    )
    args = parser.parse_args()
    print(_table(measure_parsing(args.seconds)))


if __name__ == "__main__":
    main()
