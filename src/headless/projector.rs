//! `embed --projector DIR`: the embedded images in the files TensorBoard's embedding projector
//! reads (its `projector_config.proto`, tensors in TSV through `tensor_path`), so the same points
//! open there, with its own PCA, t-SNE and UMAP, its search and its sprites:
//!
//! - `tensors-layerK.tsv`: layer K's activations of the embedded images, one row per image, one
//!   tab-separated column per unit, no header (what the projector's `tensor_path` takes);
//! - `metadata.tsv`: a header row `label  prediction  split`, then one row per image (several
//!   columns need the header, by the projector's rule);
//! - `sprite.png`: the images as a square grid of thumbnails, `ceil(sqrt(count))` per side, in
//!   row order (only for data with an image shape);
//! - `projector_config.pbtxt`: one embedding per layer (`tensor_name`, `tensor_path`,
//!   `tensor_shape`, `metadata_path`, `sprite { image_path single_image_dim }`).
//!
//! `tensorboard --logdir DIR` opens them (the folder is its own run). Every file goes through the
//! one output plan: checked before any work, written whole, then renamed into place.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::bail;
use ndarray::ArrayView2;

use super::output::{Plan, Sink, Staged};
use crate::nn::Mlp;

/// The projector's largest sprite side, in pixels (`SPRITE_MAX` in its front-end).
pub const MAX_SPRITE_SIDE: usize = 8192;

/// The file holding layer `k`'s activations.
pub fn tensors_file(k: usize) -> String {
    format!("tensors-layer{k}.tsv")
}

/// The metadata file's name.
pub const METADATA_FILE: &str = "metadata.tsv";
/// The sprite's name.
pub const SPRITE_FILE: &str = "sprite.png";
/// The config's name (the projector looks for exactly this one).
pub const CONFIG_FILE: &str = "projector_config.pbtxt";

/// The projector files of one `embed` run, checked before any work.
pub struct Projector {
    dir: PathBuf,
    /// The folder was made by this run: removed again if nothing lands in it.
    created: bool,
    plan: Plan,
    layers: Vec<usize>,
    image_shape: Option<(usize, usize)>,
}

