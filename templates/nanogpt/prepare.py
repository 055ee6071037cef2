"""The fixed part of the nanogpt task: data, tokenizer, data loader and the metric. Read-only.

Run once per machine before training (the harness runs it as the task's setup):

    python3 prepare.py --text corpus.txt more.txt.xz    # local UTF-8 text (.xz and .gz too)
    python3 prepare.py --url https://example.org/a.txt  # download one plain-text file

The template ships no corpus: give at least a few hundred kilobytes of text; tens of
megabytes make a good overnight task.

Rules that make val_bpb comparable across every change to train.py:

- Documents. Text is decoded as UTF-8 (invalid bytes become U+FFFD) with CRLF turned
  into LF; runs of blank (whitespace-only) lines separate documents, and the blank lines
  themselves are dropped. Every document starts with the special token BOS.
- Validation. The documents, in order, are cut into VAL_SECTIONS sections of equal
  length in characters; in each section the documents that start in its last
  VAL_FRACTION are the validation set, never trained on. A concatenation of sources
  is thus represented by all of them, and each held-out piece is contiguous text.
- Tokenizer. Byte-level BPE: the 256 byte values are the first tokens, so any text
  encodes; merges are learnt on a sample of at most TOKENIZER_SAMPLE_CHARS characters
  of training documents, spread evenly over them; BOS is the last token. Text is first
  split into chunks (words, numbers, punctuation, whitespace) by SPLIT_PATTERN, and
  merges never cross chunks.
- Rows. A training row (TrainLoader) holds MAX_SEQ_LEN + 1 tokens: it starts at the BOS
  of the document that holds a uniformly drawn token and runs on through the documents
  that follow. No padding; only a row's last document is cut, and a document longer
  than a row is only ever seen up to its first MAX_SEQ_LEN tokens. Validation rows are
  packed alike, deterministically: the first starts at the validation set's start,
  each next one at the first BOS at or after the previous row's last input.
- Metric. val_bpb = (sum of cross-entropy, in nats, over the target tokens of the
  first EVAL_TOKENS // MAX_SEQ_LEN validation rows) / ln 2 / (UTF-8 bytes of those
  targets). BOS targets count in neither sum. The model must be causal: evaluate_bpb
  stops with an error if a row's predictions change when later tokens do.

Environment (for small machines and CI; the defaults are the GPU task):

    NANOGPT_SEQ_LEN      tokens per row, default 2048
    NANOGPT_EVAL_TOKENS  validation tokens scored, default 262144
    NANOGPT_VOCAB        tokenizer size when preparing, default 8192 (training reads
                         the prepared tokenizer)
    AR_TIME_BUDGET       training seconds, default 300; the first UNTIMED_STEPS
                         optimiser steps (compilation) are not counted
    AR_CACHE_DIR         prepared data go to $AR_CACHE_DIR/nanogpt (default
                         ~/.cache/autoresearch-nanogpt)
"""

import argparse
import gzip
import hashlib
import importlib.util
import json
import lzma
import math
import multiprocessing
import os
import re
import shutil
import sys
import time
import urllib.request
from array import array
from collections import Counter
from heapq import heapify, heappop, heappush

import numpy as np
import regex


def _env_int(name, default):
    return int(os.environ.get(name) or default)


MAX_SEQ_LEN = _env_int("NANOGPT_SEQ_LEN", 2048)  # tokens per training and validation row
EVAL_TOKENS = _env_int("NANOGPT_EVAL_TOKENS", 2**18)  # validation tokens scored by evaluate_bpb
VOCAB_SIZE = _env_int("NANOGPT_VOCAB", 8192)  # tokenizer size, BOS included
TIME_BUDGET = float(os.environ.get("AR_TIME_BUDGET") or 300)  # training seconds
UNTIMED_STEPS = 2  # not timed: the first step compiles, the second catches any one-time work left
VAL_FRACTION = 0.02  # of each section
VAL_SECTIONS = 20
TOKENIZER_SAMPLE_CHARS = 32 * 2**20
# Like GPT-4's: contractions, letters with one leading non-letter, one or two digits,
# punctuation runs, newlines with their indentation, other whitespace. Numbers are
# split finely because the vocabulary is small.
SPLIT_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,2}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
FORMAT = 1  # bump when the rules above change, so that old caches are rebuilt

CACHE = (
    os.path.join(os.environ["AR_CACHE_DIR"], "nanogpt")
    if os.environ.get("AR_CACHE_DIR")
    else os.path.expanduser("~/.cache/autoresearch-nanogpt")
)

