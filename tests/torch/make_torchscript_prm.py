#!/usr/bin/env python3
"""Scripts a small TorchScript PRM that follows qstar's calling convention
(include/qstar/torch/prm.hpp), for tests/torch/test_prm.cpp.

    forward(input_ids: int64 [B, T] (right-padded with 0),
            attention_mask: int64 [B, T],
            step_ends: int64 [B, S] (-1 padded)) -> float32 [B, S]

The module is a fixed function of the token ids, so the test can compute the expected
scores itself: for a step ending at position e of sequence b,

    score = ((sum(input_ids[b, 0..e] * attention_mask[b, 0..e]) + 3 * e) mod 11) / 10

and 0 at padded steps (step_ends == -1).

Usage: make_torchscript_prm.py OUT.pt [VARIANT=PATH ...]
  OUT.pt                  the module above
  bad_shape=PATH          also writes a module returning a [B] tensor (a contract violation
                          the verifier must report)
  out_of_range=PATH       also writes a module returning scores + 1.5 (outside [0, 1])
(One interpreter start for all of them: importing torch is the slow part.)
"""
import sys

import torch


class StepPrm(torch.nn.Module):
    def __init__(self, variant: int):
        super().__init__()
        self.variant = variant

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                step_ends: torch.Tensor) -> torch.Tensor:
        ids = input_ids * attention_mask
        csum = torch.cumsum(ids, dim=1)
        idx = step_ends.clamp(min=0)
        s = torch.gather(csum, 1, idx) + 3 * idx
        score = torch.remainder(s, 11).to(torch.float32) / 10.0
        score = torch.where(step_ends >= 0, score, torch.zeros_like(score))
        if self.variant == 1:
            return score.sum(dim=1)
        if self.variant == 2:
            return score + 1.5
        return score


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    variants = {"good": 0, "bad_shape": 1, "out_of_range": 2}
    jobs = [("good", sys.argv[1])]
    for arg in sys.argv[2:]:
        name, sep, path = arg.partition("=")
        if not sep or name not in variants or not path:
            print(f"bad argument {arg!r}: expected VARIANT=PATH with VARIANT one of "
                  f"{sorted(variants)}", file=sys.stderr)
            return 2
        jobs.append((name, path))
    for name, path in jobs:
        torch.jit.script(StepPrm(variants[name])).save(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
