//! The terminal's lifecycle, apart from the app: whether a full-screen app can open at all,
//! entering and leaving raw mode and the alternate screen, and signals.
//!
//! Every way out goes through one restore (leave raw mode, leave the alternate screen, show the
//! cursor): the [`Session`]'s `Drop`, a panic hook for panics on the UI thread, and the signals.
//! SIGTERM, SIGINT, SIGHUP and SIGQUIT become [`Control::Quit`] on the UI's event channel, so the
//! app quits as it does on `q` and the process then exits with 128 + the signal's number (the
//! shell's convention). SIGTSTP (and Ctrl-Z, which raw mode delivers as a key) restores the
//! terminal and stops the process; SIGCONT re-enters raw mode and the alternate screen, and the
//! caller redraws in full.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use signal_hook::consts::signal::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP};
use signal_hook::iterator::{Handle, Signals};

/// Why the full-screen app does not open here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// stdout is not a terminal (a pipe, a file, a service).
    #[error(
        "stdout is not a terminal, so the terminal app cannot open; on servers and in scripts use \
         the headless subcommands: `layerscope train`, `embed`, `explain`, `snapshot` or `info` \
         (see `layerscope --help`)"
    )]
    NotATerminal,
    /// `TERM` is `dumb` or unset: no cursor addressing, so no full-screen drawing.
    #[error(
        "this terminal ({}) cannot move the cursor, so the full-screen app cannot open; set TERM \
         to your terminal's type (e.g. xterm-256color), or use the headless subcommands: \
         `layerscope train`, `embed`, `explain`, `snapshot` (one frame as text) or `info` (see \
         `layerscope --help`)",
        term_name(.term.as_deref())
    )]
    DumbTerminal {
        /// The value of `TERM`, if set.
        term: Option<String>,
    },
}

fn term_name(term: Option<&str>) -> String {
    match term {
        None => "TERM is not set".into(),
        Some(t) => format!("TERM={t}"),
    }
}

/// Whether a full-screen app can open, for these facts: stdout is a terminal, and the value of
/// `TERM` (None when unset or empty).
pub fn refusal(stdout_is_terminal: bool, term: Option<&str>) -> Option<Refusal> {
    if !stdout_is_terminal {
        return Some(Refusal::NotATerminal);
    }
    match term.map(str::trim) {
        None | Some("" | "dumb") => Some(Refusal::DumbTerminal {
            term: term.map(str::to_owned),
        }),
        Some(_) => None,
    }
}

/// Check, before anything is drawn, that this process can open the full-screen app.
pub fn check_terminal() -> Result<(), Refusal> {
    let term = std::env::var("TERM").ok();
    match refusal(io::stdout().is_terminal(), term.as_deref()) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

/// What the signals (and Ctrl-Z) ask of the UI loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Quit cleanly, then exit with [`exit_code`] of this signal.
    Quit {
        /// The signal's number.
        signal: i32,
    },
    /// Restore the terminal and stop (SIGTSTP): call [`Session::suspend`].
    Suspend,
    /// The process was continued (SIGCONT): call [`Session::resume`] and redraw in full.
    Resume,
}

/// The signals that quit the app.
pub const QUIT_SIGNALS: [i32; 4] = [SIGTERM, SIGINT, SIGHUP, SIGQUIT];

/// The UI loop's meaning of a signal.
pub fn control_for(signal: i32) -> Option<Control> {
    match signal {
        SIGTSTP => Some(Control::Suspend),
        SIGCONT => Some(Control::Resume),
        s if QUIT_SIGNALS.contains(&s) => Some(Control::Quit { signal: s }),
        _ => None,
    }
}

/// The exit code after quitting on `signal`: 128 + its number, as shells report a process that a
/// signal ended (SIGTERM gives 143, SIGINT 130).
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// Ctrl-Z: in raw mode the terminal sends it as a key instead of raising SIGTSTP.
pub fn is_suspend_key(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
        && key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char('z' | 'Z'))
}

/// Join a thread that should end within `patience`, or leave it to end with the process. The
/// input thread needs this: on a hung-up terminal (SSH dropped, terminal window closed)
/// crossterm's `read` can spin without returning, and joining it would hang the quit.
pub fn join_briefly(thread: JoinHandle<()>, patience: Duration) {
    let deadline = Instant::now() + patience;
    while !thread.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    if thread.is_finished() {
        let _ = thread.join();
    }
}

static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Leave raw mode and the alternate screen, show the cursor. Errors are ignored: this runs on the
/// way out, possibly after the terminal is gone (SIGHUP).
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// Raw mode, the alternate screen, the cursor hidden, the screen cleared.
fn enter_screen() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    // Clear with crossterm: ratatui's `clear` asks the terminal for the cursor position, a round
    // trip that costs time over SSH (and hangs on a terminal that never answers).
    execute!(
        io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide,
        terminal::Clear(terminal::ClearType::All)
    )
}

