//! The per-parameter state of a member (F-SAM's average, LookSAM's stored direction): one flat
//! tensor per parameter path, and its part of the record (`<prefix><path>`). A member that keeps
//! one hands it to the step through [`MemberHooks::param_map`](crate::member::MemberHooks::param_map),
//! and its saving, loading, record schema and fit check come with it.

use std::collections::HashMap;

use burn::tensor::Tensor;

use crate::record::{RecordIn, RecordOut, Schema};

/// One flat tensor per parameter path, recorded under `prefix`.
#[derive(Clone, Debug)]
pub(crate) struct ParamMap {
    prefix: &'static str,
    /// What it is, in messages (`"F-SAM's EMA"`).
    what: &'static str,
    pub(crate) tensors: HashMap<String, Tensor<1>>,
}

impl ParamMap {
    pub(crate) fn new(prefix: &'static str, what: &'static str) -> Self {
        Self {
            prefix,
            what,
            tensors: HashMap::new(),
        }
    }

    pub(crate) fn save(&self, out: &mut RecordOut) {
        out.map(self.prefix, &self.tensors);
    }

    pub(crate) fn load(&mut self, record: &mut RecordIn) {
        self.tensors = record.map(self.prefix);
    }

    pub(crate) fn schema(&self) -> Schema {
        Schema {
            maps: vec![self.prefix],
            scalars: Vec::new(),
        }
    }

    pub(crate) fn buffers(&self) -> Vec<(&'static str, &str, &Tensor<1>)> {
        self.tensors.iter().map(|(p, t)| (self.what, p.as_str(), t)).collect()
    }
}
