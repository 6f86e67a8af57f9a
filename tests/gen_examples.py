"""Writes examples/: a bundle from the test log simulator, the log's key, and a
checkpoint an examiner might already hold. Run: python -m tests.gen_examples"""

from __future__ import annotations

from pathlib import Path

from tests.logsim import DAY, T0, sample_log

OUT = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    log, _ = sample_log(models=8, seed="example")
    OUT.mkdir(exist_ok=True)
    (OUT / "log.vkey").write_text(log.log_key.vkey + "\n")
    (OUT / "trusted-checkpoint.txt").write_bytes(log.checkpoint(10))
    (OUT / "bundle.json").write_bytes(log.bundle(T0 + 5 * DAY, trusted=10))
    print(f"wrote {OUT}: {len(log.entries)} entries, bundle as of day 5")


if __name__ == "__main__":
    main()
