//! The event loop: one channel carries key presses (from an input thread), signals (from the
//! signal thread of [`terminal::Session`]) and worker events; the loop drains it, updates the
//! state, and draws only when something changed, at most every ~30 ms for worker progress (keys
//! draw at once). The terminal's lifecycle (whether it can open, raw mode, the alternate screen,
//! restoring it on every exit path, signals, Ctrl-Z) lives in [`terminal`].

use std::io::{self, Stdout};
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;

use super::app::{Action, App};
use super::render;
use super::terminal::{self, Control, Session};
use super::theme::{self, Theme};
use crate::cli::Cli;
use crate::compute::{Config, Event, Worker};

/// At most one frame per this long for worker progress.
const FRAME: Duration = Duration::from_millis(33);

/// A message goes after this long (or after `app::MESSAGE_KEYS` keys, whichever comes first).
const MESSAGE_TTL: Duration = Duration::from_secs(6);

/// What the UI loop receives.
enum UiEvent {
    Input(TermEvent),
    Worker(Event),
    Control(Control),
}

/// Open the terminal app: draw, handle keys, drive the worker; return when the user quits. A
/// quitting signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) ends the process with 128 + its number
/// after the same clean quit.
pub fn run(cli: &Cli, config: Config) -> anyhow::Result<()> {
    terminal::check_terminal()?;
    let theme = Theme::detect(cli.view.ascii);
    let mut session = Session::enter()?;
    // Never dropped: ratatui's `Drop` shows the cursor and, if the terminal is gone (SIGHUP),
    // prints the failure with `eprintln!`, which panics on a hung-up stderr. The session's
    // restore shows the cursor on every way out anyway.
    let mut term = ManuallyDrop::new(Terminal::new(CrosstermBackend::new(io::stdout()))?);
    let result = event_loop(config, &theme, &mut term, &mut session);
    // A quit signal wins over an error it caused (a draw failing on a hung-up terminal).
    let signal = if result.is_err() {
        session.wait_quit_signal(Duration::from_millis(200))
    } else {
        session.quit_signal()
    };
    drop(session);
    if let Some(signal) = signal {
        std::process::exit(terminal::exit_code(signal));
    }
    result
}

/// Draw one frame; in ASCII mode every cell ends up ASCII, whatever a widget drew.
fn draw(term: &mut Terminal<CrosstermBackend<Stdout>>, app: &App, theme: &Theme) -> io::Result<()> {
    term.draw(|f| {
        render::draw(f, app, theme);
        if !theme.glyphs.unicode {
            theme::asciify(f.buffer_mut());
        }
    })?;
    Ok(())
}

fn event_loop(
    config: Config,
    theme: &Theme,
    term: &mut Terminal<CrosstermBackend<Stdout>>,
    session: &mut Session,
) -> anyhow::Result<()> {
    let mut app = App::new(config.perplexity);
    draw(term, &app, theme)?;
    // Test hook for the end-to-end tests: a panic on the UI thread must restore the terminal.
    #[cfg(feature = "test-support")]
    if std::env::var("LAYERSCOPE_TEST_PANIC").as_deref() == Ok("ui") {
        panic!("test panic on the UI thread");
    }

    let (tx, rx) = mpsc::channel::<UiEvent>();
    {
        let tx = tx.clone();
        session.forward_signals(move |c| tx.send(UiEvent::Control(c)).is_ok())?;
    }
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
    // The message on screen and when it appeared.
    let mut shown_message: Option<(String, Instant)> = None;
    // The app's clock (the film playing): whether it runs, and when it last ticked.
    let mut ticking = false;
    let mut last_tick = Instant::now();
    loop {
        let mut timeout = if dirty {
            let wait = if urgent { Duration::ZERO } else { FRAME };
            wait.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        if let Some((_, since)) = &shown_message {
            timeout = timeout.min(MESSAGE_TTL.saturating_sub(since.elapsed()));
        }
        if let Some(step) = app.tick_interval() {
            timeout = timeout.min(step.saturating_sub(last_tick.elapsed()));
        }
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
                UiEvent::Input(TermEvent::Key(key)) if terminal::is_suspend_key(&key) => {
                    suspend(term, session)?;
                    dirty = true;
                    urgent = true;
                }
                UiEvent::Control(Control::Suspend) => {
                    suspend(term, session)?;
                    dirty = true;
                    urgent = true;
                }
                UiEvent::Control(Control::Resume) => {
                    session.resume()?;
                    forget_screen(term)?;
                    dirty = true;
                    urgent = true;
                }
                // The same quit as `q`; `run` then exits with the signal's code.
                UiEvent::Control(Control::Quit { .. }) => {
                    for command in app.update(Action::Quit) {
                        worker.send(command);
                    }
                }
                UiEvent::Input(TermEvent::Key(key)) => {
                    if let Some(action) = app.action_for(key) {
                        for command in app.update(action) {
                            worker.send(command);
                        }
                        // Issue 16 item 5: `S` saves what is on screen, at the screen's size.
                        if std::mem::take(&mut app.save_svg) {
                            let size = term.size()?;
                            let dir = std::path::Path::new(".");
                            let message = super::save_svg::save_view(
                                &app,
                                theme,
                                size.width,
                                size.height,
                                dir,
                            );
                            app.say(message);
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
        match app.tick_interval() {
            // Play starts: the first tick comes one step later.
            Some(_) if !ticking => {
                ticking = true;
                last_tick = Instant::now();
            }
            Some(step) if last_tick.elapsed() >= step => {
                last_tick = Instant::now();
                if app.tick() {
                    dirty = true;
                    urgent = true;
                }
            }
            Some(_) => {}
            None => ticking = false,
        }
        match (&app.message, &shown_message) {
            (None, _) => shown_message = None,
            (Some(m), Some((old, since))) if m == old => {
                if since.elapsed() >= MESSAGE_TTL {
                    app.message = None;
                    shown_message = None;
                    dirty = true;
                    urgent = true;
                }
            }
            (Some(m), _) => shown_message = Some((m.clone(), Instant::now())),
        }
        let due = if urgent { Duration::ZERO } else { FRAME };
        if dirty && last_draw.elapsed() >= due {
            draw(term, &app, theme)?;
            last_draw = Instant::now();
            dirty = false;
            urgent = false;
        }
    }
    stop_input.store(true, Ordering::Relaxed);
    worker.shutdown(Duration::from_millis(500));
    terminal::join_briefly(input, Duration::from_millis(200));
    Ok(())
}

/// Ctrl-Z or SIGTSTP: restore the terminal, stop; once continued, redraw everything.
fn suspend(term: &mut Terminal<CrosstermBackend<Stdout>>, session: &Session) -> io::Result<()> {
    session.suspend()?;
    forget_screen(term)
}

/// The screen was the shell's meanwhile: forget what ratatui believes is on it, so the next
/// draw writes every cell. (`Terminal::clear` would do it too, but it first asks the terminal
/// for the cursor position: a round trip over SSH, and a hang on a terminal that never answers.)
fn forget_screen(term: &mut Terminal<CrosstermBackend<Stdout>>) -> io::Result<()> {
    let size = term.size()?;
    term.resize(Rect::new(0, 0, size.width, size.height))
}