fn install_panic_hook() {
    if UI_THREAD.set(thread::current().id()).is_err() {
        // Installed already (a second session in this process).
        return;
    }
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

/// The terminal in full-screen mode, with the signals caught; restored when dropped.
pub struct Session {
    signals: Option<Signals>,
    /// Set by the signal handler itself (not the forwarding thread), so it is already set when
    /// a write fails because the terminal hung up.
    quit_signal: Arc<AtomicUsize>,
    handle: Handle,
    forwarder: Option<JoinHandle<()>>,
}

impl Session {
    /// Catch the signals, then enter raw mode and the alternate screen. Signals that arrive
    /// before [`Session::forward_signals`] wait in the queue: from here on none takes its
    /// default action (which would leave the terminal raw).
    pub fn enter() -> io::Result<Session> {
        install_panic_hook();
        let mut wanted = QUIT_SIGNALS.to_vec();
        wanted.extend([SIGTSTP, SIGCONT]);
        let signals = Signals::new(wanted)?;
        let handle = signals.handle();
        let quit_signal = Arc::new(AtomicUsize::new(0));
        for signal in QUIT_SIGNALS {
            let number = usize::try_from(signal).unwrap_or(0);
            signal_hook::flag::register_usize(signal, Arc::clone(&quit_signal), number)?;
        }
        let session = Session {
            signals: Some(signals),
            quit_signal: Arc::clone(&quit_signal),
            handle,
            forwarder: None,
        };
        // On error the session drops here and restores what was entered.
        enter_screen()?;
        Ok(session)
    }

    /// Hand each caught signal to `send` (on a thread of its own) as a [`Control`], until the
    /// session ends or `send` returns false.
    pub fn forward_signals(
        &mut self,
        send: impl Fn(Control) -> bool + Send + 'static,
    ) -> io::Result<()> {
        let Some(mut signals) = self.signals.take() else {
            return Ok(());
        };
        let thread = thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if let Some(control) = control_for(signal)
                        && !send(control)
                    {
                        break;
                    }
                }
            })?;
        self.forwarder = Some(thread);
        Ok(())
    }

    /// The quit signal received, if any: the process should exit with [`exit_code`] of it once
    /// the terminal is restored.
    pub fn quit_signal(&self) -> Option<i32> {
        match self.quit_signal.load(Ordering::SeqCst) {
            0 => None,
            s => i32::try_from(s).ok(),
        }
    }

    /// As [`Session::quit_signal`], waiting up to `patience` for one: after a failed write, the
    /// hangup's SIGHUP may be a moment behind the error it caused.
    pub fn wait_quit_signal(&self, patience: Duration) -> Option<i32> {
        let deadline = Instant::now() + patience;
        loop {
            let signal = self.quit_signal();
            if signal.is_some() || Instant::now() >= deadline {
                return signal;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Restore the terminal and stop the process as SIGTSTP's default action would; when the
    /// shell continues it (`fg`), enter raw mode and the alternate screen again. The caller then
    /// redraws everything (`Terminal::clear`, then draw).
    pub fn suspend(&self) -> io::Result<()> {
        restore();
        // SIGTSTP is caught, so its default (stop) is emulated: this raises SIGSTOP and returns
        // when the process is continued.
        signal_hook::low_level::emulate_default_handler(SIGTSTP)?;
        self.resume()
    }

    /// Enter raw mode and the alternate screen again after the process was continued: whatever
    /// stopped it, the shell may have set the terminal back to cooked mode meanwhile. The caller
    /// redraws everything.
    pub fn resume(&self) -> io::Result<()> {
        // crossterm keeps raw mode "on" in its own state across a stop it did not see: leave
        // first, so entering sets the terminal's modes again.
        let _ = terminal::disable_raw_mode();
        enter_screen()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.forwarder.take() {
            let _ = thread.join();
        }
        restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumb_or_unset_term_is_refused() {
        assert_eq!(refusal(false, Some("xterm")), Some(Refusal::NotATerminal));
        assert_eq!(refusal(true, Some("xterm-256color")), None);
        assert_eq!(
            refusal(true, Some("dumb")),
            Some(Refusal::DumbTerminal {
                term: Some("dumb".into())
            })
        );
        assert!(matches!(
            refusal(true, None),
            Some(Refusal::DumbTerminal { term: None })
        ));
        assert!(refusal(true, Some("")).is_some());
        let msg = refusal(true, None).unwrap().to_string();
        assert!(
            msg.contains("TERM is not set") && msg.contains("snapshot"),
            "{msg}"
        );
    }

    #[test]
    fn signals_map_to_controls_and_exit_codes() {
        assert_eq!(control_for(SIGTERM), Some(Control::Quit { signal: 15 }));
        assert_eq!(control_for(SIGINT), Some(Control::Quit { signal: 2 }));
        assert_eq!(control_for(SIGHUP), Some(Control::Quit { signal: 1 }));
        assert_eq!(control_for(SIGQUIT), Some(Control::Quit { signal: 3 }));
        assert_eq!(control_for(SIGTSTP), Some(Control::Suspend));
        assert_eq!(control_for(SIGCONT), Some(Control::Resume));
        assert_eq!(control_for(signal_hook::consts::SIGUSR1), None);
        assert_eq!(exit_code(SIGTERM), 143);
        assert_eq!(exit_code(SIGINT), 130);
    }

    #[test]
    fn ctrl_z_is_the_suspend_key() {
        let ctrl_z = KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL);
        assert!(is_suspend_key(&ctrl_z));
        assert!(!is_suspend_key(&KeyEvent::new(
            KeyCode::Char('z'),
            KeyModifiers::NONE
        )));
        assert!(!is_suspend_key(&KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL
        )));
    }
}
