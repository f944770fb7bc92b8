//! Issue 13 headless pieces: `layerscope neighbours` (the nearest training images of a test
//! image in each layer's own space) and what `embed` adds for it (the `row` and `split` columns,
//! test images placed into the maps with `--place`).

use std::time::Instant;

use anyhow::{Context as _, bail};
use ndarray::{Array2, ArrayView2, Axis, s};

use super::output::{Plan, Sink};
use super::{embed_rows, inputs, load_data, model_for, planned_layers, saved_model};
use crate::cli::NeighboursArgs;
use crate::data::{Dataset, Split};
use crate::neighbours::nearest;
use crate::nn::Mlp;
use crate::tsne::{self, PlaceParams, TsneParams};

/// Check `--place N` against the test split before any work.
pub(super) fn check_place(place: usize, test_rows: usize) -> anyhow::Result<()> {
    if place > test_rows {
        bail!(
            "--place {place}: expected at most {test_rows} (the rows of the test split); lower \
             --place or --test-fraction's complement"
        );
    }
    Ok(())
}

/// The first `m` test images placed into one layer's map (`reference` are the embedded images'
/// activations in layer `layer`, `coords` their map, which is not changed). `None` for m = 0.
pub(super) fn place_into(
    model: &Mlp,
    reference: ArrayView2<f32>,
    coords: ArrayView2<f32>,
    test: &Dataset,
    m: usize,
    layer: usize,
    seed: u64,
) -> anyhow::Result<Option<Array2<f32>>> {
    if m == 0 {
        return Ok(None);
    }
    let started = Instant::now();
    let new = model.layer_output(test.features.slice(s![..m, ..]), layer);
    let params = PlaceParams {
        seed,
        ..PlaceParams::default()
    };
    let placed = tsne::place(reference, coords, new.view(), &params)
        .with_context(|| format!("placing test images into the map of layer {layer}"))?;
    note!(
        "layer {layer}: placed {m} test images in {:.2} s (the map is not moved)",
        started.elapsed().as_secs_f64()
    );
    Ok(Some(placed))
}

/// One layer's map for `embed`: the embedded training images' layout and the placed test images.
pub(super) struct LayerMap {
    /// Layer, notebook numbering.
    pub layer: usize,
    /// The embedded training images, n x 2.
    pub coords: Array2<f32>,
    /// The first test images, placed, m x 2.
    pub placed: Option<Array2<f32>>,
}

/// `embed`'s table: `index,layer,x,y,label,prediction,row,split`, the training images of each
/// layer, then its placed test images. `index` is the row of the split part (embedded point i is
/// training row i; a placed point i is test row i), `row` the row of the data file.
pub(super) fn write_embedding(
    w: &mut dyn Sink,
    split: &Split,
    model: &Mlp,
    maps: &[LayerMap],
) -> std::io::Result<()> {
    let names = &split.train.class_names;
    let name = |c: u8| names.get(usize::from(c)).map_or("?", String::as_str);
    let n = maps.first().map_or(0, |m| m.coords.nrows());
    let m = maps
        .iter()
        .filter_map(|l| l.placed.as_ref())
        .map(Array2::nrows)
        .max()
        .unwrap_or(0);
    let train_pred = model.predict(split.train.features.slice(s![..n, ..]));
    let test_pred = model.predict(split.test.features.slice(s![..m, ..]));
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record([
        "index",
        "layer",
        "x",
        "y",
        "label",
        "prediction",
        "row",
        "split",
    ])?;
    for map in maps {
        let parts = [
            (Some(&map.coords), &split.train, &train_pred, "train"),
            (map.placed.as_ref(), &split.test, &test_pred, "test"),
        ];
        for (coords, part, pred, part_name) in parts {
            let Some(coords) = coords else { continue };
            for (i, xy) in coords.axis_iter(Axis(0)).enumerate() {
                csv.write_record([
                    i.to_string().as_str(),
                    &map.layer.to_string(),
                    &xy[0].to_string(),
                    &xy[1].to_string(),
                    name(part.labels[i]),
                    name(pred[i]),
                    &part.rows[i].to_string(),
                    part_name,
                ])?;
            }
        }
    }
    csv.flush()
}

