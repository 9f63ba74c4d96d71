#!/usr/bin/env python3
"""Records a bSAM conformance case from the authors' JAX code (team-approx-bayes/bayesian-sam,
`optim.py`, `build_bsam_optimizer`), in float64, into crates/flatmin-cli/tests/fixtures/bsam_jax.json
(format: crates/flatmin-cli/tests/fixtures/FORMAT.md).

The authors' code is not part of this repository: pass the folder of a checkout of their repository
with --authors-repo. This script is ours; it builds the case's problem (the model, data and initial
weights of fixtures/sam.json: Linear(8,16) -> tanh -> Linear(16,3), mean softmax cross-entropy,
batch 16, 10 steps) as a JAX loss, calls the authors' `build_bsam_optimizer` with msharpness = 1,
and records every step. Their noise is drawn inside the step from the train state's key; the
script recomputes the same draws from that key with the authors' `normal_like_tree` (as their step
does: split the key into msharpness + 1 keys, the first one for the only sub-batch) and records them
in extra.noise, so that a replay can inject them. It then checks, in plain numpy, that the update
of crates/flatmin/ALGORITHMS.md §13.5 on those draws reproduces the recorded trajectory.

Needs Python with jax (CPU), numpy and tqdm (their util.py imports it):
    pip install jax tqdm
    python scripts/record_bsam_jax.py --authors-repo PATH/TO/bayesian-sam

Shim: newer JAX has no `jax.tree_map` (their code calls it); it is set to `jax.tree_util.tree_map`,
the same function under its current name.
"""

