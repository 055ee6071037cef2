"""nanogpt: a GPT pretrained from scratch for a fixed time on one GPU. Change anything here.

Training runs for AR_TIME_BUDGET seconds (the first UNTIMED_STEPS steps, the first of
which compiles, are not counted), then prepare.evaluate_bpb scores the model and the
summary block is printed; a line before it says where the time outside training went.
The model: rotary positions, RMSNorm without parameters, QK-norm, ReLU² MLP, value
embeddings on alternate layers, full or sliding-window causal attention per layer,
soft-capped logits, separate input and output embeddings. The optimisers: Muon for the
matrices inside the blocks, AdamW for embeddings, output layer and per-layer scalars.

Environment: DEPTH (default 8; width = 64 · DEPTH rounded up to whole heads of 128);
NANOGPT_MEMORY_GB caps the GPU memory this run may use, in GiB (rows per forward shrink to
fit; by default they fit the card's free memory: 16 GiB runs depth 8 at 32 rows).
For small machines and CI: NANOGPT_HEAD_DIM, NANOGPT_DEVICE_BATCH (rows per forward),
NANOGPT_TOTAL_BATCH (tokens per optimiser step), NANOGPT_COMPILE=0, and prepare.py's
NANOGPT_SEQ_LEN and NANOGPT_EVAL_TOKENS. Runs on PyTorch 2.x (GPU) and 1.13 (CPU).
"""

import gc
import math
import os
import resource
import sys
import time
from contextlib import nullcontext

t_start = time.time()

# prepare is imported first: it points the compile caches at the task's cache folder.
from prepare import (
    MAX_SEQ_LEN,
    TIME_BUDGET,
    UNTIMED_STEPS,
    TrainLoader,
    evaluate_bpb,
    load_tokenizer,
)

import torch
import torch.nn as nn
import torch.nn.functional as F

laps = [("start", t_start)]  # (phase, when it ended): where the time outside training goes


def lap(phase):
    laps.append((phase, time.time()))


GATE = os.environ.get("AR_GATE")  # with `overlap: true`, the harness's socket (a descriptor)
waited = 0.0  # seconds spent waiting for the GPU: another replicate's time, not this one's


def wait_for_turn():
    """Overlap: this replicate may start while another trains on the GPU. It says it is
    ready for its work on the GPU and waits until the GPU is its own; once, a no-op after.
    The wait is left out of every phase and of startup_seconds, as if it began later."""
    global GATE, waited, t_start
    if not GATE:
        return
    fd, GATE = int(GATE), None
    began = time.time()
    try:
        os.write(fd, b"r")
        let_through = os.read(fd, 1)
    except OSError:  # the harness's side is gone
        let_through = b""
    if not let_through:
        sys.exit("the harness ended before this replicate's turn")
    waited = time.time() - began
    t_start += waited
    laps[:] = [(phase, when + waited) for phase, when in laps]


lap("imports")

try:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    flex_attention = torch.compile(flex_attention, dynamic=False)  # eager flex is a slow reference
except ImportError:
    flex_attention = None
lap("compiler import")  # torch.compile's machinery: seconds, paid once per process

