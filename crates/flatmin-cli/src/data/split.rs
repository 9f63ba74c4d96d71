//! Seeded, stratified splits: the test set of a folder or CSV that comes without one, and the
//! validation set `flatmin compare` carves from the training data for its ρ search.

use flatmin::Rng;

use super::{Dataset, Features, Split};

/// The samples at `indices`, in that order, as a dataset with the same classes and shape
/// (pixels or features alike).
pub fn subset(set: &Dataset, indices: &[usize]) -> Dataset {
    let per = set.image_len();
    let pick = |values: &[u8]| -> Vec<u8> {
        indices
            .iter()
            .flat_map(|&i| values[i * per..(i + 1) * per].iter().copied())
            .collect()
    };
    let features = set.features.as_ref().map(|f| {
        Features(
            indices
                .iter()
                .flat_map(|&i| f.0[i * per..(i + 1) * per].iter().copied())
                .collect(),
        )
    });
    Dataset {
        images: if set.features.is_some() {
            Vec::new()
        } else {
            pick(&set.images)
        },
        labels: indices.iter().map(|&i| set.labels[i]).collect(),
        classes: set.classes,
        channels: set.channels,
        height: set.height,
        width: set.width,
        class_names: set.class_names.clone(),
        features,
    }
}

/// How many of a class's `n` samples a split with `fraction` held out takes: `round(n·fraction)`,
/// at least one when the class has two or more samples and `fraction > 0`, and never all of them
/// (every class keeps a sample to learn from).
pub fn held_out_count(n: usize, fraction: f64) -> usize {
    let k = (n as f64 * fraction).round() as usize;
    k.max(usize::from(n >= 2 && fraction > 0.0)).min(n.saturating_sub(1))
}

/// Indices of the kept and the held-out samples (each list in increasing order): in every class,
/// [`held_out_count`] samples, drawn by a shuffle seeded with `seed`, are held out. The same
/// labels, fraction and seed always give the same split.
pub fn stratified_indices(labels: &[u8], classes: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.max(1)];
    for (i, &l) in labels.iter().enumerate() {
        if let Some(members) = by_class.get_mut(usize::from(l)) {
            members.push(i);
        }
    }
    let mut rng = Rng::seeded(seed);
    let mut held = vec![false; labels.len()];
    for members in &mut by_class {
        for i in (1..members.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            members.swap(i, j);
        }
        for &i in &members[..held_out_count(members.len(), fraction)] {
            held[i] = true;
        }
    }
    (0..labels.len()).partition(|&i| !held[i])
}

/// `set` split into a kept part (`train`) and a held-out part (`test`), stratified by class and
/// seeded (see [`stratified_indices`]).
pub fn stratified(set: &Dataset, fraction: f64, seed: u64) -> Split {
    let (kept, held) = stratified_indices(&set.labels, set.classes, fraction, seed);
    Split {
        train: subset(set, &kept),
        test: subset(set, &held),
    }
}

/// `first` followed by `second` (same classes and shape): the whole data again, for drawing a
/// new split from it.
pub fn join(first: &Dataset, second: &Dataset) -> Dataset {
    let mut all = first.clone();
    all.images.extend_from_slice(&second.images);
    all.labels.extend_from_slice(&second.labels);
    if let (Some(a), Some(b)) = (all.features.as_mut(), second.features.as_ref()) {
        a.0.extend_from_slice(&b.0);
    }
    all
}

/// Classes with no sample in `set` (of its `classes`), by name.
pub fn missing_classes(set: &Dataset) -> Vec<String> {
    let mut seen = vec![false; set.classes];
    for &l in &set.labels {
        if let Some(s) = seen.get_mut(usize::from(l)) {
            *s = true;
        }
    }
    seen.iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(c, _)| set.class_names.get(c).cloned().unwrap_or_else(|| c.to_string()))
        .collect()
}
