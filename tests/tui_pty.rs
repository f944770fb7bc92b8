//! End to end: the real binary in a pseudo-terminal. It opens, switches tabs, shows help, quits
//! with q, and leaves the terminal as it found it (alternate screen left, cursor shown, raw mode
//! left) on every way out: `q`, a panic, SIGTERM, SIGINT, SIGHUP, SIGQUIT; Ctrl-Z and SIGTSTP
//! give the terminal back to the shell and SIGCONT takes it again with a full redraw. It refuses
//! to draw without a terminal or on `TERM=dumb`, and draws ASCII only with `--ascii` or `LANG=C`.
//!
//! Nothing here measures speed: every wait has the generous deadline [`HANG`], which fails only
//! on a hang, never on a slow or loaded machine. Time to first frame, key-to-screen latency and
//! bytes written while idle are measured by `cargo bench --bench tui_latency`.

#[path = "support/pty.rs"]
mod pty;

use std::process::{Command, Stdio};
use std::time::Duration;

use pty::Session;

/// Deadline of every wait: only a hang takes this long.
const HANG: Duration = Duration::from_secs(120);

/// A small run that trains for a while (so signals arrive mid-training).
const SMALL: [&str; 8] = [
    "--sample", "300", "--epochs", "50", "--n", "100", "--hidden", "16",
];

/// The terminal is as a shell expects it after the app: main screen, cursor shown, cooked mode.
fn assert_restored(s: &Session) {
    assert!(!s.alternate_screen(), "alternate screen left");
    assert!(!s.cursor_hidden(), "cursor shown");
    assert!(
        s.is_cooked(),
        "raw mode left: local modes {:#o}",
        s.local_modes()
    );
}

/// The app is drawing: alternate screen, cursor hidden, raw mode.
fn assert_drawing(s: &Session) {
    assert!(s.alternate_screen(), "alternate screen entered");
    assert!(s.cursor_hidden(), "cursor hidden");
    assert!(s.is_raw(), "raw mode: local modes {:#o}", s.local_modes());
}

#[test]
fn opens_switches_tabs_and_quits_restoring_the_terminal() {
    let mut s = Session::start(&["--sample", "600", "--epochs", "2", "--n", "200"], 100, 30);
    s.wait_for("1 Training", HANG);
    assert_drawing(&s);
    s.wait_for("progress", HANG);
    s.send("2");
    s.wait_for("perplexity 30 · label", HANG);
    s.send("\t");
    s.wait_for("probabilities", HANG);
    s.send("?");
    s.wait_for("Everywhere", HANG);
    // Esc closes the help before it quits anything; crossterm waits a moment to tell a lone Esc
    // from an escape sequence.
    s.send("\x1b");
    s.wait_until("help closed", HANG, |s| !s.screen().contains("Everywhere"));
    // From Saliency, Tab wraps to Training (digits pick a class there).
    s.send("\t");
    s.wait_for("confusion", HANG);
    // Shrink below the minimum and back.
    s.resize(40, 10);
    s.wait_for("enlarge", HANG);
    s.resize(100, 30);
    s.wait_for("confusion", HANG);
    s.send("q");
    let status = s.wait_exit(HANG);
    assert!(status.success(), "{status:?}");
    assert_restored(&s);
    let raw = s.output();
    let text = String::from_utf8_lossy(&raw);
    let left = text
        .rfind("\x1b[?1049l")
        .expect("leaves the alternate screen");
    let entered = text
        .rfind("\x1b[?1049h")
        .expect("enters the alternate screen");
    assert!(left > entered);
    // In a UTF-8 locale the app draws Unicode (what the ASCII tests below must not see).
    assert!(!raw.is_ascii(), "box drawing and braille in a UTF-8 locale");
}

#[test]
fn a_panic_on_the_ui_thread_restores_the_terminal() {
    let mut s = Session::start_with_env(
        &["--sample", "300"],
        80,
        24,
        &[("LAYERSCOPE_TEST_PANIC", Some("ui"))],
    );
    let status = s.wait_exit(HANG);
    assert!(!status.success());
    assert_restored(&s);
    assert!(s.screen().contains("test panic on the UI thread"));
    // It did enter the alternate screen and raw mode before the panic (so the checks above can
    // fail): the panic comes after the first frame.
    assert!(String::from_utf8_lossy(&s.output()).contains("\x1b[?1049h"));
}

#[test]
fn a_panicking_job_is_a_message_and_the_app_lives_on() {
    let mut s = Session::start_with_env(
        &["--sample", "300", "--n", "100", "--hidden", "16"],
        100,
        30,
        &[("LAYERSCOPE_TEST_PANIC", Some("worker"))],
    );
    s.wait_for("training failed: panicked: test panic", HANG);
    // The rest of the pipeline runs on the untrained model.
    s.send("2");
    s.wait_for("done", HANG);
    s.send("q");
    assert!(s.wait_exit(HANG).success());
    assert_restored(&s);
}

/// The app quits on `signal` as on `q`, restores the terminal and exits with 128 + the signal.
fn quits_cleanly_on(signal: i32) {
    let mut s = Session::start(&SMALL, 100, 30);
    s.wait_for("1 Training", HANG);
    assert_drawing(&s);
    s.signal(signal);
    let status = s.wait_exit(HANG);
    assert_eq!(
        status.exit_code(),
        u32::try_from(128 + signal).unwrap(),
        "{status:?}"
    );
    assert_restored(&s);
}

