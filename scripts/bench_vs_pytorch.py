#!/usr/bin/env python3
"""PyTorch replicas of `flatmin bench`, and the side-by-side driver of scripts/bench-vs-pytorch.

Subcommands:

  torch-bench   One process of the PyTorch side: the bench's three models (same shapes, batch,
                threads), one model and optimizer per variant from the same initial weights
                (base SGD, SAM, ESAM), warm-up rounds, then timed rounds in an order rotated from
                round to round, medians per variant. Prints one JSON object.
  side-by-side  Alternates processes: `flatmin bench` (release binary) and `torch-bench`, several
                rounds, then prints the Markdown table (medians over the rounds, with their spread)
                and writes every round's figures as JSON.
  ops           Per-operation timings of the small CNN's and the ResNet stack's layers (the same
                shapes as the Rust example `op_profile`), one JSON object.

The SAM and ESAM steps are written from the papers' algorithms, in the form the commonly used
PyTorch code gives them (a first pass, `w + e` written into the model, a second pass, the saved
weights restored, the base optimizer's step on the second pass's gradient):

  SAM (Foret et al. 2021):  e = rho * g / (||g|| + 1e-12), ||.|| the global L2 norm.
  ESAM (Du et al. 2022):    SWP: each parameter tensor takes part in the first pass's gradient
                            with probability beta (the others track no gradient, so the backward
                            skips their weight gradients); e = rho * g_kept / (||g_kept|| + 1e-7) / beta.
                            SDS: a forward without gradients at w + e, the sharpness of each
                            sample l_i(w + e) - l_i(w), the second pass on the k = round(gamma * B)
                            sharpest samples.

Hyperparameters are flatmin's presets: lr 0.01, momentum 0.9, weight decay 5e-4, rho 0.05,
ESAM beta 0.6, gamma 0.5. As in flatmin, BatchNorm running statistics change in the first pass
only (momentum 0 in the selection forward and the second pass).
"""

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import time


def build_models(torch):
    nn = torch.nn
    F = torch.nn.functional

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(28 * 28, 256)
            self.out = nn.Linear(256, 10)

        def forward(self, x):
            return self.out(F.relu(self.hidden(x.flatten(1))))

    def conv3x3(i, o, stride, bias):
        return nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=bias)

    class SmallCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = conv3x3(1, 16, 1, True)
            self.conv2 = conv3x3(16, 32, 1, True)
            self.hidden = nn.Linear(32 * 7 * 7, 128)
            self.out = nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.out(F.relu(self.hidden(x.flatten(1))))

    class BasicBlock(nn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.conv1 = conv3x3(i, o, stride, False)
            self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = conv3x3(o, o, 1, False)
            self.bn2 = nn.BatchNorm2d(o)
            self.shortcut = None
            if stride != 1 or i != o:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(i, o, 1, stride=stride, bias=False), nn.BatchNorm2d(o)
                )

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            skip = x if self.shortcut is None else self.shortcut(x)
            return F.relu(out + skip)

    class ResNetStack(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv3x3(3, 16, 1, False)
            self.bn = nn.BatchNorm2d(16)
            self.blocks = nn.Sequential(
                BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)
            )
            self.out = nn.Linear(64, 10)

        def forward(self, x):
            x = F.relu(self.bn(self.stem(x)))
            x = self.blocks(x)
            return self.out(F.adaptive_avg_pool2d(x, 1).flatten(1))

    return {
        "mlp": (Mlp, (1, 28, 28)),
        "cnn": (SmallCnn, (1, 28, 28)),
        "resnet": (ResNetStack, (3, 32, 32)),
    }


LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
RHO = 0.05
ESAM_BETA, ESAM_GAMMA = 0.6, 0.5


