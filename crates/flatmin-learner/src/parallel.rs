//! Data-parallel SAM: how the first-pass (ascent) gradient is shared between devices, the
//! parameters' distributed flag, and the in-process rendezvous the devices' workers meet at.
//!
//! SAM's paper and official code do **not** average the first-pass gradient across devices:
//! each device perturbs the weights with the gradient of its own shard ("m-sharpness", with `m`
//! the per-device batch), and only the update is averaged (crates/flatmin/ALGORITHMS.md §2.3).
//! In Burn's distributed data parallel (DDP) execution every backward pass on parameters marked
//! *distributed* is all-reduced, so the first pass runs on a
//! [`local_view`](flatmin::bridge::local_view) of the model whose parameters carry no such mark.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use burn::tensor::Device;

/// How the first-pass gradient is shared between the devices of a data-parallel step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AscentSync {
    /// Each device perturbs with its own gradient: m-sharpness with `m` the per-device batch.
    /// The SAM paper's and official code's choice, and the default.
    #[default]
    PerDevice,
    /// The first-pass gradient is averaged over all devices before the perturbation: SAM on
    /// the global batch (JAX reference `sync_perturbations=True`).
    Synchronized,
    /// Averaged within groups of this many consecutive devices (JAX reference
    /// `inner_group_size`); a last, smaller group takes the devices left over.
    Groups(usize),
}

impl AscentSync {
    /// The ranks (among `parties`) whose first-pass gradients participant `rank` averages.
    pub fn group(&self, rank: usize, parties: usize) -> std::ops::Range<usize> {
        match *self {
            AscentSync::PerDevice => rank..rank + 1,
            AscentSync::Synchronized => 0..parties,
            AscentSync::Groups(m) => {
                let m = m.max(1);
                let start = rank / m * m;
                start..(start + m).min(parties)
            }
        }
    }

    /// Whether the workers have to exchange their first-pass gradients.
    pub fn exchanges(&self, parties: usize) -> bool {
        match *self {
            AscentSync::PerDevice => false,
            AscentSync::Synchronized => parties > 1,
            AscentSync::Groups(m) => parties > 1 && m > 1,
        }
    }
}

/// The devices of a data-parallel run and how they share the ascent.
#[derive(Debug, Clone)]
pub struct DataParallel {
    /// The devices, in the order given to Burn's execution strategy (`MultiDevice` or DDP).
    /// A worker's rank is its device's position here; when a device is listed more than once
    /// (a CPU stand-in for several accelerators), ranks are handed out in order of arrival.
    pub devices: Vec<Device>,
    /// How the first-pass gradient is shared.
    pub ascent: AscentSync,
    /// How long a worker waits for the others at a rendezvous before it gives up (a panic,
    /// which Burn's multi-device strategy reports as a failed worker). Every device must get
    /// the same number of batches per epoch.
    pub timeout: Duration,
}

impl DataParallel {
    /// One device: no exchange, no rendezvous.
    pub fn single() -> Self {
        Self::new(Vec::new(), AscentSync::PerDevice)
    }

    /// Several devices, with the default timeout of 10 minutes.
    pub fn new(devices: Vec<Device>, ascent: AscentSync) -> Self {
        Self {
            devices,
            ascent,
            timeout: Duration::from_secs(600),
        }
    }

    /// The number of workers meeting at each step.
    pub fn parties(&self) -> usize {
        self.devices.len().max(1)
    }

    /// The rank of the worker on `device`, when its device is listed exactly once.
    pub(crate) fn rank_of(&self, device: &Device) -> Option<usize> {
        let mut found = self.devices.iter().enumerate().filter(|(_, d)| *d == device);
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }
}

impl Default for DataParallel {
    fn default() -> Self {
        Self::single()
    }
}

/// A reusable meeting point for `parties` workers: each brings a value, each leaves with all of
/// them, ordered by rank. Ranks are the workers' own when they know them, else their order of
/// arrival in the round.
pub(crate) struct Rendezvous<T> {
    parties: usize,
    timeout: Duration,
    state: Mutex<Round<T>>,
    ready: Condvar,
}

