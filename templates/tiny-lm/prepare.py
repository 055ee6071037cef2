"""The fixed part of the tiny-lm task: data, vocabulary and the metric. Read-only.

Run once before training (the harness runs it as the task's setup):

    python3 prepare.py                     # the bundled novel (public domain)
    python3 prepare.py --text a.txt b.txt  # your own UTF-8 text files
    python3 prepare.py --url https://...   # a plain-text file to download

The text is split by position: the last 10% is the validation set, never trained on.
Characters are the tokens (a byte-level vocabulary: every UTF-8 byte is a token), so
val_bpb — bits per byte of validation text — is comparable across any change.
"""

import argparse
import json
import math
import os
import sys
import urllib.request

try:
    import numpy as np
    import torch
except ImportError as error:
    # The task runs ${PYTHON:-python3}, and the python3 first on PATH is often not the
    # one with torch: one line that names the fix, rather than a traceback.
    sys.exit(
        "this task needs PyTorch: set PYTHON to an interpreter that has torch and numpy"
        f" (e.g. PYTHON=/usr/bin/python3), or install them ({sys.executable}: {error})"
    )

SEQ_LEN = 128  # context length in tokens (bytes)
VAL_FRACTION = 0.1  # the last 10% of the text is the validation set
EVAL_TOKENS = 2**16  # validation tokens scored by evaluate_bpb
VOCAB_SIZE = 256  # one token per byte value
TIME_BUDGET = float(os.environ.get("AR_TIME_BUDGET", "30"))  # training seconds

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEXT = os.path.join(HERE, "data", "pride-and-prejudice.txt")
CACHE = os.path.join(os.environ.get("AR_CACHE_DIR") or os.path.expanduser("~/.cache"), "tiny-lm")


def prepare(paths, url=None):
    """Writes train.bin and val.bin (uint8 bytes) into the cache folder."""
    if url:
        os.makedirs(CACHE, exist_ok=True)
        target = os.path.join(CACHE, "download.txt")
        print(f"downloading {url}")
        urllib.request.urlretrieve(url, target)
        paths = [target]
    data = b"".join(open(p, "rb").read() for p in paths)
    if len(data) < 20 * SEQ_LEN:
        sys.exit(f"prepare.py: the text is too short ({len(data)} bytes); give at least {20 * SEQ_LEN}")
    split = int(len(data) * (1 - VAL_FRACTION))
    os.makedirs(CACHE, exist_ok=True)
    np.frombuffer(data[:split], dtype=np.uint8).tofile(os.path.join(CACHE, "train.bin"))
    np.frombuffer(data[split:], dtype=np.uint8).tofile(os.path.join(CACHE, "val.bin"))
    with open(os.path.join(CACHE, "meta.json"), "w") as f:
        json.dump({"sources": paths, "train_bytes": split, "val_bytes": len(data) - split}, f)
    print(f"prepared {split} training and {len(data) - split} validation bytes in {CACHE}")


def load_split(split):
    """The training or validation bytes as a 1-D int64 tensor."""
    path = os.path.join(CACHE, f"{split}.bin")
    if not os.path.exists(path):
        sys.exit(f"no prepared data in {CACHE}: run `python3 prepare.py` first")
    return torch.from_numpy(np.fromfile(path, dtype=np.uint8).astype(np.int64))


def get_batch(data, batch_size, generator):
    """Random windows of SEQ_LEN tokens and their next-token targets."""
    starts = torch.randint(len(data) - SEQ_LEN - 1, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + SEQ_LEN] for s in starts.tolist()])
    y = torch.stack([data[s + 1 : s + 1 + SEQ_LEN] for s in starts.tolist()])
    return x, y


@torch.no_grad()
def evaluate_bpb(model, batch_size=32):
    """The metric: bits per byte on the first EVAL_TOKENS of the validation set.

    `model(x)` must return logits of shape (batch, SEQ_LEN, VOCAB_SIZE).
    """
    val = load_split("val")
    windows = min(EVAL_TOKENS, len(val) - 1) // SEQ_LEN
    x = val[: windows * SEQ_LEN].view(windows, SEQ_LEN)
    y = val[1 : windows * SEQ_LEN + 1].view(windows, SEQ_LEN)
    total_nats = 0.0
    was_training = model.training
    model.eval()
    for i in range(0, windows, batch_size):
        logits = model(x[i : i + batch_size]).float()
        total_nats += torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB_SIZE), y[i : i + batch_size].reshape(-1), reduction="sum"
        ).item()
    model.train(was_training)
    return total_nats / math.log(2) / (windows * SEQ_LEN)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", nargs="+", default=[os.environ.get("TINY_LM_TEXT") or DEFAULT_TEXT])
    parser.add_argument("--url", help="download a plain-text file instead")
    args = parser.parse_args()
    prepare(args.text, args.url)