class Step:
    """One variant: its model, its base optimizer and its step."""

    def __init__(self, torch, name, model, seed):
        self.torch = torch
        self.name = name
        self.model = model
        self.params = [p for p in model.parameters()]
        self.base = torch.optim.SGD(
            self.params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
        )
        self.bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        self.rng = random.Random(seed)

    def per_sample_loss(self, x, y):
        return self.torch.nn.functional.cross_entropy(self.model(x), y, reduction="none")

    def bn_momentum(self, value):
        for bn in self.bns:
            bn.momentum = value

    def global_norm(self):
        torch = self.torch
        norms = [p.grad.norm(2) for p in self.params if p.grad is not None]
        return torch.norm(torch.stack(norms), 2)

    def ascend(self, eps, beta):
        """Writes w + e into the model; returns the e of each parameter (None where no gradient)."""
        with self.torch.no_grad():
            scale = RHO / (self.global_norm() + eps) / beta
            es = []
            for p in self.params:
                if p.grad is None:
                    es.append(None)
                    continue
                e = p.grad * scale
                p.add_(e)
                es.append(e)
        return es

    def descend(self, es):
        """Restores w (w + e - e, as the ESAM and ASAM codes do; SAM's copies w back)."""
        with self.torch.no_grad():
            for p, e in zip(self.params, es):
                if e is not None:
                    p.sub_(e)

    def step(self, x, y):
        getattr(self, "step_" + self.name)(x, y)

    def step_sgd(self, x, y):
        self.base.zero_grad(set_to_none=True)
        self.per_sample_loss(x, y).mean().backward()
        self.base.step()

    def step_sam(self, x, y):
        self.base.zero_grad(set_to_none=True)
        self.per_sample_loss(x, y).mean().backward()
        with self.torch.no_grad():
            saved = [p.detach().clone() for p in self.params]
        self.ascend(1e-12, 1.0)
        self.base.zero_grad(set_to_none=True)
        self.bn_momentum(0.0)
        self.per_sample_loss(x, y).mean().backward()
        self.bn_momentum(0.1)
        with self.torch.no_grad():
            for p, w in zip(self.params, saved):
                p.copy_(w)
        self.base.step()

    def step_esam(self, x, y):
        torch = self.torch
        self.base.zero_grad(set_to_none=True)
        # SWP: one Bernoulli(beta) draw per tensor; left-out tensors track no gradient.
        keep = [self.rng.random() < ESAM_BETA for _ in self.params]
        if not any(keep):
            keep = [True] * len(self.params)
        for p, k in zip(self.params, keep):
            p.requires_grad_(k)
        losses = self.per_sample_loss(x, y)
        losses.mean().backward()
        for p in self.params:
            p.requires_grad_(True)
        es = self.ascend(1e-7, ESAM_BETA)
        self.bn_momentum(0.0)
        # SDS: sharpness of each sample at w + e, the k sharpest kept.
        with torch.no_grad():
            sharpness = self.per_sample_loss(x, y) - losses.detach()
            k = max(1, min(len(y), round(ESAM_GAMMA * len(y))))
            kept = torch.topk(sharpness, k).indices
        self.base.zero_grad(set_to_none=True)
        self.per_sample_loss(x[kept], y[kept]).mean().backward()
        self.bn_momentum(0.1)
        self.descend(es)
        self.base.step()