# Compiled kernels are kept beside the data: a trial that compiles a graph an earlier
# trial compiled starts several times faster. Set before torch is imported.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(CACHE, "inductor"))
os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(CACHE, "triton"))


def _keep_bytecode():
    """Images that set PYTHONDONTWRITEBYTECODE and ship torch without bytecode (containers
    often do) make every replicate compile torch's Python sources again: 8 s and more of
    each start on one such machine. There the bytecode is kept beside the compiled kernels,
    in a folder replicates may write, while a gigabyte is free: Python would rename a .pyc
    cut short by a full disk into place, and every later import would fail on it."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.pycache_prefix is not None:
        return  # `python3 -B` alone is a choice of this run's, kept
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None or os.path.exists(importlib.util.cache_from_source(spec.origin)):
        return
    folder = os.path.join(os.environ["TORCHINDUCTOR_CACHE_DIR"], "python-bytecode")
    try:
        os.makedirs(folder, exist_ok=True)
        if shutil.disk_usage(folder).free < 2**30 or not os.access(folder, os.W_OK):
            return
    except OSError:
        return
    sys.pycache_prefix = folder
    sys.dont_write_bytecode = False


_keep_bytecode()

import torch  # noqa: E402

_SPLIT = regex.compile(SPLIT_PATTERN)

# ---------------------------------------------------------------------------------------
# Text and documents


def read_text(path):
    """A file's text; .xz and .gz files are decompressed."""
    opener = lzma.open if path.endswith(".xz") else gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace").replace("\r\n", "\n")


def split_documents(text):
    """Documents are separated by runs of whitespace-only lines."""
    return [d for d in re.split(r"\n\s*\n", text) if d.strip()]


def is_validation(docs):
    """One flag per document: held out for validation (see the module's docstring)."""
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    section = max(1, int(lengths.sum())) / VAL_SECTIONS
    return (starts % section) >= (1 - VAL_FRACTION) * section


# ---------------------------------------------------------------------------------------
# Tokenizer


_NO_MERGE = 2**31


def _merge(ids, a, b, new):
    """ids with every (a, b) pair, left to right, replaced by new; ids itself if none."""
    out = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out if len(out) != n else ids


def train_bpe(word_counts, num_merges):
    """The merges, in order, that byte-pair encoding learns from chunk counts.

    Pairs are counted once over the distinct chunks; a merge then visits only the chunks
    that hold the pair and updates only the pairs beside each merge site. Ties go to the
    smallest pair, so the result is deterministic.
    """
    words, freqs = [], []
    for word, count in word_counts.items():
        ids = list(word.encode("utf-8"))
        if len(ids) > 1:
            words.append(ids)
            freqs.append(count)
    counts, where = Counter(), {}
    for w, ids in enumerate(words):
        f = freqs[w]
        for pair in zip(ids, ids[1:]):
            counts[pair] += f
            where.setdefault(pair, set()).add(w)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapify(heap)
    merges = []
    while len(merges) < num_merges and heap:
        negative, pair = heappop(heap)
        if counts.get(pair, 0) != -negative:
            continue  # stale: every change pushed the new count
        if -negative < 2:
            break
        a, b = pair
        new = 256 + len(merges)
        merges.append(pair)
        changed = set()
        for w in where.pop(pair):
            ids, f = words[w], freqs[w]
            out, i, n = [], 0, len(ids)
            while i < n:
                if ids[i] == a and i + 1 < n and ids[i + 1] == b:
                    if out:
                        left = out[-1]
                        if left != new:  # else (b, a) went with the previous site
                            counts[left, a] -= f
                            changed.add((left, a))
                        counts[left, new] += f
                        changed.add((left, new))
                        where.setdefault((left, new), set()).add(w)
                    if i + 2 < n:
                        counts[b, ids[i + 2]] -= f
                        changed.add((b, ids[i + 2]))
                    out.append(new)
                    i += 2
                else:
                    if out and out[-1] == new:
                        counts[new, ids[i]] += f
                        changed.add((new, ids[i]))
                        where.setdefault((new, ids[i]), set()).add(w)
                    out.append(ids[i])
                    i += 1
            if len(out) != n:
                words[w] = out
        changed.discard(pair)
        del counts[pair]
        for p in changed:
            c = counts[p]
            if c > 0:
                heappush(heap, (-c, p))
            else:
                del counts[p]
    return merges


