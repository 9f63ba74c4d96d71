//! The radius phase's shared parts: SAM's Euclidean ball, used when no geometry member is
//! configured, and the application of a per-element mask (ESAM's SWP) to whatever ball made `e`.
//! The other balls (ASAM's two forms, Fisher-SAM, Unified SAM, bSAM's) are members.

use crate::member::{Made, Radius};
use crate::vector::ParamVector;

/// SAM: `e = ρ·d / (‖d‖ + eps) / β`; its norm follows from the scalars.
pub(crate) fn euclidean(radius: &Radius, d: &ParamVector) -> Made {
    let n = radius.d_norm.unwrap_or_else(|| d.norm());
    let scale = radius.rho / (n + radius.eps) / radius.beta;
    Made {
        e: d.scaled(scale),
        e_norm: Some(scale.abs() * n),
    }
}

/// `e` kept where the per-element mask is 1; its norm measured (`None` mask: `e` as made).
pub(crate) fn masked(made: Made, mask: Option<&ParamVector>) -> (ParamVector, f64) {
    let Made { e, e_norm } = made;
    match mask {
        Some(mask) => {
            let e = e.zip_map(mask, |e, m| match m {
                Some(m) => e.clone() * m.clone(),
                None => e.clone(),
            });
            let n = e.norm();
            (e, n)
        }
        None => {
            let n = e_norm.unwrap_or_else(|| e.norm());
            (e, n)
        }
    }
}
