"""The benchmarks' targets: each checked target prints one line, and a missed one fails the script.

    targets = Targets()
    targets.at_least("flip_crop+cutout vs the fastest baseline", ratio, 20, unit="x")
    targets.below("worst p95", worst_ms, 300, unit=" ms")
    return targets.exit_code()   # 1 (after a line naming every missed target) if any was missed

`make bench` runs every benchmark and fails when one does; `tests/test_bench.py` runs each at small
sizes and checks that its exit status agrees with its target lines.
"""


class Targets:
    def __init__(self):
        self.missed = []

    def at_least(self, what: str, value: float, target: float, unit: str = "") -> bool:
        return self._check(what, value, target, value >= target, ">=", unit)

    def below(self, what: str, value: float, target: float, unit: str = "") -> bool:
        return self._check(what, value, target, value < target, "<", unit)

    def holds(self, what: str, ok: bool, detail: str = "") -> bool:
        """A target that is a condition rather than a number (same best weights, no lost runs)."""
        print(f"target {'met' if ok else 'MISSED'}: {what}{f' ({detail})' if detail else ''}")
        if not ok:
            self.missed.append(what)
        return ok

    def _check(self, what, value, target, ok, relation, unit) -> bool:
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return self.holds(what, ok, f"{shown}{unit}, target {relation} {target:g}{unit}")

    def exit_code(self) -> int:
        if self.missed:
            print(f"MISSED {len(self.missed)} target(s): {'; '.join(self.missed)}")
        return 1 if self.missed else 0
