#!/usr/bin/env python3
"""Independent float64 oracle for the flatmin conformance cases.

Written only from the written specification (the case format, now
crates/flatmin-cli/tests/fixtures/FORMAT.md, and the algorithm specification, now
crates/flatmin/ALGORITHMS.md sections 1-9, 11-12), NOT from the Rust code of this repository
and NOT a recording of the official PyTorch implementations. The members of section 13
(LookSAM, SAM every k, RST, AE-SAM, bSAM) were added later from that section (their
author had also read the library's code for them; see the oracle README).

Pure Python 3 (no numpy, no torch). Everything is IEEE float64. Gradients of the
tiny MLP  Linear(8,16) -> tanh -> Linear(16,3) -> mean softmax cross-entropy
are computed by hand (analytic backprop).

Usage:
  python3 scripts/conformance_oracle.py validate [--shipped DIR]
      re-runs every shipped case (same init, data, hyperparameters; ESAM uses the
      masks recorded in the case) and prints the max abs difference per case.
  python3 scripts/conformance_oracle.py generate [--shipped DIR] [--out DIR]
      validates first (aborts if any shipped case differs by more than 1e-12),
      then writes the extra cases (one JSON file per case) into --out.

Defaults: --shipped crates/flatmin-cli/tests/fixtures (the recorded cases),
          --out crates/flatmin-cli/tests/fixtures/oracle (both relative to the repo root).
"""

import argparse
import copy
import glob
import json
import math
import os
import random
import sys

PARAM_NAMES = ["0.weight", "0.bias", "2.weight", "2.bias"]
PARAM_SHAPES = [[16, 8], [16], [3, 16], [3]]
N_IN, N_HID, N_OUT = 8, 16, 3
BATCH = 16
N_STEPS = 10
VALIDATION_BAR = 1e-12

# --------------------------------------------------------------------------------------
# parameter containers: a list of 4 flat (row-major) lists of floats


def flatten(v):
    if isinstance(v, list) and v and isinstance(v[0], list):
        return [float(x) for row in v for x in row]
    return [float(x) for x in v]


def unflatten(flat, shape):
    if len(shape) == 1:
        return list(flat)
    r, c = shape
    return [list(flat[i * c:(i + 1) * c]) for i in range(r)]


def params_from_dict(d):
    return [flatten(d[n]) for n in PARAM_NAMES]


def params_to_dict(P):
    return {n: unflatten(P[i], PARAM_SHAPES[i]) for i, n in enumerate(PARAM_NAMES)}


def clone(P):
    return [list(t) for t in P]


def tensor_norm(t):
    return math.sqrt(sum(x * x for x in t))


def global_norm(tensors):
    """torch.norm(torch.stack([t.norm(2) for t in tensors]), 2): per-tensor norms, then
    the norm of those norms (crates/flatmin/ALGORITHMS.md §1.3: the global norm)."""
    return math.sqrt(sum(n * n for n in (tensor_norm(t) for t in tensors)))


# --------------------------------------------------------------------------------------
# model: forward + analytic backward


def forward_backward(P, X, y, idx, need_grad=True):
    """Per-sample CE losses at P for the rows idx, their mean, and the gradient of the mean."""
    W1, b1, W2, b2 = P
    n = len(idx)
    losses = []
    if need_grad:
        gW1 = [0.0] * (N_HID * N_IN)
        gb1 = [0.0] * N_HID
        gW2 = [0.0] * (N_OUT * N_HID)
        gb2 = [0.0] * N_OUT
    for i in idx:
        x = X[i]
        h = []
        for j in range(N_HID):
            a = b1[j]
            row = j * N_IN
            for k in range(N_IN):
                a += W1[row + k] * x[k]
            h.append(math.tanh(a))
        z = []
        for c in range(N_OUT):
            s = b2[c]
            row = c * N_HID
            for j in range(N_HID):
                s += W2[row + j] * h[j]
            z.append(s)
        m = max(z)
        lse = m + math.log(sum(math.exp(zc - m) for zc in z))
        logsm = [zc - lse for zc in z]
        yi = y[i]
        losses.append(-logsm[yi])
        if need_grad:
            dz = [(math.exp(logsm[c]) - (1.0 if c == yi else 0.0)) / n for c in range(N_OUT)]
            for c in range(N_OUT):
                gb2[c] += dz[c]
                row = c * N_HID
                for j in range(N_HID):
                    gW2[row + j] += dz[c] * h[j]
            for j in range(N_HID):
                dh = 0.0
                for c in range(N_OUT):
                    dh += dz[c] * W2[c * N_HID + j]
                da = dh * (1.0 - h[j] * h[j])
                gb1[j] += da
                row = j * N_IN
                for k in range(N_IN):
                    gW1[row + k] += da * x[k]
    mean = sum(losses) / n
    grads = [gW1, gb1, gW2, gb2] if need_grad else None
    return losses, mean, grads


# --------------------------------------------------------------------------------------
# base optimizers (PyTorch semantics)


class TorchSGD:
    def __init__(self, hp):
        self.lr = hp["lr"]
        self.momentum = hp.get("momentum", 0.0)
        self.wd = hp.get("weight_decay", 0.0)
        self.dampening = hp.get("dampening", 0.0)
        self.nesterov = hp.get("nesterov", False)
        self.buf = None

    def step(self, P, G):
        if self.buf is None:
            self.buf = [None] * len(P)
        for k in range(len(P)):
            w, g = P[k], G[k]
            d = [g[i] + self.wd * w[i] for i in range(len(w))] if self.wd != 0 else list(g)
            if self.momentum != 0:
                if self.buf[k] is None:
                    buf = list(d)  # the buffer starts as the first d (no dampening)
                else:
                    buf = [self.momentum * self.buf[k][i] + (1.0 - self.dampening) * d[i]
                           for i in range(len(d))]
                self.buf[k] = buf
                if self.nesterov:
                    d = [d[i] + self.momentum * buf[i] for i in range(len(d))]
                else:
                    d = buf
            P[k] = [w[i] - self.lr * d[i] for i in range(len(w))]