#[test]
fn sigterm_quits_cleanly() {
    quits_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_quits_cleanly() {
    quits_cleanly_on(libc::SIGINT);
}

#[test]
fn sighup_quits_cleanly() {
    quits_cleanly_on(libc::SIGHUP);
}

#[test]
fn sigquit_quits_cleanly() {
    quits_cleanly_on(libc::SIGQUIT);
}

/// A real hangup (the terminal window closed, SSH dropped): every descriptor of the pty's master
/// side closed while the app runs. The app must quit through the same path as on SIGHUP (exit
/// 129), not hang in its input thread, and not panic writing to the gone terminal (exit 101).
#[test]
fn a_hangup_quits_without_hanging_or_panicking() {
    use std::io::Read;

    let pair = portable_pty::native_pty_system()
        .openpty(portable_pty::PtySize {
            rows: 30,
            cols: 100,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut child = pair
        .slave
        .spawn_command(pty::command(&SMALL, &[]))
        .expect("spawn");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    // Read until the app draws (in a thread, so a hang meets the deadline), then close all.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        while !String::from_utf8_lossy(&seen).contains("1 Training") {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(reader);
    });
    let reader = rx.recv_timeout(HANG).expect("the app draws");
    drop(reader);
    drop(pair.master);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("the app did not exit after a hangup");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.exit_code(), 129, "{status:?}");
}

/// The process's state letter from /proc (`T` when stopped), where there is a /proc.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Suspend by `suspend`, check the shell gets a cooked terminal and a stopped process, continue
/// with SIGCONT, check the app takes the terminal back and redraws, then quit.
fn suspends_and_resumes(suspend: impl FnOnce(&mut Session)) {
    let mut s = Session::start(&SMALL, 100, 30);
    s.wait_for("1 Training", HANG);
    assert_drawing(&s);
    suspend(&mut s);
    s.wait_until("the main screen back", HANG, |s| !s.alternate_screen());
    if std::path::Path::new("/proc/self/stat").exists() {
        s.wait_until("the app stopped", HANG, |s| {
            process_state(s.pid()) == Some('T')
        });
    }
    assert_restored(&s);

    s.signal(libc::SIGCONT);
    s.wait_until("the app redrawn after SIGCONT", HANG, |s| {
        s.alternate_screen() && s.screen().contains("1 Training")
    });
    assert_drawing(&s);
    // Keys work again (they would echo and be ignored if the terminal stayed cooked).
    s.send("2");
    s.wait_for("perplexity 3", HANG);
    s.send("q");
    assert!(s.wait_exit(HANG).success());
    assert_restored(&s);
}

#[test]
fn ctrl_z_suspends_and_sigcont_resumes() {
    suspends_and_resumes(|s| s.send("\x1a"));
}

#[test]
fn sigtstp_suspends_and_sigcont_resumes() {
    suspends_and_resumes(|s| s.signal(libc::SIGTSTP));
}

#[test]
fn without_a_terminal_it_points_to_the_headless_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for word in [
        "not a terminal",
        "train",
        "embed",
        "explain",
        "snapshot",
        "info",
    ] {
        assert!(err.contains(word), "{err}");
    }
    assert!(out.stdout.is_empty(), "nothing drawn");
}

/// A terminal without cursor addressing: a message, exit 2, nothing drawn, the terminal as it
/// was.
fn refuses_the_full_screen_app_on(term: Option<&str>, says: &str) {
    let mut s = Session::start_with_env(&["--sample", "300"], 80, 24, &[("TERM", term)]);
    let status = s.wait_exit(HANG);
    assert_eq!(status.exit_code(), 2, "{status:?}");
    let screen = s.screen();
    for word in [says, "headless", "snapshot", "--help"] {
        assert!(screen.contains(word), "{word:?} in {screen}");
    }
    let raw = String::from_utf8_lossy(&s.output()).into_owned();
    assert!(
        !raw.contains("\x1b[?1049h"),
        "never entered the alternate screen"
    );
    assert!(!raw.contains("\x1b[?25l"), "never hid the cursor");
    assert_restored(&s);
}

#[test]
fn term_dumb_is_refused_with_a_message() {
    refuses_the_full_screen_app_on(Some("dumb"), "TERM=dumb");
}

#[test]
fn unset_term_is_refused_with_a_message() {
    refuses_the_full_screen_app_on(None, "TERM is not set");
}

/// Every tab and the help, then quit; every byte written is ASCII.
fn draws_only_ascii(args: &[&str], env: &[(&str, Option<&str>)]) {
    let mut s = Session::start_with_env(args, 100, 30, env);
    s.wait_for("1 Training", HANG);
    s.wait_for("progress", HANG);
    s.send("2");
    s.wait_for("perplexity 3", HANG);
    // The maps are drawn (not only the frame).
    s.wait_for("done", HANG);
    s.send("3");
    s.wait_for("probabilities", HANG);
    s.send("?");
    s.wait_for("Everywhere", HANG);
    s.send("q");
    assert!(s.wait_exit(HANG).success());
    assert_restored(&s);
    let raw = s.output();
    let bad: Vec<String> = String::from_utf8_lossy(&raw)
        .chars()
        .filter(|c| !c.is_ascii())
        .take(20)
        .map(|c| format!("{c:?}"))
        .collect();
    assert!(raw.is_ascii(), "non-ASCII output: {}", bad.join(" "));
    assert!(
        String::from_utf8_lossy(&raw).contains("+-"),
        "borders drawn in ASCII"
    );
}

#[test]
fn ascii_flag_emits_only_ascii() {
    let mut args = SMALL.to_vec();
    args[3] = "2";
    args.push("--ascii");
    draws_only_ascii(&args, &[]);
}

#[test]
fn a_non_utf8_locale_emits_only_ascii() {
    let mut args = SMALL.to_vec();
    args[3] = "2";
    draws_only_ascii(&args, &[("LANG", Some("C"))]);
}
