//! The event loop: one channel carries key presses (from an input thread) and worker events;
//! the loop drains it, updates the state, and draws only when something changed, at most every
//! ~30 ms for worker progress (keys draw at once). The terminal is restored on every exit path:
//! a guard's `Drop`, and a panic hook for panics on the UI thread (a worker panic is caught by
//! the worker and shown as a message instead).

use std::io::{self, IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::app::App;
use super::render;
use super::theme::{ColorDepth, Theme};
use crate::cli::Cli;
use crate::compute::{Config, Event, Worker};

/// At most one frame per this long for worker progress.
const FRAME: Duration = Duration::from_millis(33);

/// stdout is not a terminal: the app refuses to draw.
#[derive(Debug, thiserror::Error)]
#[error(
    "stdout is not a terminal, so the terminal app cannot open; on servers and in scripts use the \
     headless subcommands: `layerscope train`, `embed`, `explain`, `snapshot` or `info` (see \
     `layerscope --help`)"
)]
pub struct NotATerminal;

/// What the UI loop receives.
enum UiEvent {
    Input(TermEvent),
    Worker(Event),
}

static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Leave raw mode and the alternate screen, show the cursor.
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// Restores the terminal when dropped.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    let _ = UI_THREAD.set(thread::current().id());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if UI_THREAD.get() == Some(&thread::current().id()) {
            restore();
            previous(info);
        }
        // Elsewhere (the worker, rayon) the panic is caught and shown in the app; printing it
        // here would tear the screen.
    }));
}

/// Open the terminal app: draw, handle keys, drive the worker; return when the user quits.
pub fn run(cli: &Cli, config: Config) -> anyhow::Result<()> {
    if !io::stdout().is_terminal() {
        return Err(NotATerminal.into());
    }
    let theme = Theme::new(ColorDepth::detect(), cli.view.ascii);
    install_panic_hook();
    terminal::enable_raw_mode()?;
    let guard = TerminalGuard;
    // Clear with crossterm: ratatui's `clear` asks the terminal for the cursor position, a round
    // trip that costs time over SSH (and hangs on a terminal that never answers).
    execute!(
        io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide,
        terminal::Clear(terminal::ClearType::All)
    )?;
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let result = event_loop(config, &theme, &mut term);
    drop(term);
    drop(guard);
    result
}

fn event_loop(
    config: Config,
    theme: &Theme,
    term: &mut Terminal<CrosstermBackend<Stdout>>,
) -> anyhow::Result<()> {
    let mut app = App::new(config.perplexity);
    term.draw(|f| render::draw(f, &app, theme))?;
    // Test hook for the end-to-end tests: a panic on the UI thread must restore the terminal.
    #[cfg(feature = "test-support")]
    if std::env::var("LAYERSCOPE_TEST_PANIC").as_deref() == Ok("ui") {
        panic!("test panic on the UI thread");
    }

    let (tx, rx) = mpsc::channel::<UiEvent>();
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = {
        let tx = tx.clone();
        let stop = Arc::clone(&stop_input);
        thread::Builder::new().name("input".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(50)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(UiEvent::Input(ev)).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        })?
    };
    let worker = Worker::spawn(config, move |e| {
        let _ = tx.send(UiEvent::Worker(e));
    });

    let mut dirty = false;
    let mut urgent = false;
    let mut last_draw = Instant::now();
    loop {
        let timeout = if dirty {
            let wait = if urgent { Duration::ZERO } else { FRAME };
            wait.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let first = match rx.recv_timeout(timeout) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Drain a burst before drawing once.
        for ev in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match ev {
                UiEvent::Input(TermEvent::Key(key)) => {
                    if let Some(action) = app.action_for(key) {
                        for command in app.update(action) {
                            worker.send(command);
                        }
                        dirty = true;
                        urgent = true;
                    }
                }
                UiEvent::Input(TermEvent::Resize(..)) => {
                    dirty = true;
                    urgent = true;
                }
                UiEvent::Input(_) => {}
                UiEvent::Worker(e) => {
                    app.on_event(e, &worker.slots);
                    dirty = true;
                }
            }
            if app.should_quit {
                break;
            }
        }
        if app.should_quit {
            break;
        }
        let due = if urgent { Duration::ZERO } else { FRAME };
        if dirty && last_draw.elapsed() >= due {
            term.draw(|f| render::draw(f, &app, theme))?;
            last_draw = Instant::now();
            dirty = false;
            urgent = false;
        }
    }
    stop_input.store(true, Ordering::Relaxed);
    worker.shutdown(Duration::from_millis(500));
    let _ = input.join();
    Ok(())
}