class TorchAdam:
    def __init__(self, hp, decoupled):
        self.lr = hp["lr"]
        self.b1, self.b2 = hp.get("betas", [0.9, 0.999])
        self.eps = hp.get("eps", 1e-8)
        self.wd = hp.get("weight_decay", 0.0)
        if hp.get("amsgrad", False):
            raise NotImplementedError("amsgrad=true is not part of the spec")
        self.decoupled = decoupled  # AdamW
        self.m = None
        self.v = None
        self.t = 0

    def step(self, P, G):
        if self.m is None:
            self.m = [[0.0] * len(t) for t in P]
            self.v = [[0.0] * len(t) for t in P]
        self.t += 1
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        step_size = self.lr / bc1
        bc2_sqrt = math.sqrt(bc2)
        for k in range(len(P)):
            w, g = list(P[k]), G[k]
            if self.decoupled:
                if self.wd != 0:
                    f = 1.0 - self.lr * self.wd
                    w = [wi * f for wi in w]
                d = list(g)
            else:
                d = [g[i] + self.wd * w[i] for i in range(len(w))] if self.wd != 0 else list(g)
            m, v = self.m[k], self.v[k]
            a1 = 1.0 - self.b1
            a2 = 1.0 - self.b2
            for i in range(len(w)):
                m[i] = m[i] + a1 * (d[i] - m[i])  # torch lerp (weight < 0.5)
                v[i] = v[i] * self.b2 + a2 * d[i] * d[i]
                denom = math.sqrt(v[i]) / bc2_sqrt + self.eps
                w[i] = w[i] - step_size * (m[i] / denom)
            P[k] = w


def make_base(hp):
    b = hp["base"]
    if b == "torch.optim.SGD":
        return TorchSGD(hp)
    if b == "torch.optim.Adam":
        return TorchAdam(hp, decoupled=False)
    if b == "torch.optim.AdamW":
        return TorchAdam(hp, decoupled=True)
    raise ValueError("unknown base optimizer %r" % b)


# --------------------------------------------------------------------------------------
# small vector helpers on parameter lists


def add(P, E):
    return [[p + e for p, e in zip(pt, et)] for pt, et in zip(P, E)]


def sub(P, E):
    return [[p - e for p, e in zip(pt, et)] for pt, et in zip(P, E)]


def scaled(G, s):
    return [[g * s for g in t] for t in G]


def clip_grad_norm(G, max_norm, log=None):
    """torch.nn.utils.clip_grad_norm_: coef = max_norm/(total+1e-6), clamped to <= 1, always applied."""
    total = global_norm(G)
    coef = max_norm / (total + 1e-6)
    if log is not None:
        log.append(coef < 1.0)
    coef = min(coef, 1.0)
    return [[g * coef for g in t] for t in G]


def sam_perturbation(P, D, rho, eps, adaptive, extra_div=None, active=None):
    """e = rho*D/(||D||+eps) or (adaptive) rho*w^2*D/(|| |w|*D ||+eps); torch order:
    e = (w^2 if adaptive else 1) * D * scale with scale = rho/(n+eps) [/beta].
    active: per-tensor bool (ESAM); inactive tensors do not count and get e = 0."""
    K = len(P)
    if active is None:
        active = [True] * K
    if adaptive:
        normed = [[abs(w) * d for w, d in zip(P[k], D[k])] for k in range(K) if active[k]]
    else:
        normed = [D[k] for k in range(K) if active[k]]
    n = global_norm(normed)
    scale = rho / (n + eps)
    if extra_div is not None:
        scale = scale / extra_div
    E = []
    for k in range(K):
        if not active[k]:
            E.append([0.0] * len(P[k]))
        elif adaptive:
            E.append([(w * w) * d * scale for w, d in zip(P[k], D[k])])
        else:
            E.append([d * scale for d in D[k]])
    return E


# --------------------------------------------------------------------------------------
# the pass schedules (crates/flatmin/ALGORITHMS.md §13.1-13.3)

MASK64 = (1 << 64) - 1


