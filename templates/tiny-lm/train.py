"""tiny-lm: a small byte-level transformer trained on CPU for a fixed time budget.

Researchers may change anything in this file. It trains for AR_TIME_BUDGET seconds
(startup excluded), evaluates val_bpb with prepare.evaluate_bpb and prints the summary
block the harness reads. Runs with PyTorch 1.13 and 2.x.
"""

import math
import os
import resource
import time

# First, so that an interpreter without torch gets prepare.py's message, not a traceback.
from prepare import SEQ_LEN, TIME_BUDGET, VOCAB_SIZE, evaluate_bpb, get_batch, load_split

import torch
import torch.nn as nn
import torch.nn.functional as F

DEPTH = 2  # transformer blocks
WIDTH = 96  # model dimension
HEADS = 4  # attention heads
MLP_RATIO = 4  # hidden units of the MLP per model dimension
BATCH_SIZE = 16
LEARNING_RATE = 0.001
WEIGHT_DECAY = 0.01
WARMUP_FRACTION = 0.05  # of the time budget
WARMDOWN_FRACTION = 0.3  # of the time budget, linear decay to zero
DROPOUT = 0.0
TIE_EMBEDDINGS = True

t_start = time.time()
torch.manual_seed(int(os.environ.get("AR_SEED", "42")))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH, bias=False)
        self.proj = nn.Linear(WIDTH, WIDTH, bias=False)
        self.norm2 = nn.LayerNorm(WIDTH)
        self.mlp = nn.Sequential(
            nn.Linear(WIDTH, MLP_RATIO * WIDTH), nn.GELU(), nn.Linear(MLP_RATIO * WIDTH, WIDTH)
        )
        self.drop = nn.Dropout(DROPOUT)
        mask = torch.tril(torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def attention(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // HEADS)
        scores = scores.masked_fill(~self.mask[:t, :t], float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.drop(self.attention(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB_SIZE, WIDTH)
        self.positions = nn.Embedding(SEQ_LEN, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB_SIZE, bias=False)
        if TIE_EMBEDDINGS:
            self.head.weight = self.tokens.weight
        self.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx):
        x = self.tokens(idx) + self.positions(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def lr_at(progress):
    """Learning rate at a fraction of the time budget: warmup, constant, linear warmdown."""
    if progress < WARMUP_FRACTION:
        return LEARNING_RATE * progress / WARMUP_FRACTION
    if progress > 1 - WARMDOWN_FRACTION:
        return LEARNING_RATE * max(0.0, (1 - progress) / WARMDOWN_FRACTION)
    return LEARNING_RATE


model = GPT()
num_params = sum(p.numel() for p in model.parameters())
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
    lr=LEARNING_RATE,
    betas=(0.9, 0.95),
)
train_data = load_split("train")
generator = torch.Generator().manual_seed(int(os.environ.get("AR_SEED", "42")))

t_train = time.time()
steps = 0
while True:
    progress = (time.time() - t_train) / TIME_BUDGET
    if progress >= 1:
        break
    for group in optimizer.param_groups:
        group["lr"] = lr_at(progress)
    x, y = get_batch(train_data, BATCH_SIZE, generator)
    loss = F.cross_entropy(model(x).view(-1, VOCAB_SIZE), y.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    steps += 1
    if steps % 100 == 0:
        print(f"step {steps} loss {loss.item():.4f} lr {lr_at(progress):.2e}")
training_seconds = time.time() - t_train

val_bpb = evaluate_bpb(model)
peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("---")
print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {training_seconds:.1f}")
print(f"total_seconds:    {time.time() - t_start:.1f}")
print(f"peak_rss_mb:      {peak_rss_mb:.1f}")
print(f"total_tokens_M:   {steps * BATCH_SIZE * SEQ_LEN / 1e6:.2f}")
print(f"num_steps:        {steps}")
print(f"num_params_M:     {num_params / 1e6:.3f}")
print(f"depth:            {DEPTH}")
