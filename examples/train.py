"""A small stand-in for a training script: reads its parameters, "trains" for a few epochs
and logs a validation loss each epoch, exactly as a real script would with sweepd.

It takes its parameters both ways a W&B script does: as command-line flags (``--lr=0.01``,
rendered from the sweep's ``command``) and through ``run.config``.
"""

import argparse
import math
import time

from sweepd.client import run

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--batch_size", type=int, default=32)
parser.add_argument("--optimizer", default="sgd")
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()

# The flags and run.config agree; a script may use either.
assert run.config.get("lr", args.lr) == args.lr

# A loss surface with its best near lr=0.01, batch_size=64, optimizer=adam.
best_loss = (math.log10(args.lr) + 2) ** 2 + abs(math.log2(args.batch_size / 64)) * 0.1
best_loss += {"adam": 0.0, "sgd": 0.15, "rmsprop": 0.05}.get(args.optimizer, 0.3)
for epoch in range(args.epochs):
    val_loss = best_loss + 1.0 / (epoch + 1)
    run.log({"val_loss": val_loss, "epoch": epoch})
    if run.should_stop():
        break
    time.sleep(0.05)
print(f"done: lr={args.lr} batch_size={args.batch_size} optimizer={args.optimizer}"
      f" val_loss={val_loss:.4f}")