def synthetic_batch(torch, shape, n, seed):
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    x = (torch.rand(n, c, h, w, generator=g) * 3 - 1.5) * 2
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def torch_bench(args):
    import torch

    torch.set_num_threads(args.threads)
    models = build_models(torch)
    variants = ["sgd"] + [v for v in args.optimizers.split(",") if v and v != "sgd"]
    out = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "runs": [],
    }
    for name in args.models.split(","):
        cls, shape = models[name]
        steps = []
        for k, v in enumerate(variants):
            torch.manual_seed(args.seed)
            steps.append(Step(torch, v, cls(), args.seed + k))
        x, y = synthetic_batch(torch, shape, args.batch_size, args.seed)
        times = {v: [] for v in variants}
        cpu = {v: [] for v in variants}
        for r in range(args.warmup + args.steps):
            for k in range(len(steps)):
                s = steps[(k + r) % len(steps)]
                c0, t0 = time.process_time(), time.perf_counter()
                s.step(x, y)
                ms = (time.perf_counter() - t0) * 1e3
                if r >= args.warmup:
                    times[s.name].append(ms)
                    cpu[s.name].append((time.process_time() - c0) * 1e3)
        base = statistics.median(times["sgd"])
        for v in variants:
            med = statistics.median(times[v])
            out["runs"].append(
                {
                    "model": name,
                    "optimizer": v,
                    "median_step_ms": med,
                    "ratio_to_base": med / base,
                    "min_step_ms": min(times[v]),
                    "median_step_cpu_ms": statistics.median(cpu[v]),
                    "steps": len(times[v]),
                }
            )
    print(json.dumps(out))


# --------------------------------------------------------------------------- side by side


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def side_by_side(args):
    rounds = []
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    common = [
        "--models", args.models, "--optimizers", args.optimizers,
        "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--batch-size", str(args.batch_size),
    ]
    flatmin_variants = parse_variants(args.flatmin_variant, args.flatmin)
    flags = parse_variant_flags(args.flatmin_variant_flags, [label for label, _ in flatmin_variants])
    for r in range(args.rounds):
        entry = {"round": r, "load_average_start": load_average(), "torch_env": args.torch_env}
        if flags:
            # A list, not an object: `table` takes every object-valued key but `torch` for a variant.
            entry["flatmin_flags"] = sorted([label, " ".join(f)] for label, f in flags.items())
        # Alternate which side goes first, so that neither always follows the other.
        order = ["torch"] + [label for label, _ in flatmin_variants]
        if r % 2 == 1:
            order.reverse()
        for side in order:
            t0 = time.time()
            if side == "torch":
                cmd = [sys.executable, __file__, "torch-bench", "--threads", str(args.threads)] + common
                torch_env = dict(kv.partition("=")[::2] for kv in args.torch_env.split(",") if kv)
                res = subprocess.run(cmd, env=dict(env, **torch_env), capture_output=True, text=True)
                if res.returncode != 0:
                    sys.exit(f"torch-bench failed:\n{res.stderr}")
                entry["torch"] = json.loads(res.stdout.strip().splitlines()[-1])
            else:
                binary, extra = dict(flatmin_variants)[side]
                out = os.path.join(args.work, f"flatmin-{side}-{r}.json")
                cmd = [binary, "bench", "--out", out, "--overwrite"] + common + flags.get(side, [])
                res = subprocess.run(cmd, env=dict(env, **extra), capture_output=True, text=True)
                if res.returncode != 0:
                    sys.exit(f"flatmin bench failed ({side}):\n{res.stderr}")
                with open(out) as f:
                    entry[side] = json.load(f)
            print(f"round {r + 1}/{args.rounds}: {side} {time.time() - t0:.0f} s", file=sys.stderr)
        entry["load_average_end"] = load_average()
        rounds.append(entry)
        with open(os.path.join(args.work, "side-by-side.json"), "w") as f:
            json.dump(rounds, f, indent=1)
    print(side_by_side_table(rounds, [label for label, _ in flatmin_variants]))


def saved_table(args):
    with open(args.json) as f:
        rounds = json.load(f)
    labels = []
    for entry in rounds:
        labels += [k for k in entry if isinstance(entry[k], dict) and k != "torch" and k not in labels]
    print(side_by_side_table(rounds, labels))


def parse_variants(specs, default_binary):
    """`LABEL[@BINARY][:VAR=value,...]`: a flatmin process, its binary (default --flatmin) and
    extra environment."""
    out = []
    for spec in specs or ["flatmin"]:
        head, _, rest = spec.partition(":")
        label, _, binary = head.partition("@")
        env = {}
        for kv in filter(None, rest.split(",")):
            k, _, v = kv.partition("=")
            env[k] = v
        out.append((label, (binary or default_binary, env)))
    return out


