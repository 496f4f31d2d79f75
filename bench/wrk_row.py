"""One Markdown table row from wrk's output (read on standard input).

Usage: wrk_row.py NAME PATH < wrk-output
"""

import re
import sys


def millis(text: str, percent: int) -> str:
    """wrk's latency at `percent` in milliseconds, as text ("?" when wrk did not print it)."""
    m = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return "?"
    value, unit = float(m.group(1)), m.group(2)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return f"{value * scale:.2f}"


def main() -> None:
    name, path = sys.argv[1], sys.argv[2]
    text = sys.stdin.read()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket:
        errors += sum(int(g) for g in socket.groups())
    rps = float(rate.group(1)) if rate else 0.0
    print(f"| {name} | `{path}` | {rps:,.0f} | {millis(text, 50)} | {millis(text, 90)} | "
          f"{millis(text, 99)} | {errors} |")


if __name__ == "__main__":
    main()
