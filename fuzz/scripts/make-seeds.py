#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into fuzz/corpus/<target>/seed-*: small valid
inputs (and a few near misses) that the fuzzer mutates. Deterministic: run it again and nothing
changes. The shrunken conformance cases come from crates/flatmin-cli/tests/fixtures."""

import glob
import gzip
import io
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
FIXTURES = os.path.join(FUZZ, "..", "crates", "flatmin-cli", "tests", "fixtures")


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return out.getvalue()


def images(count, rows, cols, fill=7):
    return struct.pack(">IIII", 0x803, count, rows, cols) + bytes((fill + i) % 256 for i in range(count * rows * cols))


def labels(values):
    return struct.pack(">II", 0x801, len(values)) + bytes(values)


def parts(*files):
    """The idx target's four-file layout: u16 LE length + bytes for all but the last."""
    out = b""
    for f in files[:-1]:
        out += struct.pack("<H", len(f)) + f
    return out + files[-1]


def write(target, name, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# IDX
write("idx", "images", images(3, 2, 2))
write("idx", "images-gz", gz(images(3, 4, 3)))
write("idx", "labels", labels([0, 1, 9]))
write("idx", "labels-gz", gz(labels([3, 1, 4, 1, 5])))
write("idx", "images-truncated", images(3, 2, 2)[:-1])
write("idx", "images-trailing", images(1, 2, 2) + b"\0")
write("idx", "split", parts(images(2, 2, 2), labels([0, 1]), images(1, 2, 2), labels([9])))
write("idx", "split-gz", parts(gz(images(2, 3, 3)), gz(labels([0, 5])), gz(images(2, 3, 3)), labels([1, 2])))
write("idx", "split-mismatch", parts(images(2, 2, 2), labels([0]), images(1, 3, 2), labels([10])))
write("idx", "gzip-two-members", gz(images(1, 1, 2)[:10]) + gz(images(1, 1, 2)[10:]))

# CIFAR
rec10 = bytes([3]) + bytes(i % 256 for i in range(3072))
rec100 = bytes([1, 57]) + bytes((i * 7) % 256 for i in range(3072))
write("cifar", "cifar10-one", rec10)
write("cifar", "cifar10-two", rec10 + bytes([9]) + rec10[1:])
write("cifar", "cifar100-one", rec100)
write("cifar", "bad-label", bytes([200]) + rec10[1:])
write("cifar", "empty", b"")
write("cifar", "short", rec10[:100])


# Conformance cases: each fixture's optimizer and hyperparameters on a 2-layer MLP of 3→2→2,
# 4 rows, 2 steps.
def tiny_case(case):
    shapes = [[2, 3], [2], [2, 2], [2]]
    names = case["param_names"][:4]
    init = {
        names[0]: [[0.1, -0.2, 0.3], [0.0, 0.5, -0.1]],
        names[1]: [0.01, -0.02],
        names[2]: [[0.3, -0.4], [0.2, 0.1]],
        names[3]: [0.0, 0.1],
    }
    steps = []
    for k in range(2):
        s = {"step": k, "batch_indices": [0, 1] if k == 0 else [2, 3], "loss": 0.7}
        extra = {}
        for key in ("first_pass_requires_grad", "selected_batch_positions"):
            v = case["steps"][k].get("extra", {}).get(key)
            if v is not None:
                extra[key] = v[:4] if key == "first_pass_requires_grad" else ([p for p in v if p < 2][:1] or [0])
        if extra:
            s["extra"] = extra
        steps.append(s)
    return {
        "optimizer": case["optimizer"],
        "hyperparams": case["hyperparams"],
        "dtype": "float64",
        "loss": "cross_entropy(mean)",
        "param_names": names,
        "param_shapes": shapes,
        "init_params": init,
        "data": {"X": [[0.5, -1.0, 0.25], [1.0, 0.0, -0.5], [-0.3, 0.2, 0.9], [0.0, 0.7, -0.7]], "y": [0, 1, 1, 0]},
        "batch_size": 2,
        "steps": steps,
    }


paths = sorted(glob.glob(os.path.join(FIXTURES, "*.json")) + glob.glob(os.path.join(FIXTURES, "oracle", "*.json")))
for path in paths:
    with open(path) as f:
        case = json.load(f)
    name = os.path.splitext(os.path.basename(path))[0]
    write("replay_case", name, json.dumps(tiny_case(case), sort_keys=True).encode())
write("replay_case", "not-an-object", b"[1, 2, 3]")
write("replay_case", "hyperparams-only", json.dumps({"optimizer": "SAM", "hyperparams": {"base": "torch.optim.SGD", "lr": 0.1, "rho": 0.05}}).encode())

# Config files
configs = {
    "default": {},
    "tests": {"model": "mlp", "epochs": 1, "train_limit": 256, "test_limit": 100, "optimizer": "fsam", "hp": {"fsam_sigma": 0.5}},
    "every-field": {
        "dataset": "mnist", "data_dir": "data/mnist", "model": "cnn", "optimizer": "esam", "base": "adamw",
        "epochs": 3, "batch_size": 32, "lr": 0.001, "weight_decay": 0.01, "momentum": 0.0, "seed": 7,
        "label_noise": 0.2, "train_limit": 1000, "test_limit": 500,
        "hp": {"rho": 0.1, "rho_min": 0.01, "eps": 1e-12, "adaptive": True, "esam_beta": 0.5,
               "esam_per_element": True, "esam_gamma": 0.6, "gsam_alpha": 0.3, "fsam_sigma": 1.0, "fsam_lambda": 0.5},
    },
    "wsam": {"optimizer": "wsam", "hp": {"wsam_gamma": 0.8, "wsam_coupled": True, "wsam_max_norm": 1.0}},
    "fisher": {"optimizer": "fisher-sam", "base": "adam", "hp": {"fisher_eta": 0.5}},
    "asam": {"optimizer": "asam", "hp": {"asam_eta": 0.01, "rho": 1.0}},
    "unknown-key": {"epochz": 3},
    "bad-range": {"lr": -1, "label_noise": 2},
}
for name, c in configs.items():
    write("train_config", name, json.dumps(c).encode())