impl Projector {
    /// Plan the files for `layers` in `dir` (made when it is not there and its parent is):
    /// every path checked as the other outputs are, none the same as `--out` or an input.
    pub fn plan(
        dir: &Path,
        layers: &[usize],
        n_images: usize,
        image_shape: Option<(usize, usize)>,
        out: &Path,
        inputs: &[(&str, &Path)],
    ) -> anyhow::Result<Projector> {
        if let Some((h, w)) = image_shape {
            let side = grid_side(n_images) * h.max(w);
            if side > MAX_SPRITE_SIDE {
                bail!(
                    "--projector: {n_images} images of {h} x {w} make a sprite {side} pixels \
                     wide, more than the {MAX_SPRITE_SIDE} TensorBoard's projector shows: \
                     expected a smaller --n"
                );
            }
        }
        let mut created = false;
        if !dir.exists() {
            std::fs::create_dir(dir).map_err(|e| {
                anyhow::anyhow!("--projector {}: cannot make the folder: {e}", dir.display())
            })?;
            created = true;
        } else if !dir.is_dir() {
            bail!(
                "--projector {}: not a folder: expected a folder for the projector's files",
                dir.display()
            );
        }
        let mut names: Vec<String> = layers.iter().map(|&k| tensors_file(k)).collect();
        names.push(METADATA_FILE.to_owned());
        if image_shape.is_some() {
            names.push(SPRITE_FILE.to_owned());
        }
        names.push(CONFIG_FILE.to_owned());
        let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
        let mut outputs: Vec<(&str, &Path)> =
            paths.iter().map(|p| ("--projector", p.as_path())).collect();
        // Checked against --out too (never staged here: `embed` writes it).
        outputs.push(("--out", out));
        let plan = match Plan::new(&outputs, inputs) {
            Ok(plan) => plan,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_dir(dir);
                }
                return Err(e);
            }
        };
        Ok(Projector {
            dir: dir.to_path_buf(),
            created,
            plan,
            layers: layers.to_vec(),
            image_shape,
        })
    }

    /// Write every file (not yet in place): the activations of `images` (one row each) in each
    /// planned layer of `model`, their labels and predictions (`names` are the class names),
    /// their sprite and the config.
    pub fn stage(
        &self,
        model: &Mlp,
        images: ArrayView2<f32>,
        labels: &[u8],
        predictions: &[u8],
        names: &[String],
    ) -> anyhow::Result<Vec<Staged>> {
        let mut staged = Vec::new();
        let mut shapes = Vec::new();
        for (i, &k) in self.layers.iter().enumerate() {
            let activations = model.layer_output(images, k);
            shapes.push(activations.ncols());
            staged.push(self.plan.stage(i, |w| write_tsv(w, activations.view()))?);
        }
        let mut next = self.layers.len();
        staged.push(
            self.plan
                .stage(next, |w| write_metadata(w, labels, predictions, names))?,
        );
        next += 1;
        if let Some((h, w)) = self.image_shape {
            staged.push(
                self.plan
                    .stage(next, |out| write_sprite(out, images, h, w))?,
            );
            next += 1;
        }
        let config = config_text(&self.layers, &shapes, images.nrows(), self.image_shape);
        staged.push(self.plan.stage(next, |w| w.write_all(config.as_bytes()))?);
        Ok(staged)
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        if self.created {
            // Only an empty folder goes: after a commit it holds the files and stays.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Thumbnails per side of the sprite's square grid.
pub fn grid_side(n: usize) -> usize {
    let mut side = (n as f64).sqrt().ceil() as usize;
    while side * side < n {
        side += 1;
    }
    while side > 0 && (side - 1) * (side - 1) >= n {
        side -= 1;
    }
    side
}

/// One row per image, tab-separated values, no header.
fn write_tsv(w: &mut dyn Sink, values: ArrayView2<f32>) -> io::Result<()> {
    let mut line = String::new();
    for row in values.rows() {
        line.clear();
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                line.push('\t');
            }
            line.push_str(&v.to_string());
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// A class name as one TSV field: tabs and line breaks would split it.
fn field(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn write_metadata(
    w: &mut dyn Sink,
    labels: &[u8],
    predictions: &[u8],
    names: &[String],
) -> io::Result<()> {
    let name = |c: u8| {
        names
            .get(usize::from(c))
            .map_or_else(|| c.to_string(), |n| field(n))
    };
    w.write_all(b"label\tprediction\tsplit\n")?;
    for (&label, &prediction) in labels.iter().zip(predictions) {
        writeln!(w, "{}\t{}\ttrain", name(label), name(prediction))?;
    }
    Ok(())
}

/// The images (values in [0, 1]) as an 8-bit grey PNG, thumbnails in row order on a square grid.
fn write_sprite(out: &mut dyn Sink, images: ArrayView2<f32>, h: usize, w: usize) -> io::Result<()> {
    let side = grid_side(images.nrows());
    let (width, height) = (side * w, side * h);
    let mut pixels = vec![0u8; width * height];
    for (i, image) in images.rows().into_iter().enumerate() {
        let (gy, gx) = (i / side, i % side);
        for y in 0..h {
            for x in 0..w {
                let v = image[y * w + x].clamp(0.0, 1.0);
                pixels[(gy * h + y) * width + gx * w + x] = (v * 255.0).round() as u8;
            }
        }
    }
    let fail = io::Error::other;
    let mut encoder = png::Encoder::new(out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&pixels).map_err(fail)?;
    writer.finish().map_err(fail)
}

/// `projector_config.pbtxt` in protobuf text format: one embedding per layer.
pub fn config_text(
    layers: &[usize],
    units: &[usize],
    n_images: usize,
    image_shape: Option<(usize, usize)>,
) -> String {
    let mut s = String::new();
    for (&k, &n_units) in layers.iter().zip(units) {
        s.push_str("embeddings {\n");
        s.push_str(&format!("  tensor_name: \"layer {k}\"\n"));
        s.push_str(&format!("  tensor_path: \"{}\"\n", tensors_file(k)));
        s.push_str(&format!(
            "  tensor_shape: {n_images}\n  tensor_shape: {n_units}\n"
        ));
        s.push_str(&format!("  metadata_path: \"{METADATA_FILE}\"\n"));
        if let Some((h, w)) = image_shape {
            s.push_str("  sprite {\n");
            s.push_str(&format!("    image_path: \"{SPRITE_FILE}\"\n"));
            // [width, height], the proto's order.
            s.push_str(&format!(
                "    single_image_dim: {w}\n    single_image_dim: {h}\n"
            ));
            s.push_str("  }\n");
        }
        s.push_str("}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_sides() {
        assert_eq!(grid_side(1), 1);
        assert_eq!(grid_side(4), 2);
        assert_eq!(grid_side(5), 3);
        assert_eq!(grid_side(1500), 39);
        assert_eq!(grid_side(1521), 39);
        assert_eq!(grid_side(1522), 40);
    }

    #[test]
    fn config_names_each_layer() {
        let text = config_text(&[2, 4], &[16, 10], 30, Some((28, 28)));
        assert_eq!(text.matches("embeddings {").count(), 2);
        assert!(text.contains(
            "tensor_path: \"tensors-layer4.tsv\"\n  tensor_shape: 30\n  tensor_shape: 10\n"
        ));
        assert!(text.contains("single_image_dim: 28\n    single_image_dim: 28\n"));
        assert!(!config_text(&[2], &[16], 30, None).contains("sprite"));
    }
}
