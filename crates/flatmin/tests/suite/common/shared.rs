//! What the test suites of all three crates share: a module of this crate's `common`, and of
//! flatmin-learner's and flatmin-cli's through `#[path]` (tests cannot share code across crates
//! otherwise), so each of these helpers is written once in the repository.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// A scratch folder in the temp dir (a `tempfile::TempDir`, named `flatmin-<name>-<random>`),
/// created: removed when dropped, except by a failing test, which keeps it and prints its path.
pub fn scratch(name: &str) -> Scratch {
    let dir = temp_dir(name);
    let path = dir.path().to_path_buf();
    Scratch { dir, path }
}

/// The path `<a fresh scratch folder>/<name>`, not created: for what a command under test must
/// create (or must not). Removed like [`scratch`]'s folder.
pub fn scratch_path(name: &str) -> Scratch {
    let dir = temp_dir(name);
    let path = dir.path().join(name);
    Scratch { dir, path }
}

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("flatmin-{name}-"))
        .tempdir()
        .expect("scratch dir")
}

/// A scratch folder ([`scratch`]) or a path in one ([`scratch_path`]); derefs to the path.
pub struct Scratch {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Scratch {
    /// The temp folder, with all in it: what a `static` scratch (never dropped) removes itself.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("scratch kept: {}", self.path.display());
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

/// Whether the wgpu tests run here: a machine without an adapter skips them, unless
/// `FLATMIN_REQUIRE_WGPU` is set (CI), where that fails.
#[cfg(feature = "wgpu")]
pub fn wgpu_here() -> bool {
    let here = flatmin::bridge::wgpu_adapter_available();
    assert!(
        here || std::env::var_os("FLATMIN_REQUIRE_WGPU").is_none(),
        "FLATMIN_REQUIRE_WGPU is set, but wgpu finds no adapter"
    );
    here
}

/// One step of `optim` through the two-step API with gradients made by hand (Burn's
/// `backward` of `loss`), up to the update: the first pass at `w`, the ascent (the step must
/// have one), and the second pass at `w + e`.
pub fn update_from_gradients<M: Module>(
    optim: &flatmin::Sam,
    lr: f64,
    model: &M,
    loss: impl Fn(&M) -> Tensor<1>,
) -> flatmin::Update {
    let first = optim.begin(lr, model);
    let grads = GradientsParams::from_grads(loss(first.model()).backward(), first.model());
    let ascent = optim.ascend(model, first, grads).unwrap().ascent().expect("an ascent");
    let grads_p = GradientsParams::from_grads(loss(ascent.model()).backward(), ascent.model());
    ascent.second_pass(grads_p).unwrap()
}
