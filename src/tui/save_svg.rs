//! The `S` key: the current view as an SVG picture (`svg::buffer_to_svg`, as `snapshot --svg`
//! draws it) in a new file `layerscope-<tab>-NNN.svg` of the current folder. The name is one
//! not taken yet, and the file is written whole beside it first and then linked into place
//! without replacing anything (`persist_noclobber`): a file someone made meanwhile is never
//! overwritten, and a failed write leaves nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::app::App;
use super::snapshot::render_buffer;
use super::svg::{SvgStyle, buffer_to_svg};
use super::theme::{ColorDepth, Theme};
use crate::headless::output::TEMP_PREFIX;

/// Numbered names tried per tab before giving up.
const MAX_NUMBER: u32 = 999;

/// Save the view `app` shows at `width` x `height` cells in folder `dir`; the message for the
/// message line (the file's name, or why nothing was saved).
pub fn save_view(app: &App, theme: &Theme, width: u16, height: u16, dir: &Path) -> String {
    // Colour as on screen, but every colour in 24-bit (a picture has no palette to match);
    // without colour (NO_COLOR) it stays without.
    let theme = if theme.depth == ColorDepth::None {
        *theme
    } else {
        Theme::new(ColorDepth::TrueColor, !theme.glyphs.unicode)
    };
    let buf = render_buffer(app, app.tab, width, height, &theme);
    let svg = buffer_to_svg(&buf, &SvgStyle::default());
    let tab = app.tab.title().to_lowercase();
    match write_new(dir, &tab, svg.as_bytes()) {
        Ok(path) => format!(
            "saved the view as {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
        Err(e) => format!("cannot save the view as SVG: {e}"),
    }
}

/// Write `bytes` to the first free `layerscope-<tab>-NNN.svg` in `dir`, never replacing a file.
pub fn write_new(dir: &Path, tab: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // As `File::create` would: 0666 less the umask (applied by the kernel).
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    for n in 1..=MAX_NUMBER {
        let path = dir.join(format!("layerscope-{tab}-{n:03}.svg"));
        if std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match temp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => temp = e.file,
            Err(e) => return Err(e.error),
        }
    }
    Err(io::Error::other(format!(
        "layerscope-{tab}-001.svg to -{MAX_NUMBER}.svg are all taken in this folder"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("layerscope-training-001.svg"), "mine").unwrap();
        let a = write_new(dir.path(), "training", b"<svg/>").unwrap();
        assert_eq!(a.file_name().unwrap(), "layerscope-training-002.svg");
        let b = write_new(dir.path(), "training", b"<svg/>").unwrap();
        assert_eq!(b.file_name().unwrap(), "layerscope-training-003.svg");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("layerscope-training-001.svg")).unwrap(),
            "mine"
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "layerscope-training-001.svg",
                "layerscope-training-002.svg",
                "layerscope-training-003.svg"
            ],
            "no temporary file left"
        );
    }

    #[test]
    fn capital_s_asks_for_a_picture_on_every_tab() {
        use super::super::app::{Action, Tab};
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        for tab in Tab::ALL {
            let mut app = App::new(30.0);
            app.tab = tab;
            let key = KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT);
            assert_eq!(app.action_for(key), Some(Action::SaveSvg), "{tab}");
            assert!(
                app.update(Action::SaveSvg).is_empty(),
                "nothing for the worker"
            );
            assert!(app.save_svg, "{tab}");
        }
    }

    #[test]
    fn the_message_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::new(30.0);
        let theme = Theme::new(ColorDepth::TrueColor, false);
        let message = save_view(&app, &theme, 80, 24, dir.path());
        assert_eq!(message, "saved the view as layerscope-training-001.svg");
        let svg = std::fs::read_to_string(dir.path().join("layerscope-training-001.svg")).unwrap();
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{}",
            &svg[..40]
        );
        let missing = dir.path().join("no-such-folder");
        assert!(save_view(&app, &theme, 80, 24, &missing).starts_with("cannot save the view"));
    }
}
