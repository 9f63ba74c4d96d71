//! What a run shows while it trains: on a terminal, a live bar per epoch (indicatif) with the
//! running loss and accuracy; otherwise nothing until the epoch's line.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::run::{Progress, RunOptions};

/// The live bar of one epoch: drawn only with [`Progress::Auto`] on a terminal (stderr), so that
/// logs and pipes get the one line per epoch and nothing in between.
pub(crate) struct EpochBar {
    bar: Option<ProgressBar>,
}

impl EpochBar {
    /// The bar of epoch `epoch` (0-based) of `epochs`, with `steps` steps.
    pub(crate) fn new(options: &RunOptions, epoch: usize, epochs: usize, steps: usize) -> Self {
        let live = options.progress == Progress::Auto && std::io::stderr().is_terminal();
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            // The template is a constant: it parses, or the test below fails.
            if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
                bar.set_style(style.progress_chars("#>."));
            }
            bar.set_prefix(format!("{} epoch {}/{epochs}", options.label, epoch + 1));
            bar
        });
        Self { bar }
    }

    /// One step done, with the epoch's running figures so far.
    pub(crate) fn step(&self, loss: f64, accuracy: f64, sharpness: Option<f64>) {
        if let Some(bar) = &self.bar {
            bar.set_message(step_message(loss, accuracy, sharpness));
            bar.inc(1);
        }
    }

    /// Prints a line on stderr above the bar (or alone when there is none): always printed.
    pub(crate) fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Clears the bar, before the epoch's line.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The bar's layout: label and epoch, the bar, steps done, running figures.
const TEMPLATE: &str = "{prefix} [{bar:20}] {pos}/{len} {msg}";

/// `loss 0.4321 acc 85.2% sharpness 0.0123`.
fn step_message(loss: f64, accuracy: f64, sharpness: Option<f64>) -> String {
    let sharp = sharpness.map(|s| format!(" sharpness {s:.4}")).unwrap_or_default();
    format!("loss {loss:.4} acc {:.1}%{sharp}", 100.0 * accuracy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_the_message_shows_the_figures() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        assert_eq!(step_message(0.5, 0.25, None), "loss 0.5000 acc 25.0%");
        assert_eq!(
            step_message(0.5, 0.25, Some(0.01)),
            "loss 0.5000 acc 25.0% sharpness 0.0100"
        );
    }

    #[test]
    fn no_bar_when_quiet() {
        let options = RunOptions {
            out: None,
            resume: false,
            progress: Progress::Quiet,
            label: "sam".into(),
            device: Default::default(),
        };
        assert!(EpochBar::new(&options, 0, 1, 10).bar.is_none());
    }
}