def parse_variant_flags(specs, labels):
    """`LABEL=FLAGS`: extra flags of that variant's `flatmin bench` (e.g. `tch=--device tch`),
    split as a shell would."""
    out = {}
    for spec in specs or []:
        label, eq, rest = spec.partition("=")
        if not eq or label not in labels:
            sys.exit(f"--flatmin-variant-flags {spec!r}: expected LABEL=FLAGS with LABEL one of "
                     f"the --flatmin-variant labels ({', '.join(labels)})")
        out.setdefault(label, []).extend(shlex.split(rest))
    return out


def spread(values):
    return f"{min(values):.2f}–{max(values):.2f}"


def side_by_side_table(rounds, labels):
    def step_ms(entry, side, model, opt, key="median_step_ms"):
        for run in entry[side]["runs"]:
            if run["model"] == model and run["optimizer"] == opt:
                return run[key]
        return None

    first = rounds[0]
    keys = [(r["model"], r["optimizer"]) for r in first["torch"]["runs"]]
    lines = []
    for key, what in [("median_step_ms", "wall"), ("median_step_cpu_ms", "CPU")]:
        head = f"| model | step | PyTorch {what} ms (range) |"
        rule = "|---|---|---|"
        for label in labels:
            head += f" {label} {what} ms (range) | {label} / PyTorch (range) |"
            rule += "---|---|"
        lines += [head, rule]
        for model, opt in keys:
            t = [step_ms(e, "torch", model, opt, key) for e in rounds]
            row = f"| {model} | {opt} | {statistics.median(t):.2f} ({spread(t)}) |"
            for label in labels:
                # Rounds that lack a variant (an interrupted run) count for the others only.
                mine = [e for e in rounds if label in e]
                f = [step_ms(e, label, model, opt, key) for e in mine]
                ratios = [a / step_ms(e, "torch", model, opt, key) for a, e in zip(f, mine)]
                row += (
                    f" {statistics.median(f):.2f} ({spread(f)}) |"
                    f" **{statistics.median(ratios):.2f}** ({spread(ratios)}) |"
                )
            lines.append(row)
        lines.append("")
    # Ratios to each side's own base step.
    lines.append("| model | step | PyTorch / its base | " + " | ".join(f"{l} / its base" for l in labels) + " |")
    lines.append("|---|---|---|" + "---|" * len(labels))
    for model, opt in keys:
        if opt == "sgd":
            continue
        def ratio(side):
            return statistics.median(
                step_ms(e, side, model, opt) / step_ms(e, side, model, "sgd")
                for e in rounds
                if side in e
            )
        lines.append(
            f"| {model} | {opt} | {ratio('torch'):.2f} | "
            + " | ".join(f"{ratio(l):.2f}" for l in labels)
            + " |"
        )
    loads = [e["load_average_start"] for e in rounds] + [e["load_average_end"] for e in rounds]
    lines.append("")
    lines.append(
        f"{len(rounds)} rounds (a variant missing from a round: over the rounds it ran in), "
        f"each round one process per side; torch {first['torch']['torch']} "
        f"(environment {first.get('torch_env', '')}), "
        f"{first['torch']['threads']} threads; load average {min(loads):.2f}–{max(loads):.2f}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- per operation

def op_shapes():
    """The layers of the small CNN and the ResNet stack at batch 128: (model, name, count, spec)."""
    n = 128
    convs = [
        # model, layer, count per pass, (input [c, h, w]), out channels, kernel, stride, pad, bias, needs input grad
        ("cnn", "conv1 1→16 3×3 @28", 1, (1, 28, 28), 16, 3, 1, 1, True, False),
        ("cnn", "conv2 16→32 3×3 @14", 1, (16, 14, 14), 32, 3, 1, 1, True, True),
        ("resnet", "stem 3→16 3×3 @32", 1, (3, 32, 32), 16, 3, 1, 1, False, False),
        ("resnet", "16→16 3×3 @32", 2, (16, 32, 32), 16, 3, 1, 1, False, True),
        ("resnet", "16→32 3×3 s2 @32", 1, (16, 32, 32), 32, 3, 2, 1, False, True),
        ("resnet", "32→32 3×3 @16", 1, (32, 16, 16), 32, 3, 1, 1, False, True),
        ("resnet", "16→32 1×1 s2 @32", 1, (16, 32, 32), 32, 1, 2, 0, False, True),
        ("resnet", "32→64 3×3 s2 @16", 1, (32, 16, 16), 64, 3, 2, 1, False, True),
        ("resnet", "64→64 3×3 @8", 1, (64, 8, 8), 64, 3, 1, 1, False, True),
        ("resnet", "32→64 1×1 s2 @16", 1, (32, 16, 16), 64, 1, 2, 0, False, True),
    ]
    bns = [
        ("resnet", "BN 16 @32", 4, (16, 32, 32)),
        ("resnet", "BN 32 @16", 3, (32, 16, 16)),
        ("resnet", "BN 64 @8", 3, (64, 8, 8)),
    ]
    pools = [
        ("cnn", "maxpool 2×2 16 @28", 1, (16, 28, 28)),
        ("cnn", "maxpool 2×2 32 @14", 1, (32, 14, 14)),
    ]
    avgpools = [("resnet", "global avg pool 64 @8", 1, (64, 8, 8))]
    linears = [
        ("cnn", "linear 1568→128", 1, 1568, 128),
        ("cnn", "linear 128→10", 1, 128, 10),
        ("resnet", "linear 64→10", 1, 64, 10),
    ]
    # Element-wise: ReLU forward and backward, residual add, at each activation size.
    relus = [
        ("cnn", "relu 16 @28", 1, (16, 28, 28)),
        ("cnn", "relu 32 @14", 1, (32, 14, 14)),
        ("resnet", "relu 16 @32", 5, (16, 32, 32)),
        ("resnet", "relu 32 @16", 2, (32, 16, 16)),
        ("resnet", "relu 64 @8", 2, (64, 8, 8)),
    ]
    adds = [
        ("resnet", "add 16 @32", 1, (16, 32, 32)),
        ("resnet", "add 32 @16", 1, (32, 16, 16)),
        ("resnet", "add 64 @8", 1, (64, 8, 8)),
    ]
    return n, convs, bns, pools, avgpools, linears, relus, adds


def ops(args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, convs, bns, pools, avgpools, linears, relus, adds = op_shapes()
    rows = []

    def timed(fn, reps=args.reps):
        for _ in range(2):
            fn()
        ts, cs = [], []
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
            cs.append((time.process_time() - c0) * 1e3)
        return statistics.median(ts), min(ts), statistics.median(cs), min(cs)

    aten = torch.ops.aten
    with torch.no_grad():
        for model, name, count, (c, h, w), o, k, s, p, bias, need_x in convs:
            x = torch.randn(n, c, h, w)
            wt = torch.randn(o, c, k, k) * 0.1
            b = torch.randn(o) if bias else None
            y = F.conv2d(x, wt, b, stride=s, padding=p)
            g = torch.randn_like(y)
            rows.append((model, "conv forward", name, count, timed(lambda: F.conv2d(x, wt, b, stride=s, padding=p))))
            if need_x:
                rows.append((model, "conv input-grad", name, count, timed(
                    lambda: aten.convolution_backward(g, x, wt, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, [True, False, False]))))
            rows.append((model, "conv weight-grad", name, count, timed(
                lambda: aten.convolution_backward(g, x, wt, [o] if bias else None, [s, s], [p, p], [1, 1], False, [0, 0], 1, [False, True, bias]))))
        for model, name, count, (c, h, w) in bns:
            x = torch.randn(n, c, h, w)
            gamma, beta = torch.ones(c), torch.zeros(c)
            rm, rv = torch.zeros(c), torch.ones(c)
            rows.append((model, "BN forward", name, count, timed(
                lambda: aten.native_batch_norm(x, gamma, beta, rm, rv, True, 0.1, 1e-5))))
            out, mean, invstd = aten.native_batch_norm(x, gamma, beta, rm, rv, True, 0.1, 1e-5)
            g = torch.randn_like(x)
            rows.append((model, "BN backward", name, count, timed(
                lambda: aten.native_batch_norm_backward(g, x, gamma, rm, rv, mean, invstd, True, 1e-5, [True, True, True]))))
        for model, name, count, (c, h, w) in pools:
            x = torch.randn(n, c, h, w)
            rows.append((model, "pool forward", name, count, timed(
                lambda: aten.max_pool2d_with_indices(x, [2, 2], [2, 2]))))
            y, idx = aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
            g = torch.randn_like(y)
            rows.append((model, "pool backward", name, count, timed(
                lambda: aten.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx))))
        for model, name, count, (c, h, w) in avgpools:
            x = torch.randn(n, c, h, w)
            rows.append((model, "pool forward", name, count, timed(lambda: F.adaptive_avg_pool2d(x, 1))))
            g = torch.randn(n, c, 1, 1)
            rows.append((model, "pool backward", name, count, timed(
                lambda: aten._adaptive_avg_pool2d_backward(g, x))))
        for model, name, count, i, o in linears:
            x = torch.randn(n, i)
            wt = torch.randn(o, i) * 0.1
            b = torch.randn(o)
            g = torch.randn(n, o)
            rows.append((model, "matmul forward", name, count, timed(lambda: F.linear(x, wt, b))))
            rows.append((model, "matmul input-grad", name, count, timed(lambda: g.mm(wt))))
            rows.append((model, "matmul weight-grad", name, count, timed(lambda: (g.t().mm(x), g.sum(0)))))
        for model, name, count, (c, h, w) in relus:
            x = torch.randn(n, c, h, w)
            g = torch.randn_like(x)
            rows.append((model, "elementwise", name + " forward", count, timed(lambda: torch.relu(x))))
            y = torch.relu(x)
            rows.append((model, "elementwise", name + " backward", count, timed(lambda: aten.threshold_backward(g, y, 0))))
        for model, name, count, (c, h, w) in adds:
            x, z = torch.randn(n, c, h, w), torch.randn(n, c, h, w)
            rows.append((model, "elementwise", name, count, timed(lambda: x + z)))
    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "ops": [{"model": m, "kind": k, "layer": l, "count": c, "ms": t[0], "min_ms": t[1], "cpu_ms": t[2], "min_cpu_ms": t[3]} for m, k, l, c, t in rows],
    }))


