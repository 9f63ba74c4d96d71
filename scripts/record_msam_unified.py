#!/usr/bin/env python3
"""Records conformance cases from the official code of Momentum-SAM (MarlonBecker/MSAM: classes
MSAM and AdamW_MSAM) and of Unified SAM (dimitris-oik/unifiedsam: class unifiedSAM), in the case
format of crates/flatmin-cli/tests/fixtures/FORMAT.md, into
crates/flatmin-cli/tests/fixtures/reference/.

This script is ours; nothing of the reference code is copied into the repository. It imports the
reference files from a folder OUTSIDE the repository, given as the first argument (or the
environment variable REFCODE; default /tmp/refcode), laid out as:

    REFCODE/msam/optimizer/msam.py          MarlonBecker/MSAM  optimizer/msam.py
    REFCODE/msam/optimizer/adamW_msam.py    MarlonBecker/MSAM  optimizer/adamW_msam.py
    REFCODE/msam/COMMIT                     its commit hash (one line)
    REFCODE/unifiedsam/unifiedsam.py        dimitris-oik/unifiedsam  unifiedsam.py
    REFCODE/unifiedsam/COMMIT               its commit hash

made from clones (or bare mirrors) of the two repositories, e.g.

    M=path/to/MSAM.git; U=path/to/unifiedsam.git
    mkdir -p /tmp/refcode/msam/optimizer /tmp/refcode/unifiedsam
    git -C $M show HEAD:optimizer/msam.py > /tmp/refcode/msam/optimizer/msam.py
    git -C $M show HEAD:optimizer/adamW_msam.py > /tmp/refcode/msam/optimizer/adamW_msam.py
    git -C $M rev-parse HEAD > /tmp/refcode/msam/COMMIT
    git -C $U show HEAD:unifiedsam.py > /tmp/refcode/unifiedsam/unifiedsam.py
    git -C $U rev-parse HEAD > /tmp/refcode/unifiedsam/COMMIT

The MSAM files are loaded by path (not through the repository's optimizer/__init__.py, which
imports its training utilities). Needs Python with torch, outside the repository:

    python3 -m venv /tmp/venv-ref && /tmp/venv-ref/bin/pip install torch
    /tmp/venv-ref/bin/python scripts/record_msam_unified.py /tmp/refcode

The problem is the one every case shares (model, data and initial weights of fixtures/sam.json,
float64, batch 16 without shuffling, mean softmax cross-entropy, 10 steps).

How the steps are driven:
  MSAM / AdamW_MSAM: as the authors' main.py drives them (a drop-in for SGD/AdamW): forward and
    backward on the batch at the weights the model holds (the perturbed point), opt.step(),
    opt.zero_grad(). The recorded `loss` is that forward's (at the perturbed point). The recorded
    `params` and `full_loss_after` are at the UNPERTURBED weights: a deep copy of (model, optimizer)
    is moved back with the class's move_back_from_momentumAscent() and read; the training run itself
    is never moved. A second run that instead moves the live model back and up again after every step
    is made for comparison (the printed difference), and is not written.
  unifiedSAM: as SAM: forward+backward at w, first_step(zero_grad=True), forward+backward at w+e,
    second_step(zero_grad=True); `loss` is the first forward's.

Each recording is then checked against a plain re-implementation of the update as written in the
case's notes (not the reference code), and unified_sam_l1.json against fixtures/sam.json.
"""

import copy
import importlib.util
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "crates/flatmin-cli/tests/fixtures")
OUT = os.path.join(FIXTURES, "reference")
OUT_REL = "crates/flatmin-cli/tests/fixtures/reference"
STEPS = 10
BATCH = 16

torch.set_default_dtype(torch.float64)


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_commit(folder):
    with open(os.path.join(folder, "COMMIT")) as fh:
        return fh.read().strip()


def load_template():
    with open(os.path.join(FIXTURES, "sam.json")) as fh:
        return json.load(fh)


def make_model(template):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.tensor(template["init_params"][name], dtype=torch.float64))
    return model


def params_dict(model):
    return {n: p.detach().tolist() for n, p in model.named_parameters()}