class Tokenizer:
    """Byte-level BPE with one special token, BOS, whose id is the last."""

    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: 256 + i for i, pair in enumerate(self.merges)}
        self.bos_id = 256 + len(self.merges)
        self.vocab_size = self.bos_id + 1
        self._pieces = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self._pieces.append(self._pieces[a] + self._pieces[b])
        self._pieces.append(b"")  # BOS stands for no text
        self._bos = array("H", [self.bos_id]).tobytes()
        self._cache = {}

    def encode_chunk(self, chunk):
        """Token ids of one chunk of SPLIT_PATTERN: the lowest-ranked merge first, again."""
        ids = list(chunk.encode("utf-8"))
        get = self.ranks.get
        while len(ids) > 1:
            ranks = [get(pair, _NO_MERGE) for pair in zip(ids, ids[1:])]
            new = min(ranks)
            if new == _NO_MERGE:
                break
            i = ranks.index(new)
            ids = _merge(ids, ids[i], ids[i + 1], new)
        return ids

    def _chunk_bytes(self, chunk):
        if len(self._cache) > 2**20:  # a bound on memory for corpora with endless distinct chunks
            self._cache.clear()
        data = self._cache[chunk] = array("H", self.encode_chunk(chunk)).tobytes()
        return data

    def encode_bytes(self, text):
        """One document as uint16 token ids in native byte order, BOS first."""
        get, miss = self._cache.get, self._chunk_bytes
        return self._bos + b"".join([get(c) or miss(c) for c in _SPLIT.findall(text)])

    def encode(self, text):
        """Token ids of one document, BOS first."""
        return np.frombuffer(self.encode_bytes(text), dtype=np.uint16).tolist()

    def decode_bytes(self, ids):
        return b"".join(self._pieces[i] for i in ids)

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self):
        """UTF-8 bytes each token stands for (0 for BOS): the denominator of val_bpb."""
        return np.array([len(p) for p in self._pieces], dtype=np.int64)

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"pattern": SPLIT_PATTERN, "bos_id": self.bos_id, "merges": self.merges}, f)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(json.load(f)["merges"])


def load_tokenizer():
    path = os.path.join(CACHE, "tokenizer.json")
    if not os.path.exists(path):
        sys.exit(f"no prepared data in {CACHE}: run `python3 prepare.py --text FILE` first")
    return Tokenizer.load(path)


# Worker side of the parallel steps; the tokenizer arrives once per process.
_worker_tokenizer = None


def _init_worker(merges):
    global _worker_tokenizer
    _worker_tokenizer = Tokenizer(merges) if merges is not None else None


def _count_chunks(docs):
    counts = Counter()
    for doc in docs:
        counts.update(_SPLIT.findall(doc))
    return counts


def _encode_docs(task):
    split, docs = task
    return split, b"".join([_worker_tokenizer.encode_bytes(doc) for doc in docs])


def _batches(docs, chars):
    """Consecutive slices of docs of about `chars` characters each."""
    start, size = 0, 0
    for i, doc in enumerate(docs):
        size += len(doc)
        if size >= chars:
            yield docs[start : i + 1]
            start, size = i + 1, 0
    if start < len(docs):
        yield docs[start:]


# ---------------------------------------------------------------------------------------
# Preparation


