//! Progress bars on stderr, fed from an archive's `Counters` while bytes move.

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::thousands;
use crate::archive::Counters;

/// What a progress bar counts.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Uncompressed tar bytes (saving: the volume's data).
    TarBytes,
    /// Bytes read from the archive file (restoring: the total is the file's size).
    InputBytes,
    /// Uncompressed bytes of something without entries (a database dump).
    DumpBytes,
}

/// A progress bar on stderr fed from `Counters`; invisible unless stderr is a terminal and
/// `-q` was not given.
pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// A bar drawn when `shown` (no `-q`) and stderr is a terminal; see `Printer::progress`.
    pub(super) fn start(
        shown: bool,
        label: &str,
        counters: Arc<Counters>,
        total: Option<u64>,
        measure: Measure,
    ) -> Self {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        let visible = shown && io::stderr().is_terminal();
        bar.set_draw_target(if visible {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        });
        bar.set_style(style(total.is_some()));
        bar.set_prefix(label.to_string());
        let ticker_bar = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(125));
            loop {
                tick.tick().await;
                let pos = match measure {
                    Measure::TarBytes | Measure::DumpBytes => counters.tar_bytes(),
                    Measure::InputBytes => counters.input_bytes(),
                };
                ticker_bar.set_position(pos);
                if !matches!(measure, Measure::DumpBytes) {
                    ticker_bar.set_message(format!("{} entries", thousands(counters.entries())));
                }
            }
        });
        Progress { bar, ticker }
    }

    /// Whether the bar is drawn at all (a terminal, and no `-q`).
    pub fn visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// A setter for the total, for when it becomes known later (the engine measured the
    /// volume): it adds a bar and an ETA.
    pub fn total_setter(&self) -> impl Fn(u64) + Send + 'static {
        let bar = self.bar.clone();
        move |total| {
            bar.set_length(total);
            bar.set_style(style(true));
        }
    }

    /// Removes the bar from the screen.
    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

fn style(with_total: bool) -> ProgressStyle {
    let template = if with_total {
        "{prefix}  {decimal_bytes}  {msg}  [{bar:24}] {decimal_bytes_per_sec}  ETA {eta}"
    } else {
        "{prefix}  {decimal_bytes}  {msg}  {spinner} {decimal_bytes_per_sec}"
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}