def batch_rows(step, rows):
    start = BATCH * (step % (rows // BATCH))
    return list(range(start, start + BATCH))


def data(template):
    X = torch.tensor(template["data"]["X"], dtype=torch.float64)
    y = torch.tensor(template["data"]["y"], dtype=torch.long)
    return X, y


def ce(model, X, y):
    return torch.nn.functional.cross_entropy(model(X), y)


def max_param_diff(steps_a, steps_b):
    worst = 0.0
    for s, t in zip(steps_a, steps_b):
        for n in s["params"]:
            a = torch.tensor(s["params"][n])
            b = torch.tensor(t["params"][n])
            worst = max(worst, (a - b).abs().max().item())
    return worst


# ----------------------------------------------------------------------------------------------
# MSAM (SGD form and AdamW form)
# ----------------------------------------------------------------------------------------------

def run_msam(template, make_opt, scale_of, in_place):
    """Drives an MSAM-type optimizer as the authors' training loop does. `in_place`: read the
    unperturbed weights by moving the live model back and up again (else: from a deep copy)."""
    X, y = data(template)
    model = make_model(template)
    opt = make_opt(model)
    opt.move_up_to_momentumAscent()  # main.py does this at each epoch's start (a no-op at first)
    steps = []
    for step in range(STEPS):
        idx = batch_rows(step, len(X))
        loss = ce(model, X[idx], y[idx])
        loss.backward()
        opt.step()
        opt.zero_grad()
        extra = {"ascent_scale": scale_of(opt)}
        with torch.no_grad():
            extra["perturbed_full_loss"] = ce(model, X, y).item()
        if in_place:
            opt.move_back_from_momentumAscent()
            with torch.no_grad():
                full = ce(model, X, y).item()
            params = params_dict(model)
            opt.move_up_to_momentumAscent()
        else:
            cmodel, copt = copy.deepcopy((model, opt))
            # the copy's optimizer must act on the copy's parameters
            assert all(a is b for a, b in zip(copt.param_groups[0]["params"], cmodel.parameters()))
            assert all(a is not b for a, b in zip(cmodel.parameters(), model.parameters()))
            copt.move_back_from_momentumAscent()
            with torch.no_grad():
                full = ce(cmodel, X, y).item()
            params = params_dict(cmodel)
        steps.append({
            "step": step,
            "batch_indices": idx,
            "loss": loss.item(),
            "full_loss_after": full,
            "params": params,
            "extra": extra,
        })
    return steps


def msam_sgd_as_described(template, hp):
    """The SGD form rewritten from its case notes, on the same problem."""
    X, y = data(template)
    model = make_model(template)
    ps = list(model.parameters())
    rho, lr, mu, wd = hp["rho"], hp["lr"], hp["momentum"], hp["weight_decay"]
    v = [torch.zeros_like(p) for p in ps]
    s_old = 0.0
    out = []
    for step in range(STEPS):
        idx = batch_rows(step, len(X))
        model.zero_grad()
        ce(model, X[idx], y[idx]).backward()
        with torch.no_grad():
            for k, p in enumerate(ps):
                d = p.grad + wd * p                 # wd on the perturbed point
                p.add_(s_old * v[k])                # back to w
                v[k] = mu * v[k] + d
                p.sub_(lr * v[k])
            s_old = rho / (torch.sqrt(sum((vk * vk).sum() for vk in v)) + 1e-12).item()
            out.append(params_dict(model))  # the unperturbed w
            for k, p in enumerate(ps):
                p.sub_(s_old * v[k])
    return [{"params": o} for o in out]


def msam_adamw_as_described(template, hp):
    """The AdamW form rewritten from its case notes."""
    X, y = data(template)
    model = make_model(template)
    ps = list(model.parameters())
    rho, lr, wd, eps = hp["rho"], hp["lr"], hp["weight_decay"], hp["eps"]
    b1, b2 = hp["betas"]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    nf = 0.0
    out = []
    for step in range(STEPS):
        t = step + 1
        idx = batch_rows(step, len(X))
        model.zero_grad()
        ce(model, X[idx], y[idx]).backward()
        with torch.no_grad():
            for k, p in enumerate(ps):
                g = p.grad
                p.add_(nf * m[k])
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                p.sub_((lr / (1 - b1 ** t)) * m[k] / (v[k].sqrt() / math.sqrt(1 - b2 ** t) + eps))
                p.mul_(1 - lr * wd)
            nf = rho / (torch.sqrt(sum((mk * mk).sum() for mk in m)) + 1e-12).item()
            out.append(params_dict(model))  # the unperturbed w
            for k, p in enumerate(ps):
                p.sub_(nf * m[k])
    return [{"params": o} for o in out]


# ----------------------------------------------------------------------------------------------
# Unified SAM
# ----------------------------------------------------------------------------------------------

def lambda_t(lambd, t):
    if lambd == "1/t":
        return 1.0 / t
    if lambd == "1-1/t":
        return 1.0 - 1.0 / t
    return float(lambd)


def run_unified(template, unifiedSAM, hp):
    X, y = data(template)
    model = make_model(template)
    opt = unifiedSAM(model.parameters(), torch.optim.SGD, rho=hp["rho"], lambd=hp["lambda"], lr=hp["lr"],
                     momentum=hp["momentum"], weight_decay=hp["weight_decay"], dampening=hp["dampening"],
                     nesterov=hp["nesterov"])
    steps = []
    for step in range(STEPS):
        idx = batch_rows(step, len(X))
        xb, yb = X[idx], y[idx]
        loss = ce(model, xb, yb)
        loss.backward()
        with torch.no_grad():
            gnorm = torch.norm(torch.stack([p.grad.norm() for p in model.parameters()])).item()
        opt.first_step(zero_grad=True)
        with torch.no_grad():
            e_norm = torch.norm(torch.stack([(p - opt.state[p]["old_p"]).norm()
                                             for p in model.parameters()])).item()
        ce(model, xb, yb).backward()
        opt.second_step(zero_grad=True)
        with torch.no_grad():
            full = ce(model, X, y).item()
        steps.append({
            "step": step,
            "batch_indices": idx,
            "loss": loss.item(),
            "full_loss_after": full,
            "params": params_dict(model),
            "extra": {"lambda_t": lambda_t(hp["lambda"], opt.number_steps), "grad_norm": gnorm,
                      "perturbation_norm": e_norm},
        })
    return steps


def unified_as_described(template, hp):
    X, y = data(template)
    model = make_model(template)
    ps = list(model.parameters())
    buf = [None] * len(ps)
    out = []
    for step in range(STEPS):
        t = step + 1
        idx = batch_rows(step, len(X))
        xb, yb = X[idx], y[idx]
        model.zero_grad()
        ce(model, xb, yb).backward()
        with torch.no_grad():
            lam = lambda_t(hp["lambda"], t)
            n = torch.sqrt(sum((p.grad * p.grad).sum() for p in ps))
            scale = hp["rho"] * (1 - lam + lam / (n + 1e-12))
            old = [p.clone() for p in ps]
            for p in ps:
                p.add_(p.grad * scale)
        model.zero_grad()
        ce(model, xb, yb).backward()
        with torch.no_grad():
            for k, p in enumerate(ps):
                d = p.grad + hp["weight_decay"] * old[k]
                buf[k] = d.clone() if buf[k] is None else hp["momentum"] * buf[k] + d
                p.copy_(old[k] - hp["lr"] * buf[k])
        out.append({"params": params_dict(model)})
    return out


# ----------------------------------------------------------------------------------------------

def case(template, optimizer, reference, hp, notes, steps):
    return {
        "optimizer": optimizer,
        "reference": reference,
        "hyperparams": hp,
        "notes": notes,
        "torch_version": torch.__version__,
        "dtype": "float64",
        "param_names": copy.deepcopy(template["param_names"]),
        "param_shapes": copy.deepcopy(template["param_shapes"]),
        "init_params": template["init_params"],
        "data": template["data"],
        "batch_size": BATCH,
        "loss": "cross_entropy(mean)",
        "steps": steps,
    }


def write(name, value):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as fh:
        json.dump(value, fh, indent=1)
        fh.write("\n")
    s = value["steps"]
    finite = all(math.isfinite(x["loss"]) and math.isfinite(x["full_loss_after"]) for x in s)
    print("wrote %s/%s: loss step0 %.6f -> step%d %.6f, full_loss_after %.6f -> %.6f, finite %s"
          % (OUT_REL, name, s[0]["loss"], len(s) - 1, s[-1]["loss"], s[0]["full_loss_after"],
             s[-1]["full_loss_after"], finite))
    if not finite:
        raise RuntimeError(name + ": non-finite loss")


MSAM_SGD_NOTES = (
    "MarlonBecker/MSAM optimizer/msam.py class MSAM (SGD form), recorded by scripts/record_msam_unified.py, "
    "driven as the authors' main.py drives it: forward+backward on the batch at the weights the model holds "
    "(the perturbed point p), opt.step(), opt.zero_grad(). The momentum buffer v starts at zeros (set in "
    "__init__) and the stored inverse norm at 0, so step 0 runs at the initial weights with no ascent. Per "
    "step, per tensor in order: d = g + wd * p (g the gradient at the perturbed point p, wd applied to p, "
    "written into p.grad in place); w = p + rho * v_old/(||v_old|| + 1e-12) (back to the unperturbed "
    "weights; the factor 1/(||v_old||+1e-12) is the one stored at the previous step, 0 at step 0); "
    "v = momentum * v + d (no dampening; v starts at 0, so the first v is d); w -= lr * v. Then, with "
    "||v|| the global norm of the new buffers, the model holds p = w - rho * v/(||v|| + 1e-12), and the "
    "factor 1/(||v|| + 1e-12) is stored for the next step. `loss` is the batch loss at the perturbed point p "
    "before the step; `params` and `full_loss_after` are at the unperturbed w after the step, read from a "
    "deep copy of (model, optimizer) moved back with move_back_from_momentumAscent() (the training run itself "
    "is never moved back). extra.ascent_scale = rho/(||v|| + 1e-12) after the step (rho times the stored "
    "factor), extra.perturbed_full_loss the full loss at the point the model holds. The class's nesterov "
    "argument is accepted but unused.")

MSAM_ADAMW_NOTES = (
    "MarlonBecker/MSAM optimizer/adamW_msam.py class AdamW_MSAM, recorded by scripts/record_msam_unified.py, "
    "driven as the authors' main.py drives it: forward+backward at the weights the model holds (the perturbed "
    "point p), opt.step(), opt.zero_grad(). State (m, v zeros, step t) is created at the first step; the "
    "stored norm factor starts at 0, so step 0 runs at the initial weights with no ascent. Per step, per "
    "tensor in order, with g the gradient at the perturbed point (no weight decay in g): w = p + f_old * m_old "
    "(back to the unperturbed weights, f_old the stored factor); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; "
    "w -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps); then w *= (1 - lr*wd): the decoupled weight decay "
    "is applied AFTER the Adam moment step (torch.optim.AdamW decays before it). Then f = rho/(||m|| + 1e-12), "
    "with ||m|| the global norm of the first moments m, NOT bias-corrected (rho is inside the stored factor), "
    "and the model holds p = w - f * m. `loss` is the batch loss at the perturbed point before the step; "
    "`params` and `full_loss_after` are at the unperturbed w after the step, read from a deep copy of (model, "
    "optimizer) moved back with move_back_from_momentumAscent(). extra.ascent_scale = f after the step, "
    "extra.perturbed_full_loss the full loss at the point the model holds.")


def unified_notes(lambd):
    return (
        "dimitris-oik/unifiedsam unifiedsam.py class unifiedSAM with base torch.optim.SGD, recorded by "
        "scripts/record_msam_unified.py, driven as SAM: forward+backward at w, first_step(zero_grad=True), "
        "forward+backward at w+e, second_step(zero_grad=True); `loss` is the first forward's. first_step "
        "increments its counter t (1 at the first step), takes ||g|| (global norm of the gradient at w) and "
        "scale = rho * (1 - lambda_t + lambda_t/(||g|| + 1e-12)); lambda = %s here%s; e = scale * g "
        "(lambda 0: USAM, unnormalized; lambda 1: SAM). second_step restores w exactly (the saved copy) and runs "
        "the torch SGD step with the gradient at w+e: d = g_p + wd*w, buf = momentum*buf + d (buf = d at step 0), "
        "w -= lr*buf. extra.lambda_t is lambda at that step (our reading of the rule), extra.grad_norm ||g|| "
        "and extra.perturbation_norm ||e|| as measured on the weights first_step left." % (
            json.dumps(lambd),
            {"1/t": " (lambda_t = 1/t: SAM at step 1, tending to USAM)",
             "1-1/t": " (lambda_t = 1 - 1/t: USAM at step 1, tending to SAM)"}.get(lambd, " (constant)")))


def main():
    refcode = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("REFCODE", "/tmp/refcode")
    refcode = os.path.abspath(refcode)
    if refcode == REPO or refcode.startswith(REPO + os.sep):
        raise SystemExit("the reference code must live outside the repository")
    msam_dir = os.path.join(refcode, "msam")
    uni_dir = os.path.join(refcode, "unifiedsam")
    msam_mod = load_module("ref_msam", os.path.join(msam_dir, "optimizer", "msam.py"))
    adamw_msam_mod = load_module("ref_adamw_msam", os.path.join(msam_dir, "optimizer", "adamW_msam.py"))
    uni_mod = load_module("ref_unifiedsam", os.path.join(uni_dir, "unifiedsam.py"))
    msam_commit = read_commit(msam_dir)
    uni_commit = read_commit(uni_dir)
    template = load_template()
    print("torch", torch.__version__)

    # ---- MSAM, SGD form
    def sgd_scale(opt):
        g = opt.param_groups[0]
        return g["rho"] * g["inverse_norm_buffer"].item()

    for name, rho, lr, mu, wd in [("msam_sgd.json", 0.3, 0.1, 0.9, 0.0005),
                                  ("msam_sgd_wd0.01_rho0.1.json", 0.1, 0.05, 0.9, 0.01)]:
        hp = {"rho": rho, "lr": lr, "momentum": mu, "weight_decay": wd, "eps_norm": 1e-12,
              "base": "torch.optim.SGD"}

        def make(model, hp=hp):
            return msam_mod.MSAM(model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                                 weight_decay=hp["weight_decay"], rho=hp["rho"])

        steps = run_msam(template, make, sgd_scale, in_place=False)
        steps_ip = run_msam(template, make, sgd_scale, in_place=True)
        print("  %s: moving the live model back and up after every step changes the recorded params by "
              "max %.3e" % (name, max_param_diff(steps, steps_ip)))
        ref = {"repo": "MarlonBecker/MSAM", "commit": msam_commit, "file": "optimizer/msam.py", "cls": "MSAM"}
        write(name, case(template, "MSAM", ref, hp, MSAM_SGD_NOTES, steps))
        print("  %s: rewritten from the notes vs recording: max |dparams| = %.3e"
              % (name, max_param_diff(steps, msam_sgd_as_described(template, hp))))

    # ---- MSAM, AdamW form: the class's default rho = 1 if its run is finite and its loss falls
    def adam_scale(opt):
        f = opt.param_groups[0]["norm_factor"][0]
        return f.item() if torch.is_tensor(f) else float(f)

    chosen = None
    for rho in (1.0, 0.3):
        hp = {"rho": rho, "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
              "eps_norm": 1e-12, "base": "torch.optim.AdamW"}

        def make(model, hp=hp):
            return adamw_msam_mod.AdamW_MSAM(model.parameters(), lr=hp["lr"], betas=tuple(hp["betas"]),
                                             eps=hp["eps"], weight_decay=hp["weight_decay"], rho=hp["rho"])

        steps = run_msam(template, make, adam_scale, in_place=False)
        steps_ip = run_msam(template, make, adam_scale, in_place=True)
        full = [s["full_loss_after"] for s in steps]
        finite = all(math.isfinite(s["loss"]) and math.isfinite(s["full_loss_after"]) for s in steps)
        init_full = ce(make_model(template), *data(template)).item()
        print("  AdamW_MSAM rho=%g: full loss at init %.6f, after steps %s; in-place vs copy max %.3e"
              % (rho, init_full, ["%.4f" % f for f in full], max_param_diff(steps, steps_ip)))
        if finite and full[-1] < init_full:
            chosen = (hp, steps)
            break
    hp, steps = chosen
    ref = {"repo": "MarlonBecker/MSAM", "commit": msam_commit, "file": "optimizer/adamW_msam.py",
           "cls": "AdamW_MSAM"}
    notes = MSAM_ADAMW_NOTES + (" rho = %g%s." % (hp["rho"], " (the class's default)" if hp["rho"] == 1.0 else
                                                  " (the class's default 1 was not used)"))
    write("msam_adamw.json", case(template, "MSAM", ref, hp, notes, steps))
    print("  msam_adamw.json: rewritten from the notes vs recording: max |dparams| = %.3e"
          % max_param_diff(steps, msam_adamw_as_described(template, hp)))

    # ---- Unified SAM
    ref = {"repo": "dimitris-oik/unifiedsam", "commit": uni_commit, "file": "unifiedsam.py", "cls": "unifiedSAM"}
    for name, lambd in [("unified_usam.json", 0.0), ("unified_l0.5.json", 0.5), ("unified_1_over_t.json", "1/t"),
                        ("unified_1_minus_1_over_t.json", "1-1/t"), ("unified_sam_l1.json", 1.0)]:
        hp = {"rho": 0.05, "lambda": lambd, "eps_norm": 1e-12, "base": "torch.optim.SGD", "lr": 0.1,
              "momentum": 0.9, "weight_decay": 0.0005, "dampening": 0.0, "nesterov": False}
        steps = run_unified(template, uni_mod.unifiedSAM, hp)
        write(name, case(template, "UnifiedSAM", ref, hp, unified_notes(lambd), steps))
        print("  %s: rewritten from the notes vs recording: max |dparams| = %.3e"
              % (name, max_param_diff(steps, unified_as_described(template, hp))))
        if lambd == 1.0:
            sam = template["steps"]
            dl = max(abs(a["loss"] - b["loss"]) for a, b in zip(steps, sam))
            print("  %s vs fixtures/sam.json (davda54/sam): max |dparams| = %.3e, max |dloss| = %.3e"
                  % (name, max_param_diff(steps, sam), dl))


if __name__ == "__main__":
    sys.exit(main())