/// `layerscope neighbours`: the `--k` nearest embedded training images of test image `--index`
/// in each layer's own space (exact Euclidean), with `in_map` from the layer's t-SNE map when
/// `--maps` asks for the maps.
///
/// The maps are opt-in: the neighbours of one image take milliseconds, a map about half a second
/// per layer (t-SNE of the embedded images, then the test image placed into it), and `in_map` is
/// a statement about one particular map (its perplexity and seed), which the options then name
/// as they do for `embed`.
pub fn neighbours(args: &NeighboursArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let plan = Plan::new(
        &[("--out", args.out.as_path())],
        &inputs(data, args.model.model.as_deref()),
    )?;
    let split = load_data(data)?;
    let loaded = saved_model(&args.model, &split)?;
    let n_layers = planned_layers(&args.model, loaded.as_ref());
    let layers: Vec<usize> = match args.layer {
        Some(k) if k == 0 || k > n_layers => {
            bail!("--layer {k}: expected a layer from 1 (input) to {n_layers} (output)")
        }
        Some(k) => vec![k],
        None => (1..=n_layers).collect(),
    };
    if args.index >= split.test.n_rows() {
        bail!(
            "--index {}: expected a row of the test split, 0 to {}",
            args.index,
            split.test.n_rows().saturating_sub(1)
        );
    }
    let n = args.tsne.embed_n.min(split.train.n_rows());
    if args.k == 0 || args.k > n {
        bail!(
            "--k {}: expected 1 to {n} (the embedded training images; --n {} of {} training rows)",
            args.k,
            args.tsne.embed_n,
            split.train.n_rows()
        );
    }
    if args.maps {
        super::check_tsne(
            args.tsne.perplexity,
            args.tsne.embed_n,
            split.train.n_rows(),
        )?;
    }
    let model = match loaded {
        Some(m) => m,
        None => model_for(&args.model, &split, data.seed)?,
    };
    let x = embed_rows(&split.train, n);
    let train_pred = model.predict(x.view());
    let query = split.test.features.slice(s![args.index..=args.index, ..]);
    let query_pred = model.predict(query)[0];
    let names = &split.train.class_names;
    let name = |c: u8| {
        names
            .get(usize::from(c))
            .map_or("?", String::as_str)
            .to_owned()
    };
    note!(
        "test image {} (row {} of {}): label {}, prediction {}",
        args.index,
        split.test.rows[args.index],
        split.source(),
        crate::data::display_name(&name(split.test.labels[args.index])),
        crate::data::display_name(&name(query_pred))
    );
    let mut records: Vec<[String; 7]> = Vec::new();
    for &layer in &layers {
        let reference = model.layer_output(x.view(), layer);
        let q = model.layer_output(query, layer);
        let found = nearest(reference.view(), q.row(0), args.k, None);
        let in_map = if args.maps {
            Some(map_neighbours(
                &model,
                reference.view(),
                &split.test,
                args,
                layer,
            )?)
        } else {
            None
        };
        for (rank, nb) in found.iter().enumerate() {
            let flag = in_map
                .as_ref()
                .map_or(String::new(), |set| set.contains(&nb.index).to_string());
            records.push([
                layer.to_string(),
                (rank + 1).to_string(),
                split.train.rows[nb.index].to_string(),
                name(split.train.labels[nb.index]),
                name(train_pred[nb.index]),
                nb.distance.to_string(),
                flag,
            ]);
        }
    }
    let staged = plan.stage(0, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record([
            "layer",
            "rank",
            "row",
            "label",
            "prediction",
            "distance",
            "in_map",
        ])?;
        for r in &records {
            csv.write_record(r)?;
        }
        csv.flush()
    })?;
    Plan::commit(vec![staged])
}

/// The embedded images nearest to test image `args.index` in layer `layer`'s t-SNE map: the map
/// made as `embed` makes it, the test images 0..=index placed into it (each placed point is
/// independent of the others, so its position is the one the app and `embed --place` give it).
fn map_neighbours(
    model: &Mlp,
    reference: ArrayView2<f32>,
    test: &Dataset,
    args: &NeighboursArgs,
    layer: usize,
) -> anyhow::Result<Vec<usize>> {
    let started = Instant::now();
    let params = TsneParams {
        perplexity: args.tsne.perplexity,
        seed: args.data.seed,
        ..TsneParams::default()
    };
    let map = tsne::tsne(reference, &params, None, None)
        .with_context(|| format!("t-SNE of layer {layer}"))?;
    let placed = place_into(
        model,
        reference,
        map.coords.view(),
        test,
        args.index + 1,
        layer,
        args.data.seed,
    )?
    .context("no test image placed")?;
    let at = placed.row(args.index);
    let found = nearest(map.coords.view(), at, args.k, None);
    note!(
        "layer {layer}: map made in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(found.into_iter().map(|nb| nb.index).collect())
}