import argparse
import copy
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(REPO, "crates/flatmin-cli/tests/fixtures")
STEPS = 10
BATCH = 16
NAMES = ["0.weight", "0.bias", "2.weight", "2.bias"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--authors-repo", required=True, help="a checkout of team-approx-bayes/bayesian-sam")
    ap.add_argument("--out", default=os.path.join(FIXTURES, "bsam_jax.json"))
    a = ap.parse_args()

    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree_util.tree_map
    sys.path.insert(0, os.path.abspath(a.authors_repo))
    import optim as authors_optim
    from util import normal_like_tree

    with open(os.path.join(FIXTURES, "sam.json")) as fh:
        template = json.load(fh)
    X = np.array(template["data"]["X"], dtype=np.float64)
    y = np.array(template["data"]["y"], dtype=np.int64)
    w0 = {n: jnp.array(template["init_params"][n], dtype=jnp.float64) for n in NAMES}

    def loss_fn(params, netstate, minibatch, is_training=True):
        xb, yb = minibatch
        h = jnp.tanh(xb @ params["0.weight"].T + params["0.bias"])
        z = h @ params["2.weight"].T + params["2.bias"]
        logp = jax.nn.log_softmax(z)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1)), netstate

    lossgrad = jax.value_and_grad(loss_fn, has_aux=True)
    N = 64
    hp = {"lr": 0.1, "rho": 0.05, "beta1": 0.9, "beta2": 0.999, "prior_precision": 1.0, "data_size": N,
          "damping": 0.1, "s_init": 1.0}
    wdecay = hp["prior_precision"] / N  # as their train.py: priorprec / ndata
    init, step = authors_optim.build_bsam_optimizer(
        lossgrad, learningrate=hp["lr"], beta1=hp["beta1"], beta2=hp["beta2"], wdecay=wdecay, rho=hp["rho"],
        msharpness=1, Ndata=N, s_init=hp["s_init"], damping=hp["damping"])
    state = init(w0, None, jax.random.PRNGKey(7))

    steps = []
    for t in range(STEPS):
        start = BATCH * (t % (len(X) // BATCH))
        idx = list(range(start, start + BATCH))
        xb, yb = jnp.array(X[idx]), jnp.array(y[idx])
        w_before = {n: state.optstate["w"][n] for n in NAMES}
        s_before = {n: state.optstate["s"][n] for n in NAMES}
        # the draws their step makes: split(key, msharpness + 1), the first key for the sub-batch
        keys = jax.random.split(state.rngkey, 2)
        noise, _ = normal_like_tree(w_before, keys[0])
        noisy = {n: w_before[n] + jnp.sqrt(1.0 / (N * s_before[n])) * noise[n] for n in NAMES}
        (first_loss, _), _ = lossgrad(noisy, None, (xb, yb))
        state, perturbed_loss = step(state, (xb, yb), 1.0)
        w = state.optstate["w"]
        full, _ = loss_fn(w, None, (jnp.array(X), jnp.array(y)))
        steps.append({
            "step": t,
            "batch_indices": idx,
            "loss": float(first_loss),
            "full_loss_after": float(full),
            "params": {n: np.asarray(w[n]).tolist() for n in NAMES},
            "extra": {
                "noise": {n: np.asarray(noise[n]).tolist() for n in NAMES},
                "perturbed_loss": float(perturbed_loss),
                "second_pass": True,
            },
        })

    check = numpy_bsam(template, hp, steps)
    print("numpy bSAM (crates/flatmin/ALGORITHMS.md §13.5) on the recorded draws vs the authors' JAX: "
          "max |dparams| = %.3e" % check)
    if check > 1e-12:
        raise SystemExit("the recorded draws do not explain the trajectory; not writing")

    case = {
        "optimizer": "BSAM",
        "reference": {"repo": "team-approx-bayes/bayesian-sam", "file": "optim.py",
                      "function": "build_bsam_optimizer", "recorded_by": "scripts/record_bsam_jax.py",
                      "jax_version": jax.__version__},
        "hyperparams": hp,
        "notes": ("bSAM from the authors' JAX code (optim.py, build_bsam_optimizer, msharpness = 1), float64 "
                  "(jax_enable_x64), recorded by scripts/record_bsam_jax.py. wdecay = prior_precision/"
                  "data_size = 1/64 as their train.py. Noisy pass at w + sqrt(1/(N s)) n with n the "
                  "standard normal draws of extra.noise (recomputed from the train state's key exactly as "
                  "their step draws them); e = rho g/s; g_p at w + e; m = b1 m + (1-b1)(g_p + wdecay w); "
                  "w -= lr m/s (old s); s = b2 s + (1-b2)(sqrt(s g^2) + damping + wdecay). `loss` is the "
                  "noisy first pass's loss, computed by the recorder; their step returns the loss at w + e "
                  "(extra.perturbed_loss)."),
        "torch_version": "n/a (JAX %s)" % jax.__version__,
        "dtype": "float64",
        "param_names": list(NAMES),
        "param_shapes": copy.deepcopy(template["param_shapes"]),
        "init_params": template["init_params"],
        "data": template["data"],
        "batch_size": BATCH,
        "loss": "cross_entropy(mean)",
        "steps": steps,
    }
    with open(a.out, "w") as fh:
        json.dump(case, fh, indent=1)
        fh.write("\n")
    print("wrote", os.path.relpath(a.out, REPO))


def numpy_bsam(template, hp, steps):
    """crates/flatmin/ALGORITHMS.md §13.5 in numpy on the recorded draws; the largest difference to the
    recorded parameters."""
    X = np.array(template["data"]["X"], dtype=np.float64)
    y = np.array(template["data"]["y"], dtype=np.int64)
    w = {n: np.array(template["init_params"][n], dtype=np.float64) for n in NAMES}
    N = hp["data_size"]
    wd = hp["prior_precision"] / N
    s = {n: np.full_like(w[n], hp["s_init"]) for n in NAMES}
    m = {n: np.zeros_like(w[n]) for n in NAMES}

    def grad(p, idx):
        xb, yb = X[idx], y[idx]
        a = xb @ p["0.weight"].T + p["0.bias"]
        h = np.tanh(a)
        z = h @ p["2.weight"].T + p["2.bias"]
        z = z - z.max(axis=1, keepdims=True)
        prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        dz = prob.copy()
        dz[np.arange(len(yb)), yb] -= 1.0
        dz /= len(yb)
        da = (dz @ p["2.weight"]) * (1.0 - h * h)
        return {"2.weight": dz.T @ h, "2.bias": dz.sum(axis=0), "0.weight": da.T @ xb, "0.bias": da.sum(axis=0)}

    worst = 0.0
    for rec in steps:
        idx = rec["batch_indices"]
        noise = {n: np.array(rec["extra"]["noise"][n]) for n in NAMES}
        g = grad({n: w[n] + noise[n] / np.sqrt(N * s[n]) for n in NAMES}, idx)
        gp = grad({n: w[n] + hp["rho"] * g[n] / s[n] for n in NAMES}, idx)
        for n in NAMES:
            m[n] = hp["beta1"] * m[n] + (1 - hp["beta1"]) * (gp[n] + wd * w[n])
            w[n] = w[n] - hp["lr"] * m[n] / s[n]
            s[n] = hp["beta2"] * s[n] + (1 - hp["beta2"]) * (np.sqrt(s[n]) * np.abs(g[n]) + hp["damping"] + wd)
            worst = max(worst, float(np.abs(w[n] - np.array(rec["params"][n])).max()))
    return worst


if __name__ == "__main__":
    main()
