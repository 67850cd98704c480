"""`python -m models`: every registered model's parameter count next to its paper's figure.

Builds every model at full size (32x32x3 inputs, 10 classes), which takes a minute or so on a CPU.
Counts are trainable parameters, as the papers count them (BN moving statistics excluded).
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from . import count_params, create_model, list_models, model_info, paper_match


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list_models()
    header = f"{'model':<22} {'family':<12} {'params (M)':>10} {'paper (M)':>10} {'diff %':>8}  match"
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    mismatches = 0
    for name in names:
        info = model_info(name)
        params = count_params(create_model(name))
        keras.backend.clear_session()
        paper, diff, match = info["paper_params"], "", ""
        if paper is not None:
            pct, ok = paper_match(params, paper)
            diff, match = f"{pct:+.1f}", ("yes" if abs(pct) <= 2 else "rounding") if ok else "NO"
            mismatches += not ok
        paper_text = f"{paper / 1e6:.2f}" if paper is not None else "-"
        print(f"{name:<22} {info['family']:<12} {params / 1e6:>10.2f} {paper_text:>10} {diff:>8}  {match}", flush=True)
    print(
        f"\n{len(names)} models built in {time.perf_counter() - start:.0f} s. Counts are trainable parameters "
        "at 10 classes; 'rounding': off by more than 2% but within the rounding of the paper's printed figure."
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