def _fingerprint(paths):
    settings = [FORMAT, VOCAB_SIZE, TOKENIZER_SAMPLE_CHARS, VAL_FRACTION, VAL_SECTIONS]
    h = hashlib.sha256(json.dumps(settings).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def prepare(paths, workers, force=False):
    """Writes tokenizer.json, train.bin, val.bin (uint16 tokens) and meta.json to CACHE."""
    os.makedirs(CACHE, exist_ok=True)
    fingerprint = _fingerprint(paths)
    meta_path = os.path.join(CACHE, "meta.json")
    if not force and os.path.exists(meta_path):
        with open(meta_path) as f:
            if json.load(f).get("fingerprint") == fingerprint:
                print(f"already prepared in {CACHE} (same sources and settings); --force redoes it")
                return
    if VOCAB_SIZE < 257 or VOCAB_SIZE > 2**16:
        sys.exit(f"prepare.py: NANOGPT_VOCAB must be between 257 and 65536, got {VOCAB_SIZE}")
    t0 = time.time()
    docs = []
    for p in paths:
        docs.extend(split_documents(read_text(p)))
    chars = sum(len(d) for d in docs)
    if chars < 50_000:
        sys.exit(f"prepare.py: the text is too short ({chars} characters); give at least 50,000")
    held_out = is_validation(docs)
    if not held_out.any() or held_out.all():
        sys.exit("prepare.py: too few documents to hold some out for validation; give more text")
    train_docs = [d for d, v in zip(docs, held_out) if not v]
    print(f"read {len(docs):,} documents, {chars:,} characters ({time.time() - t0:.1f}s)")

    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(None,)) as pool:
        t1 = time.time()
        train_chars = sum(len(d) for d in train_docs)
        sample = train_docs[:: max(1, math.ceil(train_chars / TOKENIZER_SAMPLE_CHARS))]
        sample_chars = sum(len(d) for d in sample)
        counts = Counter()
        parts = _batches(sample, sample_chars // (4 * workers) + 1)
        for part in pool.imap_unordered(_count_chunks, parts):
            counts.update(part)
        merges = train_bpe(counts, VOCAB_SIZE - 257)
    tokenizer = Tokenizer(merges)
    print(
        f"tokenizer: {tokenizer.vocab_size} tokens from {sample_chars:,} characters, "
        f"{len(counts):,} distinct chunks ({time.time() - t1:.1f}s)"
    )

    t2 = time.time()
    tasks, start = [], 0
    batch_chars = max(20_000, min(2**20, chars // (8 * workers)))
    for i in range(1, len(docs) + 1):
        if i == len(docs) or held_out[i] != held_out[start]:
            split = "val" if held_out[start] else "train"
            tasks.extend((split, b) for b in _batches(docs[start:i], batch_chars))
            start = i
    tmp = {s: os.path.join(CACHE, f"{s}.bin.tmp") for s in ("train", "val")}
    files = {s: open(p, "wb") for s, p in tmp.items()}
    sizes = {"train": 0, "val": 0}
    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(merges,)) as pool:
        for split, data in pool.imap(_encode_docs, tasks):
            files[split].write(data)
            sizes[split] += len(data) // 2
    for s, f in files.items():
        f.close()
        os.replace(tmp[s], os.path.join(CACHE, f"{s}.bin"))
    seconds = time.time() - t2
    print(
        f"encoded {sizes['train']:,} training and {sizes['val']:,} validation tokens "
        f"in {seconds:.1f}s ({chars / 1e6 / seconds:.1f} MB/s, {workers} processes); "
        f"{chars / sum(sizes.values()):.2f} characters per token"
    )
    tokenizer.save(os.path.join(CACHE, "tokenizer.json"))
    with open(meta_path, "w") as f:
        json.dump(
            {
                "fingerprint": fingerprint,
                "sources": [os.path.abspath(p) for p in paths],
                "documents": len(docs),
                "validation_documents": int(held_out.sum()),
                "vocab_size": tokenizer.vocab_size,
                "train_tokens": sizes["train"],
                "val_tokens": sizes["val"],
            },
            f,
            indent=1,
        )
    if sizes["val"] < EVAL_TOKENS * 1.05:
        print(f"note: {sizes['val']:,} validation tokens; evaluate_bpb wants about {EVAL_TOKENS:,}")
    print(f"prepared in {CACHE} ({time.time() - t0:.1f}s)")


def download(url):
    name = os.path.basename(url.split("?")[0]) or "download.txt"
    target = os.path.join(CACHE, "download-" + name)
    if not os.path.exists(target):
        os.makedirs(CACHE, exist_ok=True)
        print(f"downloading {url}")
        urllib.request.urlretrieve(url, target + ".part")
        os.replace(target + ".part", target)
    return target


# ---------------------------------------------------------------------------------------
# For train.py: tokens, batches and the metric


def _load_tokens(split):
    path = os.path.join(CACHE, f"{split}.bin")
    if not os.path.exists(path):
        sys.exit(f"no prepared data in {CACHE}: run `python3 prepare.py --text FILE` first")
    return np.fromfile(path, dtype=np.uint16)


class TrainLoader:
    """Random training rows of seq_len + 1 tokens, each starting at a BOS.

    A row is the document that holds a uniformly drawn token, from its start, followed
    by the next documents: no padding, and only the last document of a row is cut.
    Everything stays on `device`, so a batch costs no host work and no synchronisation.
    """

    def __init__(self, batch_size, seq_len=MAX_SEQ_LEN, device="cpu", seed=0):
        tokens = _load_tokens("train")
        bos = load_tokenizer().bos_id
        if len(tokens) < 2 * (seq_len + 1):
            sys.exit(f"only {len(tokens)} training tokens: too few for rows of {seq_len}")
        self.tokens = torch.from_numpy(tokens.astype(np.int32)).to(device)
        starts = np.flatnonzero(tokens[: len(tokens) - seq_len] == bos)
        self.starts = torch.from_numpy(starts).to(device)
        self.limit = int(starts[-1]) + 1
        self.offsets = torch.arange(seq_len + 1, device=device)
        self.batch_size = batch_size
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def next_batch(self):
        """Inputs and targets, int64 tensors of shape (batch_size, seq_len)."""
        draw = torch.randint(
            self.limit, (self.batch_size,), generator=self.generator, device=self.tokens.device
        )
        first = self.starts[torch.searchsorted(self.starts, draw, right=True) - 1]
        rows = self.tokens[first[:, None] + self.offsets].long()
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


def validation_rows(seq_len=MAX_SEQ_LEN, count=None):
    """The scored rows: greedy BOS-aligned packing from the start of the validation set.

    A row starts at a BOS and holds seq_len + 1 tokens; the next row starts at the first
    BOS at or after the previous row's last input, so no token is a target twice.
    """
    count = EVAL_TOKENS // seq_len if count is None else count
    tokens = _load_tokens("val")
    starts = np.flatnonzero(tokens == load_tokenizer().bos_id)
    rows, position = [], starts[0] if len(starts) else len(tokens)
    while len(rows) < count and position + seq_len + 1 <= len(tokens):
        rows.append(tokens[position : position + seq_len + 1])
        i = np.searchsorted(starts, position + seq_len)
        position = starts[i] if i < len(starts) else len(tokens)
    if not rows:
        sys.exit(f"the validation set is shorter than one row of {seq_len} tokens; give more text")
    if len(rows) < count:
        print(f"warning: {len(rows)} validation rows, fewer than {count}", file=sys.stderr)
    return torch.from_numpy(np.stack(rows).astype(np.int64))


@torch.no_grad()
def _check_causal(model, x, vocab_size):
    """Stops if predictions for the first half of a row depend on its second half."""
    half = x.size(1) // 2
    changed = x.clone()
    generator = torch.Generator(device=x.device).manual_seed(0)
    changed[:, half:] = torch.randint(
        vocab_size - 1, changed[:, half:].shape, generator=generator, device=x.device
    )
    was_training = model.training
    model.eval()
    difference = (model(x)[:, :half].float() - model(changed)[:, :half].float()).abs().max().item()
    model.train(was_training)
    if not difference < 0.05:  # identical in exact arithmetic; NaN fails too
        sys.exit(f"evaluate_bpb: the model is not causal: later tokens moved logits {difference}")


@torch.no_grad()
def evaluate_bpb(model, batch_size=32):
    """The metric: bits per byte of the validation rows (see the module's docstring).

    `model(x)` takes int64 tokens of shape (rows, MAX_SEQ_LEN) and returns logits of
    shape (rows, MAX_SEQ_LEN, at least vocab_size). Call it under the same autocast as
    training; the cross-entropy is computed here in float32.
    """
    device = next(model.parameters()).device
    tokenizer = load_tokenizer()
    token_bytes = torch.from_numpy(tokenizer.token_bytes()).to(device)
    rows = validation_rows()
    _check_causal(model, rows[:2, :-1].to(device), tokenizer.vocab_size)
    nats = torch.zeros((), dtype=torch.float64, device=device)
    nbytes = torch.zeros((), dtype=torch.int64, device=device)
    was_training = model.training
    model.eval()
    for i in range(0, len(rows), batch_size):
        batch = rows[i : i + batch_size].to(device)
        x, y = batch[:, :-1], batch[:, 1:]
        logits = model(x).float()
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none"
        )
        counted = (y != tokenizer.bos_id).reshape(-1)
        nats += (loss * counted).sum().double()
        nbytes += token_bytes[y].sum()
    model.train(was_training)
    return nats.item() / math.log(2) / max(1, nbytes.item())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the top of prepare.py for the data rules and the environment variables.",
    )
    parser.add_argument("--text", nargs="+", metavar="FILE", help="UTF-8 text files (.xz, .gz too)")
    parser.add_argument("--url", help="download a plain-text file and use it")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--force", action="store_true", help="prepare even if the cache is current")
    args = parser.parse_args()
    sources = list(args.text or [])
    if args.url:
        sources.append(download(args.url))
    if not sources:
        parser.error("give --text FILE... or --url URL: the template ships no corpus")
    for source in sources:
        if not os.path.isfile(source):
            parser.error(f"no such file: {source}")
    prepare(sources, max(1, args.workers), force=args.force)