# Model
DEPTH = int(os.environ.get("DEPTH") or 8)
ASPECT_RATIO = 64  # model width per layer
HEAD_DIM = int(os.environ.get("NANOGPT_HEAD_DIM") or 128)
MLP_RATIO = 4
WINDOW_PATTERN = "L"  # mutate: L|SL|SSL|SSSL
SHORT_WINDOW = MAX_SEQ_LEN // 4  # tokens seen by "S" layers; "L" layers see the whole row
ROPE_BASE = 10000
LOGIT_SOFTCAP = 15.0
VE_GATE_CHANNELS = 32  # input channels that set the value-embedding gates
DIM = -(-DEPTH * ASPECT_RATIO // HEAD_DIM) * HEAD_DIM  # rounded up to whole heads

# Optimisation
TOTAL_BATCH = int(os.environ.get("NANOGPT_TOTAL_BATCH") or 2**19)  # tokens per step
DEVICE_BATCH = int(os.environ.get("NANOGPT_DEVICE_BATCH") or 0)  # rows per forward; 0: fitted
MATRIX_LR = 0.04  # Muon
EMBED_LR = 0.6  # AdamW, token and value embeddings
UNEMBED_LR = 0.004  # AdamW, output layer
SCALAR_LR = 0.02  # AdamW, per-layer residual scales
ADAM_BETA1 = 0.8
ADAM_BETA2 = 0.95
WEIGHT_DECAY = 0.1  # Muon matrices, decoupled, scaled by the learning rate
MUON_MOMENTUM = 0.95
MUON_MOMENTUM_START = 0.85
MOMENTUM_WARMUP = 0.1  # fraction of the budget to reach MUON_MOMENTUM
WARMUP = 0.0  # fraction of the budget, linear warmup
WARMDOWN = 0.5  # fraction of the budget, linear decay to FINAL_LR_FRACTION
FINAL_LR_FRACTION = 0.0
LOG_EVERY = 25  # steps; each log waits for the GPU once  # mutate: off
EVAL_BATCH = 32  # validation rows per forward  # mutate: off
COMPILE = os.environ.get("NANOGPT_COMPILE", "1") != "0"

# H100 SXM, dense bf16 tensor cores. MFU is reported against it on every device.
PEAK_FLOPS = 989.5e12  # mutate: off

SEED = int(os.environ.get("AR_SEED") or 42)
torch.manual_seed(SEED)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
cuda = device.type == "cuda"
COMPILE = COMPILE and cuda and hasattr(torch, "compile")
dtype = torch.bfloat16 if cuda else torch.float32  # activations and attention
autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else nullcontext


def memory_cap():
    """NANOGPT_MEMORY_GB in bytes (GiB, as torch counts them), or 0 when it is not set."""
    text = os.environ.get("NANOGPT_MEMORY_GB", "").strip()
    if not text:
        return 0
    try:
        gib = float(text)
    except ValueError:
        gib = math.nan
    if not (math.isfinite(gib) and gib > 0):
        sys.exit(f"NANOGPT_MEMORY_GB={text!r}: give the GiB of GPU memory this run may use, e.g. 16")
    return gib * 2**30


MEMORY_CAP = memory_cap()


def fitting_rows(num_params, free=None):
    """Rows per forward: 128 at depth 8, fewer (powers of two) as deeper and wider models'
    activations grow, and halved until they fit, beside the model's gradients and optimiser
    state, in the GPU's free memory (or `free` bytes, or what NANOGPT_MEMORY_GB leaves)."""
    rows = 2 ** round(math.log2(128 * 8 * 512 / (DEPTH * DIM)))
    if cuda:
        free = torch.cuda.mem_get_info()[0] if free is None else free
        if MEMORY_CAP:
            free = min(free, MEMORY_CAP - torch.cuda.memory_allocated())
        free -= 12 * num_params  # float32 gradients and optimiser moments, made at the first step
        # Activations: about 0.36 GB a row at depth 8 and 2048 tokens (peak 46.6 GB at 128 rows).
        row_bytes = 0.4e9 * DEPTH * DIM / (8 * 512) * MAX_SEQ_LEN / 2048
        while rows > 1 and rows * row_bytes > 0.9 * free:
            rows //= 2
    return max(1, min(TOTAL_BATCH // MAX_SEQ_LEN, rows))


def rms_norm(x, eps=1e-6):
    y = x.float()
    return (y * torch.rsqrt(y.square().mean(-1, keepdim=True) + eps)).to(x.dtype)


class Rotary(nn.Module):
    def __init__(self, head_dim, length):
        super().__init__()
        frequencies = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        positions = torch.arange(length, dtype=torch.float32)
        angles = torch.outer(positions, frequencies)[None, :, None, :]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # (batch, time, heads, head_dim)
        cos = self.cos[:, : x.size(1)].to(x.dtype)
        sin = self.sin[:, : x.size(1)].to(x.dtype)
        a, b = x.chunk(2, dim=-1)
        return torch.cat((a * cos + b * sin, b * cos - a * sin), dim=-1)


BLOCK_MASKS = {}  # (window, length) -> flex_attention block mask, built before compiling


def attend(q, k, v, window):
    """Causal attention over the last `window` positions; (batch, heads, time, head_dim)."""
    length = q.size(-2)
    if window >= length and hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if (window, length) in BLOCK_MASKS:
        return flex_attention(q, k, v, block_mask=BLOCK_MASKS[window, length])
    # PyTorch 1.x, or a window on CPU: the scores in full with a banded mask.
    i = torch.arange(length, device=q.device)
    distance = i[:, None] - i[None, :]
    scores = (q @ k.transpose(-1, -2)) * q.size(-1) ** -0.5
    scores = scores.masked_fill((distance < 0) | (distance >= window), float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v


class Attention(nn.Module):
    def __init__(self, dim, heads, window, value_embedding):
        super().__init__()
        self.heads, self.window = heads, window
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(VE_GATE_CHANNELS, heads, bias=False) if value_embedding else None

    def forward(self, x, ve, rotary):
        b, t, c = x.shape
        shape = (b, t, self.heads, c // self.heads)
        # One product for q, k and v keeps the GPU busier; Muon still sees three matrices.
        qkv = F.linear(x, torch.cat((self.q.weight, self.k.weight, self.v.weight)))
        q, k, v = (part.reshape(shape) for part in qkv.split(c, dim=-1))
        if ve is not None:
            # The token's own value embedding joins its value, scaled per head in (0, 2).
            gate = 2 * torch.sigmoid(self.gate(x[..., :VE_GATE_CHANNELS])).unsqueeze(-1)
            v = v + gate * ve.view(shape)
        q, k = rotary(rms_norm(q)), rotary(rms_norm(k))
        y = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), self.window)
        return self.o(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc = nn.Linear(dim, MLP_RATIO * dim, bias=False)
        self.proj = nn.Linear(MLP_RATIO * dim, dim, bias=False)

    def forward(self, x):
        return self.proj(F.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, dim, heads, window, value_embedding):
        super().__init__()
        self.attn = Attention(dim, heads, window, value_embedding)
        self.mlp = MLP(dim)

    def forward(self, x, ve, rotary):
        x = x + self.attn(rms_norm(x), ve, rotary)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, depth, dim, heads, windows):
        super().__init__()
        # Value embeddings on the last layer and every second one before it.
        self.ve_layers = [i for i in range(depth) if (depth - 1 - i) % 2 == 0]
        self.embed = nn.Embedding(vocab_size, dim)
        self.value_embeds = nn.ModuleDict(
            {str(i): nn.Embedding(vocab_size, dim) for i in self.ve_layers}
        )
        self.blocks = nn.ModuleList(
            Block(dim, heads, windows[i], i in self.ve_layers) for i in range(depth)
        )
        self.head = nn.Linear(dim, vocab_size, bias=False)
        # Per layer: the residual stream's weight and that of the first layer's input.
        self.resid_scales = nn.Parameter(torch.ones(depth))
        self.x0_scales = nn.Parameter(torch.full((depth,), 0.1))
        self.rotary = Rotary(dim // heads, MAX_SEQ_LEN)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        dim = self.embed.embedding_dim
        bound = (3 / dim) ** 0.5  # uniform with standard deviation dim ** -0.5
        for block in self.blocks:
            for linear in (block.attn.q, block.attn.k, block.attn.v, block.mlp.fc):
                linear.weight.uniform_(-bound, bound)
            # Each block starts as the identity; Muon grows these from their gradients.
            block.attn.o.weight.zero_()
            block.mlp.proj.weight.zero_()
            if block.attn.gate is not None:
                block.attn.gate.weight.zero_()
        self.embed.weight.normal_(0.0, 1.0)
        for table in self.value_embeds.values():
            table.weight.uniform_(-bound, bound)
        self.head.weight.normal_(0.0, 0.001)

    def forward(self, idx):
        """Logits (batch, time, vocab) in float32."""
        x = x0 = rms_norm(self.embed(idx).to(dtype))
        for i, block in enumerate(self.blocks):
            x = self.resid_scales[i] * x + self.x0_scales[i] * x0
            ve = self.value_embeds[str(i)](idx).to(dtype) if i in self.ve_layers else None
            x = block(x, ve, self.rotary)
        logits = self.head(rms_norm(x)).float()
        return LOGIT_SOFTCAP * torch.tanh(logits / LOGIT_SOFTCAP)


def orthogonalize(g, steps=5):
    """Newton–Schulz iteration towards the nearest semi-orthogonal matrix, batched.

    The quintic's coefficients trade exactness for speed: singular values end up
    roughly in [0.7, 1.2] after five steps, which Muon tolerates well.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.to(torch.bfloat16 if g.is_cuda else torch.float32)
    wide = x.size(-2) <= x.size(-1)
    if not wide:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        s = x @ x.mT
        x = a * x + (b * s + c * s @ s) @ x
    return x if wide else x.mT


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised: every direction of a matrix moves at one speed.

    Matrices of one shape form one group and are orthogonalised as one batch.
    """

    def __init__(self, params, lr, momentum, weight_decay):
        shapes = {}
        for p in params:
            shapes.setdefault(tuple(p.shape), []).append(p)
        groups = [{"params": ps} for ps in shapes.values()]
        super().__init__(groups, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            params = group["params"]
            grads = torch.stack([p.grad for p in params])
            state = self.state[params[0]]
            if "momentum" not in state:
                state["momentum"] = torch.zeros_like(grads)
            momentum = state["momentum"]
            momentum.lerp_(grads, 1 - group["momentum"])
            update = orthogonalize(grads.lerp_(momentum, group["momentum"])).to(params[0].dtype)
            rows, cols = params[0].shape
            scale = max(1, rows / cols) ** 0.5  # tall ones step as far, per entry, as square
            torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_add_(params, list(update.unbind(0)), alpha=-group["lr"] * scale)


def lr_multiplier(progress):
    if progress < WARMUP:
        return (progress + 1e-3) / WARMUP
    if progress < 1 - WARMDOWN:
        return 1.0
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * max(0.0, 1 - progress) / WARMDOWN


def muon_momentum(progress):
    ramp = min(1.0, progress / MOMENTUM_WARMUP) if MOMENTUM_WARMUP > 0 else 1.0
    return MUON_MOMENTUM_START + (MUON_MOMENTUM - MUON_MOMENTUM_START) * ramp


# Setup
tokenizer = load_tokenizer()
vocab_size = -(-tokenizer.vocab_size // 64) * 64  # padded for the matrix units
dim = DIM
heads = DIM // HEAD_DIM
kinds = (WINDOW_PATTERN * DEPTH)[:DEPTH]
windows = [MAX_SEQ_LEN if kind == "L" else SHORT_WINDOW for kind in kinds]
windows[-1] = MAX_SEQ_LEN  # the last layer always sees the whole row
model = GPT(vocab_size, DEPTH, dim, heads, windows)  # on the CPU: the GPU may not be free yet


def sliding_window(window):
    def mask(batch, head, q, kv):
        return (q >= kv) & (q - kv < window)

    return mask


def to_device():
    """The model and the attention masks on the GPU, under the memory cap; again, a no-op."""
    global model
    if cuda and MEMORY_CAP:  # enforced whoever chose the rows per forward
        total = torch.cuda.mem_get_info()[1]
        torch.cuda.set_per_process_memory_fraction(min(1.0, MEMORY_CAP / total))
    model = model.to(device)
    if cuda and flex_attention is not None:
        for window in set(windows) - {MAX_SEQ_LEN}:
            if (window, MAX_SEQ_LEN) not in BLOCK_MASKS:
                BLOCK_MASKS[window, MAX_SEQ_LEN] = create_block_mask(
                    sliding_window(window), None, None, MAX_SEQ_LEN, MAX_SEQ_LEN, device=device
                )


def train_loss(x, y):
    logits = model(x)
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))


class CompiledAhead(Exception):
    """Raised once the step's graphs are compiled, so that none of it runs on the GPU."""


def compile_ahead():
    """With overlap, the training step's forward and backward graphs are compiled into the
    task's compile cache while another replicate trains: a graph the change altered then
    loads from the cache after the turn (seconds) instead of compiling there (20-37 s on an
    H200). A CUDA context, the model and two batches of zeros go to the GPU (0.8-1.3 GiB at
    depth 8); the step does not run there (only where a matrix's side is not a multiple of
    8 may Inductor time a few products while it compiles). A neighbour's kernels on the GPU
    cost the one training 3 % of its tokens (bench/README.md, "The gate before the first
    step"). The rows per forward are those the whole card would give; if the turn finds
    less free, the first step compiles for its own. Skipped (None) where it cannot help or
    might not fit; any failure only leaves the compile to the turn."""
    from torch._dynamo.utils import counters
    from torch._functorch import config as functorch_config
    from torch._inductor.compile_fx import compile_fx

    if not hasattr(functorch_config, "force_non_lazy_backward_lowering"):
        print(f"note: torch {torch.__version__} cannot compile the backward ahead of its turn")
        return None
    if torch._dynamo.config.disable or DEVICE_BATCH:  # disabled, Dynamo would run the step
        return None

    def compile_only(graph, example_inputs):
        compile_fx(graph, example_inputs)  # writes the FX graph and autograd caches
        raise CompiledAhead

    rows = None
    try:
        # What this takes on the GPU (a context, the model in float32, kernels) must fit in
        # the tenth of the card that the training replicate's rows leave free (fitting_rows).
        num_params = sum(p.numel() for p in model.parameters())
        card = min(torch.cuda.mem_get_info()[1], MEMORY_CAP or math.inf)
        if 2**30 + 4 * num_params > 0.1 * card:
            return None
        # The backward compiles with the forward, here and after the turn: both keys match.
        functorch_config.force_non_lazy_backward_lowering = True
        to_device()
        context = 2**29  # a CUDA context's own memory, about half a GiB
        rows = fitting_rows(num_params, free=card - torch.cuda.memory_reserved() - context)
        x, y = (torch.zeros(rows, MAX_SEQ_LEN, dtype=torch.long, device=device) for _ in "xy")
        # Errors raised, never suppressed, and no graph breaks: Dynamo would run the step's
        # untraced parts eagerly, on the GPU.
        with autocast(), torch._dynamo.config.patch(suppress_errors=False):
            torch.compile(train_loss, backend=compile_only, dynamic=False, fullgraph=True)(x, y)
    except Exception as error:  # Dynamo wraps what the backend raised
        cause = error
        while cause is not None and not isinstance(cause, CompiledAhead):
            cause = getattr(cause, "inner_exception", None) or cause.__cause__
        if cause is None:
            said = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
            print(f"note: compiling ahead failed, so the first step compiles: {said}")
            rows = None
            torch.cuda.empty_cache()
    torch._dynamo.reset()  # keeps what is on disk; the step is traced again after the turn
    return (rows, cache_hits(counters)) if rows else None


def cache_hits(counters):
    """Compiled graphs and autograd entries found in the compile cache, so far."""
    graphs, entries = counters["inductor"], counters["aot_autograd"]
    return graphs["fxgraph_cache_hit"], entries["autograd_cache_hit"]


# With overlap, everything before the turn runs beside the replicate training on this GPU.
ahead = None
# With the turn already come (AR_GATE_OPEN), nothing trains beside: compiling ahead would
# only trace the step twice.
if COMPILE and GATE and not os.environ.get("AR_GATE_OPEN"):
    lap("model on the CPU")
    ahead = compile_ahead()
    lap("compile ahead")
wait_for_turn()
to_device()
DEVICE_BATCH = DEVICE_BATCH or fitting_rows(sum(p.numel() for p in model.parameters()))
if ahead and ahead[0] != DEVICE_BATCH:
    print(f"note: compiled ahead for {ahead[0]} rows per forward; free memory gave {DEVICE_BATCH}")

tokens_per_micro = DEVICE_BATCH * MAX_SEQ_LEN
if TOTAL_BATCH % tokens_per_micro:
    sys.exit(f"TOTAL_BATCH {TOTAL_BATCH} is not a multiple of DEVICE_BATCH x MAX_SEQ_LEN")
accumulation = TOTAL_BATCH // tokens_per_micro

matrices = list(model.blocks.parameters())
assert all(p.dim() == 2 for p in matrices)
adam_scale = (dim / 768) ** -0.5  # embedding learning rates shrink with width
adam_groups = [
    {"params": [model.embed.weight], "lr": EMBED_LR * adam_scale},
    {"params": list(model.value_embeds.parameters()), "lr": EMBED_LR * adam_scale},
    {"params": [model.head.weight], "lr": UNEMBED_LR * adam_scale},
    {"params": [model.resid_scales, model.x0_scales], "lr": SCALAR_LR},
]
for group in adam_groups:
    group["base_lr"] = group["lr"]
num_params = sum(p.numel() for p in model.parameters())
adam_params = [p for group in adam_groups for p in group["params"]]
assert num_params == sum(p.numel() for p in matrices + adam_params)  # every parameter, once
fused = {"fused": True} if cuda else {}  # PyTorch 1.13 has no fused AdamW on CPU
adam = torch.optim.AdamW(
    adam_groups, betas=(ADAM_BETA1, ADAM_BETA2), eps=1e-10, weight_decay=0.0, **fused
)
muon = Muon(matrices, lr=MATRIX_LR, momentum=MUON_MOMENTUM_START, weight_decay=WEIGHT_DECAY)
lap("model")

# FLOPs per token: 6 per weight of every matrix product (forward and backward), plus
# attention's 12 · width · context per layer, the context not halved for causality.
matmul_params = sum(p.numel() for p in matrices) + model.head.weight.numel()
flops_per_token = 6 * matmul_params + sum(12 * dim * min(w, MAX_SEQ_LEN) for w in windows)


step_loss = torch.compile(train_loss, dynamic=False) if COMPILE else train_loss
loader = TrainLoader(DEVICE_BATCH, MAX_SEQ_LEN, device, seed=SEED)
sync = torch.cuda.synchronize if cuda else (lambda: None)

device_name = torch.cuda.get_device_name() if cuda else "CPU"
print(
    f"{device_name} | depth {DEPTH}, width {dim}, {heads} heads, windows {windows} | "
    f"{num_params / 1e6:.1f}M parameters | vocab {tokenizer.vocab_size} | "
    f"{accumulation} x {DEVICE_BATCH} x {MAX_SEQ_LEN} tokens per step | compile {COMPILE}"
)
if "H100" not in device_name:
    print(f"note: not an H100; mfu_percent still uses the H100's peak, {PEAK_FLOPS / 1e12} TFLOP/s")

# Training: the schedule follows the clock, so a faster step means more steps.
x, y = loader.next_batch()
sync()
lap("data")
step, training_time, clock = 0, 0.0, None
while True:
    progress = training_time / TIME_BUDGET
    multiplier = lr_multiplier(progress)
    for group in adam.param_groups:
        group["lr"] = group["base_lr"] * multiplier
    for group in muon.param_groups:
        group["lr"] = MATRIX_LR * multiplier
        group["momentum"] = muon_momentum(progress)
    for _ in range(accumulation):
        with autocast():
            loss = step_loss(x, y)
        (loss / accumulation).backward()
        x, y = loader.next_batch()
    adam.step()
    muon.step()
    model.zero_grad(set_to_none=True)
    step += 1
    if step == 1:
        sync()
        lap("first step")  # compiles, or loads the compiled kernels from the cache
        if ahead:
            from torch._dynamo.utils import counters

            fx, aot = (now - then for now, then in zip(cache_hits(counters), ahead[1]))
            found = f"{fx} graphs and {aot} autograd entries cached"
            print(f"compiled ahead: the first step found {found}")
        gc.collect()
        gc.freeze()  # the collector's pauses would leave the GPU waiting
        gc.disable()
    if step == UNTIMED_STEPS:
        sync()
        clock = time.time()
        startup_seconds = clock - t_start
        laps.append(("untimed steps", clock))
    elif step > UNTIMED_STEPS:
        training_time = time.time() - clock  # no wait for the GPU: it stays a step or two behind
    if step % LOG_EVERY == 0:
        value = loss.item()
        if not math.isfinite(value) or value > 100:
            print(f"step {step}: loss {value}, training diverged")
            sys.exit(1)
        rate = (step - UNTIMED_STEPS) * TOTAL_BATCH / max(training_time, 1e-9)
        print(
            f"step {step:5d} | loss {value:.4f} | lr x{multiplier:.2f} | {100 * progress:5.1f}% | "
            f"{rate:,.0f} tok/s | mfu {100 * rate * flops_per_token / PEAK_FLOPS:.1f}%"
        )
    if step >= UNTIMED_STEPS and training_time >= TIME_BUDGET:
        break
sync()
training_time = time.time() - clock
lap("training")

with autocast():
    val_bpb = evaluate_bpb(model, batch_size=min(EVAL_BATCH, DEVICE_BATCH))
sync()
lap("evaluation")

phases = [(name, end - start) for (_, start), (name, end) in zip(laps, laps[1:])]
print("outside training: " + ", ".join(f"{n} {s:.1f}s" for n, s in phases if n != "training"))
timed_tokens = (step - UNTIMED_STEPS) * TOTAL_BATCH
tokens_per_sec = timed_tokens / training_time
if cuda:
    peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
else:  # the process's peak resident memory stands in for the device's
    peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("---")
print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {training_time:.1f}")
print(f"total_seconds:    {time.time() - t_start:.1f}")
print(f"peak_vram_mb:     {peak_memory_mb:.1f}")
print(f"mfu_percent:      {100 * tokens_per_sec * flops_per_token / PEAK_FLOPS:.2f}")
print(f"total_tokens_M:   {step * TOTAL_BATCH / 1e6:.1f}")
print(f"num_steps:        {step}")
print(f"num_params_M:     {num_params / 1e6:.1f}")
print(f"depth:            {DEPTH}")
print(f"startup_seconds:  {startup_seconds:.1f}")
print(f"waited_seconds:   {waited:.1f}")
print(f"tokens_per_sec:   {tokens_per_sec:.0f}")
print(f"device_batch:     {DEVICE_BATCH}")