def splitmix64_uniform(seed, index):
    """The index-th output (from 0) of the SplitMix64 stream seeded with `seed`, as a uniform
    number in [0, 1): top 53 bits over 2^53. SplitMix64: state += 0x9E3779B97F4A7C15, then
    z = (z ^ z>>30) * 0xBF58476D1CE4E5B9, z = (z ^ z>>27) * 0x94D049BB133111EB, z ^ z>>31."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) / float(1 << 53)


assert splitmix64_uniform(0, 0) == (0xE220A8397B1DCDAF >> 11) / float(1 << 53)


def scheduled_sam_step(hp, step, k_key="sam_every"):
    """Whether step `step` (from 0) runs SAM's second pass under the hyperparameters' schedule:
    every k steps (steps 0, k, 2k, ...), or randomized (u_step < p, u from SplitMix64), or always."""
    if hp.get(k_key) is not None:
        return step % hp[k_key] == 0
    if hp.get("sam_probability") is not None:
        return splitmix64_uniform(hp["sam_seed"], step) < hp["sam_probability"]
    return True


def dot(A, B):
    return sum(a * b for ta, tb in zip(A, B) for a, b in zip(ta, tb))


def look_gv(g, gp, per_tensor):
    """LookSAM's stored component g_v = g_p - (g.g_p/||g||^2) g (global or per tensor;
    g_v = g_p where g = 0)."""
    if per_tensor:
        out = []
        for gt, gpt in zip(g, gp):
            nn = sum(a * a for a in gt)
            c = sum(a * b for a, b in zip(gt, gpt)) / nn if nn > 0 else 0.0
            out.append([b - c * a for a, b in zip(gt, gpt)])
        return out
    nn = dot(g, g)
    c = dot(g, gp) / nn if nn > 0 else 0.0
    return [[b - c * a for a, b in zip(gt, gpt)] for gt, gpt in zip(g, gp)]


def look_reuse(g, gv, alpha, eps, per_tensor):
    """A LookSAM step without a second pass: g + alpha (||g||/(||g_v|| + eps)) g_v."""
    if per_tensor:
        return [[a + (alpha * tensor_norm(gt) / (tensor_norm(vt) + eps)) * v for a, v in zip(gt, vt)]
                for gt, vt in zip(g, gv)]
    scale = alpha * global_norm(g) / (global_norm(gv) + eps)
    return [[a + scale * v for a, v in zip(gt, vt)] for gt, vt in zip(g, gv)]


# --------------------------------------------------------------------------------------
# the optimizers (one training run each)


def batch_idx(step):
    s = BATCH * (step % 4)
    return list(range(s, s + BATCH))


def run(case_hp, optimizer, init, X, y, esam_recorded_masks=None, esam_rng=None, bsam_noise=None):
    hp = case_hp
    run.clip_log_g, run.clip_log_gp = [], []
    run.ae_margins = []
    P = clone(init)
    base = make_base(hp) if optimizer != "BSAM" else None
    look_v = None  # LookSAM's stored g_v
    ae_mean, ae_var = 0.0, 0.0  # AE-SAM's running statistics of ||g||^2
    bsam_m, bsam_s = None, None  # bSAM's momentum and precision
    steps = []
    fsam_m = None
    # ESAM state
    esam_mask = [True] * 4
    for step in range(N_STEPS):
        idx = batch_idx(step)
        extra = {}
        if optimizer == "SGD":
            _, loss, g = forward_backward(P, X, y, idx)
            base.step(P, g)

        elif optimizer in ("SAM", "SAM(adaptive)") and not scheduled_sam_step(hp, step):
            # a base step of the schedule: the base optimizer on g, one pass
            _, loss, g = forward_backward(P, X, y, idx)
            base.step(P, g)
            extra["second_pass"] = False

        elif optimizer in ("SAM", "SAM(adaptive)"):
            if hp.get("sam_every") is not None or hp.get("sam_probability") is not None:
                extra["second_pass"] = True
            adaptive = hp.get("adaptive", optimizer == "SAM(adaptive)")
            _, loss, g = forward_backward(P, X, y, idx)
            e = sam_perturbation(P, g, hp["rho"], hp.get("eps_norm", 1e-12), adaptive)
            old = clone(P)
            _, _, gp = forward_backward(add(P, e), X, y, idx)
            P = old  # exact copy-restore (davda54)
            base.step(P, gp)

        elif optimizer in ("SamsungLabs.SAM", "SamsungLabs.ASAM"):
            eps = hp.get("eps_norm", 1e-16)
            rho = hp["rho"]
            _, loss, g = forward_backward(P, X, y, idx)
            if optimizer == "SamsungLabs.ASAM":
                eta = hp.get("eta", 0.01)
                if eta is None:
                    eta = 0.0
                T = [[abs(w) + eta for w in P[k]] if "weight" in PARAM_NAMES[k] else None
                     for k in range(4)]
            else:
                T = [None] * 4
            tg = [[gi * ti for gi, ti in zip(g[k], T[k])] if T[k] is not None else list(g[k])
                  for k in range(4)]
            n = global_norm(tg) + eps  # eps added after the norm
            e = []
            for k in range(4):
                t2g = [v * ti for v, ti in zip(tg[k], T[k])] if T[k] is not None else tg[k]
                e.append([v * (rho / n) for v in t2g])
            Pp = add(P, e)
            _, _, gp = forward_backward(Pp, X, y, idx)
            P = sub(Pp, e)  # subtract-restore
            base.step(P, gp)

        elif optimizer == "FriendlySAM":
            sigma, lmbda = hp["sigma"], hp["lmbda"]
            adaptive = hp.get("adaptive", False)
            _, loss, g = forward_backward(P, X, y, idx)
            if fsam_m is None:
                fsam_m = clone(g)
                d = g
            else:
                d = [[gi - sigma * mi for gi, mi in zip(g[k], fsam_m[k])] for k in range(4)]
                fsam_m = [[lmbda * mi + (1.0 - lmbda) * gi for mi, gi in zip(fsam_m[k], g[k])]
                          for k in range(4)]
            e = sam_perturbation(P, d, hp["rho"], hp.get("eps_norm", 1e-12), adaptive)
            old = clone(P)
            _, _, gp = forward_backward(add(P, e), X, y, idx)
            P = old  # copy-restore
            base.step(P, gp)

        elif optimizer == "GSAM":
            alpha = hp["gsam_alpha"]
            peps = hp.get("perturb_eps", 1e-12)
            sched = hp.get("rho_schedule", "constant")
            if sched == "constant":
                rho_t = hp["rho"]
            elif sched == "proportional":
                lr = hp["lr"]  # constant LR in these cases
                rmax, rmin = hp["rho_max"], hp["rho_min"]
                lmax, lmin = hp["lr_max"], hp["lr_min"]
                if lmax > lmin:
                    rho_t = rmin + (rmax - rmin) * (lr - lmin) / (lmax - lmin)
                else:
                    rho_t = rmax
            else:
                raise ValueError("unknown rho_schedule %r" % sched)
            extra["rho_t"] = rho_t
            adaptive = hp.get("adaptive", False)
            _, loss, g = forward_backward(P, X, y, idx)
            if adaptive:
                n = global_norm([[abs(w) * gi for w, gi in zip(P[k], g[k])] for k in range(4)])
            else:
                n = global_norm(g)
            scale = rho_t / (n + peps)
            e = []
            for k in range(4):
                ek = [gi * scale for gi in g[k]]
                if adaptive:
                    ek = [v * (w * w) for v, w in zip(ek, P[k])]
                e.append(ek)
            Pp = add(P, e)
            _, _, gp = forward_backward(Pp, X, y, idx)
            ip = sum(a * b for k in range(4) for a, b in zip(g[k], gp[k]))
            new_n = global_norm(gp)
            old_n = global_norm(g)
            cosine = ip / (new_n * old_n + peps)
            final = []
            for k in range(4):
                vert = [g[k][i] - cosine * old_n * gp[k][i] / (new_n + peps) for i in range(len(g[k]))]
                final.append([gp[k][i] + (-alpha) * vert[i] for i in range(len(g[k]))])
            P = sub(Pp, e)  # unperturb by subtraction
            base.step(P, final)

        elif optimizer == "WSAM":
            gamma = hp["gamma"]
            alpha = hp.get("alpha")
            if alpha is None:
                alpha = gamma / (1.0 - gamma)
            max_norm = hp.get("max_norm")
            decouple = hp.get("decouple", True)
            adaptive = hp.get("adaptive", False)
            _, loss, g = forward_backward(P, X, y, idx)
            e = sam_perturbation(P, g, hp["rho"], hp.get("sam_eps", 1e-12), adaptive)  # unclipped g
            Pp = add(P, e)
            if max_norm is not None:
                g = clip_grad_norm(g, max_norm, run.clip_log_g)
            _, _, gp = forward_backward(Pp, X, y, idx)
            P = sub(Pp, e)
            if max_norm is not None:
                gp = clip_grad_norm(gp, max_norm, run.clip_log_gp)
            if not decouple:
                comb = [[gpi * alpha + gi * (1.0 - alpha) for gpi, gi in zip(gp[k], g[k])]
                        for k in range(4)]
                base.step(P, comb)
            else:
                sharp = [[gpi - gi for gpi, gi in zip(gp[k], g[k])] for k in range(4)]
                base.step(P, g)
                f = -hp["lr"] * alpha
                P = [[w + f * s for w, s in zip(P[k], sharp[k])] for k in range(4)]

        elif optimizer == "ESAM":
            rho, beta, gamma = hp["rho"], hp["beta"], hp["gamma"]
            eps = hp.get("eps_norm", 1e-7)
            adaptive = hp.get("adaptive", False)
            if esam_recorded_masks is not None:
                esam_mask = list(esam_recorded_masks[step])
            extra["first_pass_requires_grad"] = list(esam_mask)
            l_before, loss, g = forward_backward(P, X, y, idx)
            g = [g[k] if esam_mask[k] else [0.0] * len(g[k]) for k in range(4)]
            e = sam_perturbation(P, g, rho, eps, adaptive, extra_div=beta, active=esam_mask)
            Pp = add(P, e)
            l_after, _, _ = forward_backward(Pp, X, y, idx, need_grad=False)
            sharp = [a - b for a, b in zip(l_after, l_before)]
            if gamma >= 0.99:
                pos = list(range(BATCH))
            else:
                kk = int(BATCH * gamma)
                cutoff = sorted(sharp, reverse=True)[kk - 1]
                pos = [i for i in range(BATCH) if sharp[i] > cutoff]
                # margin between the last kept and the first dropped value (tie guard)
                srt = sorted(sharp, reverse=True)
                extra_margin = srt[len(pos) - 1] - srt[len(pos)] if pos else 0.0
                run.min_sds_margin = min(getattr(run, "min_sds_margin", float("inf")), extra_margin)
            if not pos:
                raise RuntimeError("ESAM step %d: empty SDS selection (all-frozen mask?)" % step)
            sel = [idx[i] for i in pos]
            _, l2, gp = forward_backward(Pp, X, y, sel)
            P = sub(Pp, e)
            # SWP draw for the next step, one draw per tensor in parameter order
            if esam_rng is not None:
                drawn = [not (esam_rng.random() > beta) for _ in range(4)]
            elif esam_recorded_masks is not None and step + 1 < len(esam_recorded_masks):
                drawn = list(esam_recorded_masks[step + 1])
            else:
                drawn = None
            base.step(P, gp)
            extra["swp_mask_drawn_for_next"] = drawn
            extra["instance_sharpness"] = sharp
            extra["selected_batch_positions"] = pos
            extra["selected_sample_indices"] = sel
            extra["second_pass_loss"] = l2
            if drawn is not None:
                esam_mask = drawn
        elif optimizer == "LookSAM":
            # crates/flatmin/ALGORITHMS.md §13.4: a SAM step every k steps stores g_v; the others run one
            # pass and hand the base optimizer g + alpha (||g||/(||g_v||+gv_eps)) g_v (g alone
            # before the first g_v).
            per_tensor = hp.get("per_tensor", False)
            _, loss, g = forward_backward(P, X, y, idx)
            if scheduled_sam_step(hp, step, k_key="k"):
                e = sam_perturbation(P, g, hp["rho"], hp.get("eps_norm", 1e-12), False)
                old = clone(P)
                _, _, gp = forward_backward(add(P, e), X, y, idx)
                P = old  # copy-restore, as SAM
                look_v = look_gv(g, gp, per_tensor)
                base.step(P, gp)
                extra["second_pass"] = True
            else:
                d = g if look_v is None else look_reuse(g, look_v, hp["alpha"], hp.get("gv_eps", 1e-8),
                                                        per_tensor)
                base.step(P, d)
                extra["second_pass"] = False

        elif optimizer == "AE-SAM":
            # crates/flatmin/ALGORITHMS.md §13.3: q = ||g||^2; mu = delta mu + (1-delta) q;
            # var = delta var + (1-delta) (q - mu)^2 (new mu); SAM iff q >= mu + c_t sqrt(var),
            # c_t = c_start + (c_end - c_start) min(t/T, 1). Statistics updated on every step.
            delta = hp["delta"]
            _, loss, g = forward_backward(P, X, y, idx)
            q = dot(g, g)
            ae_mean = delta * ae_mean + (1.0 - delta) * q
            ae_var = delta * ae_var + (1.0 - delta) * (q - ae_mean) ** 2
            c_t = hp["c_start"] + (hp["c_end"] - hp["c_start"]) * min(step / hp["total_steps"], 1.0)
            threshold = ae_mean + c_t * math.sqrt(ae_var)
            sam_step = q >= threshold
            run.ae_margins.append(abs(q - threshold) / q)
            if sam_step:
                e = sam_perturbation(P, g, hp["rho"], hp.get("eps_norm", 1e-12), False)
                old = clone(P)
                _, _, gp = forward_backward(add(P, e), X, y, idx)
                P = old
                base.step(P, gp)
            else:
                base.step(P, g)
            extra.update({"second_pass": sam_step, "grad_norm_sq": q, "running_mean": ae_mean,
                          "running_var": ae_var, "threshold_c": c_t})

        elif optimizer == "BSAM":
            # crates/flatmin/ALGORITHMS.md §13.5 (the authors' optim.py): N = data_size,
            # delta = prior_precision/N; noisy pass at w + n/sqrt(N s); e = rho g/s; g_p at w + e;
            # m = b1 m + (1-b1)(g_p + delta w); w -= lr m/s (old s);
            # s = b2 s + (1-b2)(sqrt(s)|g| + damping + delta). m starts at 0, s at s_init.
            N = hp["data_size"]
            wd = hp["prior_precision"] / N
            b1, b2 = hp["beta1"], hp["beta2"]
            if bsam_s is None:
                bsam_s = [[hp["s_init"]] * len(t) for t in P]
                bsam_m = [[0.0] * len(t) for t in P]
            noise = bsam_noise[step]
            noisy = [[w + n / math.sqrt(N * s) for w, n, s in zip(P[k], noise[k], bsam_s[k])]
                     for k in range(4)]
            _, loss, g = forward_backward(noisy, X, y, idx)
            e = [[hp["rho"] * gi / s for gi, s in zip(g[k], bsam_s[k])] for k in range(4)]
            _, _, gp = forward_backward(add(P, e), X, y, idx)
            lr = hp["lr"]
            for k in range(4):
                for i in range(len(P[k])):
                    w, s = P[k][i], bsam_s[k][i]
                    m = b1 * bsam_m[k][i] + (1.0 - b1) * (gp[k][i] + wd * w)
                    bsam_m[k][i] = m
                    P[k][i] = w - lr * m / s
                    bsam_s[k][i] = b2 * s + (1.0 - b2) * (math.sqrt(s) * abs(g[k][i]) + hp["damping"] + wd)
            extra["noise"] = params_to_dict(noise)
            extra["second_pass"] = True

        else:
            raise ValueError("unknown optimizer %r" % optimizer)

        _, full_after, _ = forward_backward(P, X, y, list(range(len(X))), need_grad=False)
        steps.append({
            "step": step,
            "batch_indices": idx,
            "loss": loss,
            "full_loss_after": full_after,
            "params": params_to_dict(P),
            "extra": extra,
        })
    return steps


# --------------------------------------------------------------------------------------
# validation against the shipped cases


def max_param_diff(a_steps, b_steps):
    m = 0.0
    for a, b in zip(a_steps, b_steps):
        for n in PARAM_NAMES:
            fa, fb = flatten(a["params"][n]), flatten(b["params"][n])
            for x, z in zip(fa, fb):
                m = max(m, abs(x - z))
    return m


def compare_case(case, mine):
    ref = case["steps"]
    out = {
        "params": max_param_diff(ref, mine),
        "loss": max(abs(a["loss"] - b["loss"]) for a, b in zip(ref, mine)),
        "full_loss_after": max(abs(a["full_loss_after"] - b["full_loss_after"]) for a, b in zip(ref, mine)),
        "extra": 0.0,
        "extra_ok": True,
    }
    for a, b in zip(ref, mine):
        ea, eb = a.get("extra", {}), b["extra"]
        for k, va in ea.items():
            if k not in eb:
                continue  # recorded by the reference only (e.g. bSAM's perturbed_loss)
            vb = eb.get(k)
            if isinstance(va, float):
                out["extra"] = max(out["extra"], abs(va - vb))
            elif isinstance(va, list) and va and isinstance(va[0], float):
                out["extra"] = max(out["extra"], max(abs(p - q) for p, q in zip(va, vb)))
            elif va != vb:
                out["extra_ok"] = False
    return out


def load_problem(case):
    init = params_from_dict(case["init_params"])
    X = [[float(v) for v in row] for row in case["data"]["X"]]
    y = [int(v) for v in case["data"]["y"]]
    return init, X, y


def validate(shipped_dir, quiet=False):
    rows = []
    for f in sorted(glob.glob(os.path.join(shipped_dir, "*.json"))):
        case = json.load(open(f))
        init, X, y = load_problem(case)
        masks = None
        rng = None
        if case["optimizer"] == "ESAM":
            masks = [s["extra"]["first_pass_requires_grad"] for s in case["steps"]]
            # the recorded masks drive the steps; the seeded RNG only fills swp_mask_drawn_for_next,
            # which compare_case then checks against the recording
            rng = random.Random(case["hyperparams"]["python_random_seed"])
        noise = None
        if case["optimizer"] == "BSAM":
            noise = [[flatten(s["extra"]["noise"][n]) for n in PARAM_NAMES] for s in case["steps"]]
        mine = run(case["hyperparams"], case["optimizer"], init, X, y,
                   esam_recorded_masks=masks, esam_rng=rng, bsam_noise=noise)
        c = compare_case(case, mine)
        if case["optimizer"] == "ESAM":
            c["rng_ok"] = ([s["extra"]["swp_mask_drawn_for_next"] for s in case["steps"]] ==
                           [s["extra"]["swp_mask_drawn_for_next"] for s in mine])
        rows.append((os.path.basename(f), case["optimizer"], c))
    if not quiet:
        print("| shipped case | optimizer | max |dparams| | max |dloss| | max |dfull_loss_after| | max |dextra| (floats) | extra lists/bools equal | pass (<= 1e-12) |")
        print("|---|---|---|---|---|---|---|---|")
        for name, opt, c in rows:
            eq = "yes" if c["extra_ok"] else "NO"
            if "rng_ok" in c:
                eq += "; seeded RNG reproduces recorded masks: " + ("yes" if c["rng_ok"] else "NO")
            ok = c["params"] <= VALIDATION_BAR and c["extra_ok"]
            print("| %s | %s | %.3e | %.3e | %.3e | %.3e | %s | %s |" % (
                name, opt, c["params"], c["loss"], c["full_loss_after"], c["extra"], eq,
                "yes" if ok else "NO"))
    return all(c["params"] <= VALIDATION_BAR and c["extra_ok"] for _, _, c in rows), rows


# --------------------------------------------------------------------------------------
# generation of new cases

SGD_BASE = {"base": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005,
            "dampening": 0.0, "nesterov": False}


def adam_base(kind, lr=0.01, wd=0.0):
    return {"base": kind, "lr": lr, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": wd,
            "amsgrad": False}


def sgd_base(**kw):
    b = dict(SGD_BASE)
    b.update(kw)
    return b


def H(alg, base):
    h = dict(alg)
    h.update(base)
    return h


ORACLE_NOTE = ("Generated by the flatmin spec oracle (scripts/conformance_oracle.py): an independent "
               "pure-Python float64 implementation written from the case format "
               "(crates/flatmin-cli/tests/fixtures/FORMAT.md) and the algorithm specification "
               "(crates/flatmin/ALGORITHMS.md), with hand-written backprop. NOT a recording of the official PyTorch "
               "code. The oracle reproduces all 8 shipped official cases to <= 1e-12. ")


def case_list():
    C = []

    def add_case(fname, optimizer, hp, note):
        C.append((fname, optimizer, hp, note))

    add_case("sam_adaptive_rho0.5.json", "SAM(adaptive)",
             H({"rho": 0.5, "adaptive": True, "eps_norm": 1e-12}, sgd_base()),
             "davda54 adaptive SAM: e = w^2*g*rho/(|| |w|*g || + 1e-12) on every tensor (biases too); "
             "copy-restore; base SGD(momentum 0.9, wd 5e-4) with the grad at w+e.")
    add_case("sam_adamw_wd0.01.json", "SAM",
             H({"rho": 0.05, "adaptive": False, "eps_norm": 1e-12},
               adam_base("torch.optim.AdamW", lr=0.01, wd=0.01)),
             "SAM with base torch.optim.AdamW: w *= 1 - lr*wd first, then bias-corrected Adam on g_p "
             "(no wd in the gradient), eps added to sqrt(v_hat).")
    add_case("sam_sgd_nesterov.json", "SAM",
             H({"rho": 0.05, "adaptive": False, "eps_norm": 1e-12}, sgd_base(nesterov=True)),
             "SAM with torch SGD nesterov=true, momentum 0.9: d = g_p + wd*w; buf = d (step 0) else "
             "0.9*buf + d; w -= lr*(d + 0.9*buf).")
    add_case("sgd_dampening0.1.json", "SGD", sgd_base(dampening=0.1),
             "torch SGD with dampening 0.1: d = g + wd*w; buf = d at step 0 (no dampening on the first "
             "step, PyTorch semantics), later buf = 0.9*buf + 0.9*d; w -= lr*buf.")
    add_case("samsung_sam_eps1e-16.json", "SamsungLabs.SAM",
             H({"rho": 0.05, "eta": None, "eps_norm": 1e-16}, sgd_base()),
             "SamsungLabs/ASAM SAM class: n = ||g|| + 1e-16 (eps after the norm); e = g*rho/n; "
             "w += e; g_p at w+e; restore by w -= e (subtraction); base SGD on g_p.")
    add_case("samsung_asam_eta0_rho1.json", "SamsungLabs.ASAM",
             H({"rho": 1.0, "eta": 0.0, "eps_norm": 1e-16}, sgd_base()),
             "SamsungLabs/ASAM with eta = 0: T = |w| on tensors named *weight*, T = 1 on biases; "
             "n = ||T g|| + 1e-16; e = rho*T^2 g/n; restore by subtraction; base SGD on g_p.")
    add_case("fsam_s0.5_l0.6.json", "FriendlySAM",
             H({"rho": 0.05, "sigma": 0.5, "lmbda": 0.6, "adaptive": False, "eps_norm": 1e-12},
               sgd_base()),
             "F-SAM sigma 0.5, lmbda 0.6: step 0 is SAM and sets m = g; later d = g - sigma*m_old, "
             "then m = lmbda*m_old + (1-lmbda)*g; e = rho*d/(||d||+1e-12); copy-restore; base SGD on g_p.")
    add_case("fsam_adaptive_rho0.5.json", "FriendlySAM",
             H({"rho": 0.5, "sigma": 1.0, "lmbda": 0.9, "adaptive": True, "eps_norm": 1e-12},
               sgd_base()),
             "F-SAM adaptive: direction d as in F-SAM (step 0: d = g), then e = w^2*d*rho/(|| |w|*d || "
             "+ 1e-12) on every tensor; copy-restore; base SGD on g_p.")
    add_case("gsam_adaptive_a0.2.json", "GSAM",
             H({"rho": 0.5, "gsam_alpha": 0.2, "adaptive": True, "perturb_eps": 1e-12,
                "rho_schedule": "constant"}, sgd_base()),
             "GSAM adaptive (PyTorch-code form): n = || |w|*g ||; e = g*rho_t/(n+1e-12) * w^2; g_p at "
             "w+e; cos = <g,g_p>/(||g_p||*||g||+1e-12) with PLAIN norms; vertical = g - cos*||g||*g_p/"
             "(||g_p||+1e-12); final = g_p - alpha*vertical; w -= e; base SGD on final.")
    add_case("gsam_proportional.json", "GSAM",
             H({"rho": 0.1, "gsam_alpha": 0.4, "adaptive": False, "perturb_eps": 1e-12,
                "rho_schedule": "proportional", "rho_max": 0.1, "rho_min": 0.02, "lr_max": 0.2,
                "lr_min": 0.0}, sgd_base()),
             "GSAM with a proportional rho schedule: rho_t = rho_min + (rho_max-rho_min)*(lr-lr_min)/"
             "(lr_max-lr_min) with the (constant) base lr 0.1 -> rho_t = 0.06 every step (recorded in "
             "extra.rho_t). The 'rho' key (= rho_max) is NOT used when rho_schedule is proportional.")
    add_case("wsam_coupled_g0.9.json", "WSAM",
             H({"rho": 0.05, "gamma": 0.9, "alpha": 0.9 / (1.0 - 0.9), "sam_eps": 1e-12,
                "adaptive": False, "decouple": False, "max_norm": None}, sgd_base()),
             "Coupled WSAM gamma 0.9 (alpha = gamma/(1-gamma)): e = rho*g/(||g||+1e-12); g_p at w+e; "
             "w -= e; base SGD (wd, momentum) on alpha*g_p + (1-alpha)*g.")
    add_case("wsam_decoupled_g0.9_mn1.0.json", "WSAM",
             H({"rho": 0.05, "gamma": 0.9, "alpha": 0.9 / (1.0 - 0.9), "sam_eps": 1e-12,
                "adaptive": False, "decouple": True, "max_norm": 1.0}, sgd_base()),
             "Decoupled WSAM with max_norm 1.0: e from the UNCLIPPED g; then g is clipped by global norm "
             "(clip_grad_norm_: coef = 1.0/(||g||+1e-6), times min(coef,1)); g_p clipped the same way; "
             "w -= e; s = g_p - g; base SGD on g; then w -= lr*alpha*s.")
    add_case("wsam_decoupled_g0.9_mn0.5.json", "WSAM",
             H({"rho": 0.05, "gamma": 0.9, "alpha": 0.9 / (1.0 - 0.9), "sam_eps": 1e-12,
                "adaptive": False, "decouple": True, "max_norm": 0.5}, sgd_base()),
             "Decoupled WSAM with max_norm 0.5 (chosen so that clipping is active on some steps and not "
             "on others): e from the UNCLIPPED g; then g clipped by global norm (clip_grad_norm_: "
             "coef = 0.5/(||g||+1e-6), times min(coef,1)); g_p clipped the same way; w -= e; "
             "s = g_p - g; base SGD on g; then w -= lr*alpha*s.")
    add_case("wsam_coupled_g0.9_mn0.5.json", "WSAM",
             H({"rho": 0.05, "gamma": 0.9, "alpha": 0.9 / (1.0 - 0.9), "sam_eps": 1e-12,
                "adaptive": False, "decouple": False, "max_norm": 0.5}, sgd_base()),
             "Coupled WSAM with max_norm 0.5: e from the UNCLIPPED g; g and g_p clipped separately by "
             "global norm (clip_grad_norm_ semantics); w -= e; base SGD on alpha*g_p + (1-alpha)*g.")
    add_case("wsam_decoupled_adam_g0.9.json", "WSAM",
             H({"rho": 0.05, "gamma": 0.9, "alpha": 0.9 / (1.0 - 0.9), "sam_eps": 1e-12,
                "adaptive": False, "decouple": True, "max_norm": None},
               adam_base("torch.optim.Adam", lr=0.01, wd=0.001)),
             "Decoupled WSAM with base torch.optim.Adam (L2 wd 0.001 inside Adam's gradient): Adam "
             "step on g, then w -= lr*alpha*(g_p - g) with lr = 0.01 (not preconditioned).")
    add_case("esam_b0.5_g0.7_adaptive.json", "ESAM",
             H({"rho": 0.5, "beta": 0.5, "gamma": 0.7, "adaptive": True, "eps_norm": 1e-07,
                "python_random_seed": 7}, sgd_base()),
             "ESAM adaptive, beta 0.5, gamma 0.7: SWP masks from Python random.Random(7), one "
             "random() per tensor in parameter order at the end of each step, tensor frozen if u > "
             "beta (first step all kept); recorded in extra. Frozen tensors: no gradient in pass 1, no "
             "perturbation. e = w^2*g*(rho/(|| |w|*g_kept ||+1e-7)/beta) on kept tensors. SDS: "
             "k = int(16*0.7) = 11, keep positions with sharpness strictly above the 11th largest. "
             "Pass 2 = mean loss on kept samples at w+e; w -= e; base SGD on all tensors.")
    add_case("esam_b1_g1.json", "ESAM",
             H({"rho": 0.05, "beta": 1.0, "gamma": 1.0, "adaptive": False, "eps_norm": 1e-07,
                "python_random_seed": 1}, sgd_base()),
             "ESAM beta 1.0, gamma 1.0: no tensor is ever frozen (random() > 1 never holds), all 16 "
             "samples are kept; so this is SAM with eps_norm 1e-7 up to rounding (subtract-restore vs "
             "copy-restore).")
    # ---- the members that save passes, and bSAM (crates/flatmin/ALGORITHMS.md §13) ----
    look_note = ("LookSAM (crates/flatmin/ALGORITHMS.md §13.4): steps 0, k, 2k, ... are SAM steps (e = rho g/(||g||"
                 "+eps_norm), g_p at w+e, copy-restore, base SGD on g_p) that store g_v = g_p - (g.g_p/"
                 "||g||^2) g; the other steps run ONE pass and hand base SGD g + alpha (||g||/(||g_v||+"
                 "gv_eps)) g_v. extra.second_pass says which steps ran the second pass. ")
    add_case("looksam_k3_a0.7.json", "LookSAM",
             H({"rho": 0.05, "k": 3, "alpha": 0.7, "eps_norm": 1e-12, "gv_eps": 1e-8,
                "per_tensor": False}, sgd_base()),
             look_note + "Global vectors (the paper): one g.g_p, ||g|| and ||g_v|| over all tensors.")
    add_case("looksam_k3_a0.7_per_tensor.json", "LookSAM",
             H({"rho": 0.05, "k": 3, "alpha": 0.7, "eps_norm": 1e-12, "gv_eps": 1e-8,
                "per_tensor": True}, sgd_base()),
             look_note + "Per tensor (layer-wise, as pytorch_optimizer): g_v, ||g|| and ||g_v|| tensor by "
             "tensor; the perturbation's norm stays global.")
    add_case("looksam_k1.json", "LookSAM",
             H({"rho": 0.05, "k": 1, "alpha": 0.7, "eps_norm": 1e-12, "gv_eps": 1e-8,
                "per_tensor": False}, sgd_base()),
             look_note + "k = 1: every step is a SAM step, so this is SAM (rho 0.05, eps 1e-12).")
    add_case("sam_every3.json", "SAM",
             H({"rho": 0.05, "adaptive": False, "eps_norm": 1e-12, "sam_every": 3}, sgd_base()),
             "SAM every 3 steps (crates/flatmin/ALGORITHMS.md §13.1): steps 0, 3, 6, 9 are SAM steps; the others "
             "are base SGD steps on g (one pass). extra.second_pass per step.")
    add_case("rst_p0.5_seed5.json", "SAM",
             H({"rho": 0.05, "adaptive": False, "eps_norm": 1e-12, "sam_probability": 0.5,
                "sam_seed": 5}, sgd_base()),
             "Randomized sharpness training (crates/flatmin/ALGORITHMS.md §13.2), p = 0.5: step t is a SAM step iff "
             "u_t < 0.5, u_t the t-th SplitMix64 output for seed 5 (top 53 bits / 2^53; implemented "
             "in the oracle); the others are base SGD steps on g. extra.second_pass per step.")
    add_case("ae_sam.json", "AE-SAM",
             H({"rho": 0.05, "delta": 0.8, "c_start": -0.5, "c_end": 1.0, "total_steps": 10,
                "eps_norm": 1e-12}, sgd_base()),
             "AE-SAM (crates/flatmin/ALGORITHMS.md §13.3): q = ||g||^2; mu = 0.8 mu + 0.2 q; var = 0.8 var + "
             "0.2 (q - mu)^2 with the new mu (from 0, updated on every step); SAM step iff q >= mu + "
             "c_t sqrt(var), c_t = -0.5 + 1.5 t/10; otherwise a base SGD step on g (here: SAM at steps "
             "0-4 and 7). extra records q, mu, var, c_t and "
             "second_pass.")
    add_case("bsam.json", "BSAM",
             {"lr": 0.1, "rho": 0.05, "beta1": 0.9, "beta2": 0.999, "prior_precision": 1.0,
              "data_size": 64, "damping": 0.1, "s_init": 1.0},
             "bSAM as the authors' optim.py (crates/flatmin/ALGORITHMS.md §13.5), its own base optimizer: "
             "N = 64, delta = 1/64; first pass at w + n/sqrt(N s) with n the standard normal draws "
             "recorded in extra.noise (drawn by Python's random.Random(%d).gauss, tensor by tensor in "
             "parameter order, row-major; a replay injects them); e = rho g/s; g_p at w + e; "
             "m = 0.9 m + 0.1 (g_p + delta w) (m from 0); w -= lr m/s with the old s; "
             "s = 0.999 s + 0.001 (sqrt(s)|g| + damping + delta) (s from s_init). `loss` is the first "
             "pass's, at the noisy weights." % BSAM_NOISE_SEED)
    return C


BSAM_NOISE_SEED = 11


def bsam_noise_draws(seed, steps=N_STEPS):
    rng = random.Random(seed)
    return [[[rng.gauss(0.0, 1.0) for _ in range(len(flatten_shape(shape)))] for shape in PARAM_SHAPES]
            for _ in range(steps)]


def flatten_shape(shape):
    n = 1
    for d in shape:
        n *= d
    return range(n)


def generate(shipped_dir, out_dir):
    ok, rows = validate(shipped_dir)
    if not ok:
        print("validation failed; not generating", file=sys.stderr)
        sys.exit(1)
    template = json.load(open(os.path.join(shipped_dir, "sam.json")))
    init, X, y = load_problem(template)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for fname, optimizer, hp, note in case_list():
        rng = None
        if optimizer == "ESAM":
            rng = random.Random(hp["python_random_seed"])
            run.min_sds_margin = float("inf")
        noise = bsam_noise_draws(BSAM_NOISE_SEED) if optimizer == "BSAM" else None
        steps = run(hp, optimizer, init, X, y, esam_rng=rng, bsam_noise=noise)
        if optimizer == "AE-SAM":
            print("%s: second pass at steps %s; smallest |q - threshold|/q = %.3e" % (
                fname, [s["step"] for s in steps if s["extra"]["second_pass"]], min(run.ae_margins)))
            if min(run.ae_margins) < 1e-9:
                raise RuntimeError("near-tie in AE-SAM's decision of %s" % fname)
        if "second_pass" in steps[0]["extra"] and optimizer != "AE-SAM":
            print("%s: second pass at steps %s" % (fname, [s["step"] for s in steps
                                                            if s["extra"]["second_pass"]]))
        if optimizer == "WSAM" and hp.get("max_norm") is not None:
            cg = [i for i, a in enumerate(run.clip_log_g) if a]
            cgp = [i for i, a in enumerate(run.clip_log_gp) if a]
            note = note + (" On this trajectory clip_grad_norm_ actually scales g at steps %s and g_p at "
                           "steps %s (elsewhere coef >= 1 and the gradient is multiplied by 1.0)."
                           % (cg, cgp))
            print("%s: clipping active on g at %s, on g_p at %s" % (fname, cg, cgp))
        if optimizer == "ESAM" and hp["gamma"] < 0.99:
            print("%s: smallest gap between last kept and first dropped sharpness = %.3e"
                  % (fname, run.min_sds_margin))
            if run.min_sds_margin < 1e-9:
                raise RuntimeError("near-tie in the SDS selection of %s" % fname)
        case = {
            "optimizer": optimizer,
            "reference": {"repo": "flatmin spec oracle", "file": "scripts/conformance_oracle.py"},
            "hyperparams": hp,
            "notes": ORACLE_NOTE + note,
            "torch_version": "n/a (pure-Python float64 oracle, no torch)",
            "dtype": "float64",
            "param_names": list(PARAM_NAMES),
            "param_shapes": copy.deepcopy(PARAM_SHAPES),
            "init_params": template["init_params"],
            "data": template["data"],
            "batch_size": BATCH,
            "loss": "cross_entropy(mean)",
            "steps": steps,
        }
        with open(os.path.join(out_dir, fname), "w") as fh:
            json.dump(case, fh, indent=1)
            fh.write("\n")
        written.append((fname, optimizer, hp, steps))
    return rows, written


def cross_checks(written, shipped_dir):
    """Equivalences the generated cases must satisfy (crates/flatmin/ALGORITHMS.md §12.2, E8)."""
    by = {f: s for f, _, _, s in written}
    template = json.load(open(os.path.join(shipped_dir, "sam.json")))
    init, X, y = load_problem(template)
    out = []
    if "esam_b1_g1.json" in by:
        sam = run(H({"rho": 0.05, "adaptive": False, "eps_norm": 1e-07}, sgd_base()), "SAM", init, X, y)
        out.append(("ESAM beta=1 gamma=1 vs SAM eps_norm=1e-7", max_param_diff(by["esam_b1_g1.json"], sam)))
    sam = run(H({"rho": 0.05, "adaptive": False, "eps_norm": 1e-12}, sgd_base()), "SAM", init, X, y)
    if "looksam_k1.json" in by:
        out.append(("LookSAM k=1 vs SAM", max_param_diff(by["looksam_k1.json"], sam)))
    if "sam_every3.json" in by:
        a0 = run(H({"rho": 0.05, "k": 3, "alpha": 0.0, "eps_norm": 1e-12, "per_tensor": False},
                   sgd_base()), "LookSAM", init, X, y)
        out.append(("LookSAM alpha=0 k=3 vs SAM every 3", max_param_diff(by["sam_every3.json"], a0)))
        out.append(("SAM every 3 vs SAM (how far the schedule moves it)",
                    max_param_diff(by["sam_every3.json"], sam)))
    for f in ("looksam_k3_a0.7.json", "looksam_k3_a0.7_per_tensor.json", "rst_p0.5_seed5.json",
              "ae_sam.json"):
        if f in by:
            out.append(("%s vs SAM" % f, max_param_diff(by[f], sam)))
    if "looksam_k3_a0.7.json" in by and "looksam_k3_a0.7_per_tensor.json" in by:
        out.append(("LookSAM global vs per tensor", max_param_diff(by["looksam_k3_a0.7.json"],
                                                                  by["looksam_k3_a0.7_per_tensor.json"])))
    if "sam_every3.json" in by and "looksam_k3_a0.7.json" in by:
        out.append(("LookSAM k=3 vs SAM every 3", max_param_diff(by["looksam_k3_a0.7.json"],
                                                                by["sam_every3.json"])))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["validate", "generate"])
    ap.add_argument("--shipped", default=os.path.join(repo, "crates/flatmin-cli/tests/fixtures"))
    ap.add_argument("--out", default=os.path.join(repo, "crates/flatmin-cli/tests/fixtures/oracle"))
    a = ap.parse_args()
    if a.command == "validate":
        ok, _ = validate(a.shipped)
        sys.exit(0 if ok else 1)
    _, written = generate(a.shipped, a.out)
    print()
    print("| generated file | optimizer | steps | final full_loss_after |")
    print("|---|---|---|---|")
    for f, opt, hp, steps in written:
        print("| %s | %s | %d | %.12f |" % (f, opt, len(steps), steps[-1]["full_loss_after"]))
    for name, d in cross_checks(written, a.shipped):
        print("cross-check: %s: max |dparams| = %.3e" % (name, d))


if __name__ == "__main__":
    main()