/// Every worker's value of one round, by rank.
type Met<T> = Arc<Vec<(usize, T)>>;

struct Round<T> {
    generation: u64,
    arrived: Vec<(usize, T)>,
    /// Per finished round: everyone's values, and how many workers have still to take them.
    done: HashMap<u64, (Met<T>, usize)>,
}

impl<T: Clone> Rendezvous<T> {
    pub(crate) fn new(parties: usize, timeout: Duration) -> Self {
        Self {
            parties,
            timeout,
            state: Mutex::new(Round {
                generation: 0,
                arrived: Vec::new(),
                done: HashMap::new(),
            }),
            ready: Condvar::new(),
        }
    }

    /// Waits until every party has arrived; returns this worker's rank and every value by rank.
    ///
    /// # Panics
    /// When the others do not arrive within the timeout (an uneven number of batches per device,
    /// or a worker that failed).
    pub(crate) fn meet(&self, rank: Option<usize>, value: T) -> (usize, Arc<Vec<(usize, T)>>) {
        let mut round = self.state.lock().expect("rendezvous lock");
        let generation = round.generation;
        let rank = rank.unwrap_or(round.arrived.len());
        round.arrived.push((rank, value));
        if round.arrived.len() == self.parties {
            let mut all = std::mem::take(&mut round.arrived);
            all.sort_by_key(|(r, _)| *r);
            round.done.insert(generation, (Arc::new(all), self.parties));
            round.generation += 1;
            self.ready.notify_all();
        }
        loop {
            if let Some((all, left)) = round.done.get_mut(&generation) {
                let all = all.clone();
                *left -= 1;
                if *left == 0 {
                    round.done.remove(&generation);
                }
                return (rank, all);
            }
            let (next, waited) = self.ready.wait_timeout(round, self.timeout).expect("rendezvous lock");
            round = next;
            if waited.timed_out() && !round.done.contains_key(&generation) {
                panic!(
                    "flatmin-learner: {} of {} data-parallel workers reached the step's rendezvous within {:?}; \
                     every device must get the same number of batches",
                    round.arrived.len(),
                    self.parties,
                    self.timeout
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_partition_the_ranks() {
        assert_eq!(AscentSync::PerDevice.group(3, 8), 3..4);
        assert_eq!(AscentSync::Synchronized.group(3, 8), 0..8);
        assert_eq!(AscentSync::Groups(4).group(3, 8), 0..4);
        assert_eq!(AscentSync::Groups(4).group(5, 8), 4..8);
        assert_eq!(AscentSync::Groups(3).group(7, 8), 6..8);
        assert!(!AscentSync::Groups(1).exchanges(8));
        assert!(!AscentSync::Synchronized.exchanges(1));
        assert!(AscentSync::Groups(2).exchanges(4));
    }

    #[test]
    fn rendezvous_orders_by_rank_and_is_reusable() {
        let meeting = Arc::new(Rendezvous::<usize>::new(3, Duration::from_secs(30)));
        for round in 0..3 {
            let handles: Vec<_> = (0..3)
                .map(|r| {
                    let m = meeting.clone();
                    std::thread::spawn(move || {
                        let rank = if round == 0 { Some(2 - r) } else { None };
                        let (me, all) = m.meet(rank, 10 * round + r);
                        (me, all.iter().map(|(k, _)| *k).collect::<Vec<_>>())
                    })
                })
                .collect();
            let mut seen: Vec<usize> = Vec::new();
            for h in handles {
                let (me, ranks) = h.join().unwrap();
                assert_eq!(ranks, vec![0, 1, 2]);
                seen.push(me);
            }
            seen.sort();
            assert_eq!(seen, vec![0, 1, 2]);
        }
    }

    #[test]
    #[should_panic(expected = "data-parallel workers reached")]
    fn rendezvous_gives_up_after_its_timeout() {
        let meeting = Rendezvous::<()>::new(2, Duration::from_millis(50));
        meeting.meet(None, ());
    }
}
