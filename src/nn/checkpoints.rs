//! A run's checkpoints (issue 12): a folder holding one model file per epoch, `epoch_000.npz`
//! (the untrained network), `epoch_001.npz`, ... as `layerscope train --checkpoints DIR` writes
//! them. `--model DIR` opens such a folder: the last checkpoint is the model, and all of them
//! are the film of the run.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::Mlp;

/// The file name of the checkpoint after `epoch` epochs.
pub fn checkpoint_name(epoch: usize) -> String {
    format!("epoch_{epoch:03}.npz")
}

/// The epoch a checkpoint's file name says (`epoch_012.npz` -> 12); `None` for other names.
pub fn checkpoint_epoch(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("epoch_")?.strip_suffix(".npz")?;
    if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The checkpoint files of folder `dir`, by epoch (other files are ignored).
///
/// # Errors
/// When the folder cannot be read, holds no checkpoint, or two names give the same epoch.
pub fn checkpoint_files(dir: &Path) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the folder: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| anyhow::anyhow!("{}: cannot read the folder: {e}", dir.display()))?;
        let name = entry.file_name();
        // A folder named like a checkpoint is not one (a file or a link to one is).
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        if let Some(epoch) = name.to_str().and_then(checkpoint_epoch) {
            files.push((epoch, entry.path()));
        }
    }
    files.sort();
    if let Some(w) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!(
            "{} and {}: two checkpoints of epoch {}: expected one epoch_NNN.npz per epoch",
            w[0].1.display(),
            w[1].1.display(),
            w[0].0
        );
    }
    if files.is_empty() {
        bail!(
            "{}: no checkpoint (epoch_NNN.npz) in this folder: expected a folder written by \
             `layerscope train --checkpoints DIR`, or a model file",
            dir.display()
        );
    }
    Ok(files)
}

/// Every checkpoint of folder `dir`, by epoch, each checked against the data (`n_features`
/// columns, `n_classes` classes) and against the others (the same layer sizes).
///
/// # Errors
/// As [`checkpoint_files`], and when a file cannot be read or does not fit.
pub fn load_checkpoints(
    dir: &Path,
    n_features: usize,
    n_classes: usize,
) -> anyhow::Result<Vec<(usize, Mlp)>> {
    let mut models: Vec<(usize, Mlp)> = Vec::new();
    for (epoch, path) in checkpoint_files(dir)? {
        let mlp = super::load_model(&path, n_features, n_classes)?;
        if let Some((first_epoch, first)) = models.first()
            && first.layer_sizes() != mlp.layer_sizes()
        {
            bail!(
                "{}: layers {:?}, but epoch {first_epoch}'s are {:?}: expected the checkpoints \
                 of one run",
                path.display(),
                mlp.layer_sizes(),
                first.layer_sizes()
            );
        }
        models.push((epoch, mlp));
    }
    Ok(models)
}

/// The last checkpoint of folder `dir` (the model of the run), checked against the data.
///
/// # Errors
/// As [`checkpoint_files`], and when the file cannot be read or does not fit.
pub fn load_last_checkpoint(
    dir: &Path,
    n_features: usize,
    n_classes: usize,
) -> anyhow::Result<Mlp> {
    let files = checkpoint_files(dir)?;
    let (_, path) = files.last().expect("checkpoint_files is never empty");
    super::load_model(path, n_features, n_classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_epochs() {
        assert_eq!(checkpoint_name(7), "epoch_007.npz");
        assert_eq!(checkpoint_name(1234), "epoch_1234.npz");
        assert_eq!(checkpoint_epoch("epoch_007.npz"), Some(7));
        assert_eq!(checkpoint_epoch("epoch_1234.npz"), Some(1234));
        for other in [
            "epoch_7.npz",
            "epoch_00x.npz",
            "model.npz",
            "epoch_001.npy",
            "epoch_-01.npz",
        ] {
            assert_eq!(checkpoint_epoch(other), None, "{other}");
        }
    }

    #[test]
    fn a_folder_named_like_a_checkpoint_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("epoch_000.npz")).unwrap();
        assert!(
            checkpoint_files(dir.path()).is_err(),
            "no checkpoint file there"
        );
        std::fs::write(dir.path().join("epoch_001.npz"), b"x").unwrap();
        let files = checkpoint_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, 1);
    }
}