def ops_table(args):
    """The per-operation table of two `ops` outputs (Burn's first, PyTorch's second)."""
    with open(args.burn) as f:
        burn = json.load(f)
    with open(args.torch) as f:
        torch_ops = json.load(f)
    stat = args.statistic
    theirs = {(o["model"], o["kind"], o["layer"]): o[stat] for o in torch_ops["ops"]}
    lines = [
        "| model | operation | layer | per pass | flex ms | PyTorch ms | flex / PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    totals = {}
    alternatives = []
    for o in burn["ops"]:
        if o["kind"].startswith("conv weight-grad, "):
            alternatives.append(o)
            continue
        key = (o["model"], o["kind"], o["layer"])
        t = theirs.get(key)
        if t is None:
            continue
        b = o[stat]
        lines.append(
            f"| {o['model']} | {o['kind']} | {o['layer']} | {o['count']} | {b:.3f} | {t:.3f} | {b / t:.2f} |"
        )
        agg = totals.setdefault((o["model"], o["kind"]), [0.0, 0.0])
        agg[0] += o["count"] * b
        agg[1] += o["count"] * t
    lines += [
        "",
        "Per forward and backward pass (each operation times its uses in the pass):",
        "",
        "| model | operation | flex ms | PyTorch ms | flex − PyTorch ms | share of the gap | flex / PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in sorted({m for m, _ in totals}):
        rows = [(k, v) for (m, k), v in totals.items() if m == model]
        gap = sum(b - t for _, (b, t) in rows)
        for kind, (b, t) in sorted(rows, key=lambda r: r[1][1] - r[1][0]):
            lines.append(
                f"| {model} | {kind} | {b:.2f} | {t:.2f} | {b - t:+.2f} | {100 * (b - t) / gap:.0f} % | {b / t:.2f} |"
            )
        bt, tt = sum(b for _, (b, _) in rows), sum(t for _, (_, t) in rows)
        lines.append(f"| {model} | **all listed** | {bt:.2f} | {tt:.2f} | {bt - tt:+.2f} | 100 % | {bt / tt:.2f} |")
    if alternatives:
        flex = {(o["model"], o["kind"], o["layer"]): o[stat] for o in burn["ops"]}
        lines += [
            "",
            "The convolutions' weight gradient on flex, two ways:",
            "",
            "| model | layer | flex `conv2d_weight_backward` ms | flex im2col + one GEMM ms | PyTorch ms |",
            "|---|---|---|---|---|",
        ]
        for o in alternatives:
            key = (o["model"], "conv weight-grad", o["layer"])
            lines.append(
                f"| {o['model']} | {o['layer']} | {flex[key]:.3f} | {o[stat]:.3f} | {theirs[key]:.3f} |"
            )
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ["torch-bench", "side-by-side"]:
        p = sub.add_parser(name)
        p.add_argument("--models", default="mlp,cnn,resnet")
        p.add_argument("--optimizers", default="sgd,sam,esam")
        p.add_argument("--steps", type=int, default=20)
        p.add_argument("--warmup", type=int, default=3)
        p.add_argument("--batch-size", type=int, default=128)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--seed", type=int, default=0)
        if name == "side-by-side":
            p.add_argument("--rounds", type=int, default=3)
            p.add_argument("--flatmin", required=True, help="the release `flatmin` binary")
            p.add_argument(
                "--torch-env", default="OMP_WAIT_POLICY=PASSIVE",
                help="extra environment of the PyTorch processes, VAR=value,... (default: OpenMP's "
                     "threads sleep when idle; its spinning default made steps up to 100x slower "
                     "on this shared 2-core machine)")
            p.add_argument("--work", required=True, help="folder for each round's JSON")
            p.add_argument(
                "--flatmin-variant", action="append",
                help="LABEL[@BINARY][:VAR=value,...]: a flatmin process, with another binary and/or "
                     "extra environment (repeatable; default one plain `flatmin`)")
            p.add_argument(
                "--flatmin-variant-flags", action="append",
                help="LABEL=FLAGS: extra flags of that variant's `flatmin bench`, e.g. "
                     "'tch=--device tch' (repeatable)")
    p = sub.add_parser("ops")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=20)
    p = sub.add_parser("table", help="the side-by-side table of a saved side-by-side.json")
    p.add_argument("json")
    p = sub.add_parser("ops-table")
    p.add_argument("burn", help="the JSON of the Rust example op_profile")
    p.add_argument("torch", help="the JSON of `ops`")
    p.add_argument("--statistic", choices=["ms", "min_ms", "cpu_ms", "min_cpu_ms"], default="ms",
                   help="median wall time (ms), fastest call (min_ms), median or least CPU time of the process (cpu_ms, min_cpu_ms)")
    args = ap.parse_args()
    {
        "torch-bench": torch_bench,
        "side-by-side": side_by_side,
        "ops": ops,
        "ops-table": ops_table,
        "table": saved_table,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
