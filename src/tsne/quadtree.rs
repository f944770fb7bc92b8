//! Barnes-Hut repulsion over a quadtree (van der Maaten 2014, section 4.2), with scikit-learn's
//! rule from `sklearn/neighbors/_quad_tree.pyx` (`summarize`): a cell stands in for its points
//! when max_width^2 / d^2 < theta^2, d being the distance to its centre of mass; the forces
//! follow `compute_gradient_negative` in `sklearn/manifold/_barnes_hut_tsne.pyx`.
//!
//! The tree is rebuilt every iteration without allocating: points are sorted by Morton (Z-order)
//! code over the bounding box, so every cell is a contiguous range of the sorted points and the
//! build is a recursive split of ranges. The sort is adaptive and the order barely changes
//! between iterations, so it costs little. Cells of at most `LEAF_SIZE` points are leaves whose
//! points are summed exactly (more accurate than one point per leaf, and faster). Points are
//! traversed in Morton order, so neighbouring tasks walk the same cells.

use rayon::prelude::*;

use super::gradient::{Forces, ROWS_PER_TASK};

/// Largest leaf.
const LEAF_SIZE: usize = 8;
/// Bits of the Morton code per axis (tree depth limit).
const BITS: u32 = 16;

#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// Centre of mass.
    cx: f32,
    cy: f32,
    /// Points below.
    count: f32,
    /// Squared largest side of the cell.
    width2: f32,
    /// Points `start..end` in Morton order.
    start: u32,
    end: u32,
    /// First child in `nodes`; children are contiguous. 0 for leaves.
    first_child: u32,
    n_children: u32,
}

/// A reusable Barnes-Hut workspace.
#[derive(Debug, Default)]
pub struct BarnesHut {
    theta2: f32,
    /// Point indices in Morton order.
    order: Vec<u32>,
    codes: Vec<u32>,
    keyed: Vec<(u32, u32)>,
    /// Coordinates in Morton order.
    sx: Vec<f32>,
    sy: Vec<f32>,
    nodes: Vec<Node>,
    sorted_out: Vec<[f32; 3]>,
}

#[inline]
fn spread(v: u32) -> u32 {
    let mut x = v & 0x0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333;
    x = (x | (x << 1)) & 0x5555_5555;
    x
}

impl BarnesHut {
    /// A workspace for `n` points and opening angle `theta`.
    pub fn new(n: usize, theta: f64) -> Self {
        Self {
            theta2: (theta * theta) as f32,
            order: (0..n as u32).collect(),
            codes: vec![0; n],
            keyed: Vec::with_capacity(n),
            sx: vec![0.0; n],
            sy: vec![0.0; n],
            nodes: Vec::with_capacity(2 * n),
            sorted_out: vec![[0.0; 3]; n],
        }
    }

    /// Rebuilds the tree over `y` (n x 2, row-major).
    pub fn build(&mut self, y: &[f32]) {
        let n = y.len() / 2;
        let (mut minx, mut maxx, mut miny, mut maxy) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in y.chunks_exact(2) {
            minx = minx.min(p[0]);
            maxx = maxx.max(p[0]);
            miny = miny.min(p[1]);
            maxy = maxy.max(p[1]);
        }
        // As `_QuadTree._init_cell`/`build_tree`: widen the box slightly so no point sits on
        // the upper edge.
        let wx = (maxx - minx).max(f32::MIN_POSITIVE) * (1.0 + 1e-3);
        let wy = (maxy - miny).max(f32::MIN_POSITIVE) * (1.0 + 1e-3);
        let scale = (1u32 << BITS) as f32;
        let (kx, ky) = (scale / wx, scale / wy);
        let max_cell = (1u32 << BITS) - 1;
        for (c, p) in self.codes.iter_mut().zip(y.chunks_exact(2)) {
            let qx = (((p[0] - minx) * kx) as u32).min(max_cell);
            let qy = (((p[1] - miny) * ky) as u32).min(max_cell);
            *c = spread(qx) | (spread(qy) << 1);
        }
        // Stable, adaptive sort of last iteration's order: nearly sorted, hence cheap; the key
        // includes the index so the result is a pure function of the codes.
        self.keyed.clear();
        self.keyed
            .extend(self.order.iter().map(|&i| (self.codes[i as usize], i)));
        self.keyed.sort();
        for (k, (o, &(_, i))) in self.order.iter_mut().zip(&self.keyed).enumerate() {
            *o = i;
            self.sx[k] = y[2 * i as usize];
            self.sy[k] = y[2 * i as usize + 1];
        }
        self.nodes.clear();
        self.nodes.push(Node::default());
        let width2 = wx.max(wy) * wx.max(wy);
        self.build_node(0, 0, n, 0, width2);
    }

    fn build_node(&mut self, id: usize, start: usize, end: usize, level: u32, width2: f32) {
        let mut node = Node {
            start: start as u32,
            end: end as u32,
            width2,
            count: (end - start) as f32,
            ..Node::default()
        };
        if end - start <= LEAF_SIZE || level == BITS {
            let (mut sx, mut sy) = (0f64, 0f64);
            for k in start..end {
                sx += f64::from(self.sx[k]);
                sy += f64::from(self.sy[k]);
            }
            let cnt = (end - start) as f64;
            node.cx = (sx / cnt) as f32;
            node.cy = (sy / cnt) as f32;
            self.nodes[id] = node;
            return;
        }
        // Split the range by the two code bits of this level.
        let shift = 2 * (BITS - 1 - level);
        let mut bounds = [start; 5];
        let codes = &self.keyed[start..end];
        for (q, b) in bounds.iter_mut().enumerate().skip(1).take(3) {
            *b = start + codes.partition_point(|&(c, _)| ((c >> shift) & 3) < q as u32);
        }
        bounds[4] = end;
        let first_child = self.nodes.len();
        let mut children = [(0usize, 0usize); 4];
        let mut n_children = 0;
        for q in 0..4 {
            if bounds[q + 1] > bounds[q] {
                children[n_children] = (bounds[q], bounds[q + 1]);
                n_children += 1;
            }
        }
        node.first_child = first_child as u32;
        node.n_children = n_children as u32;
        self.nodes.resize(first_child + n_children, Node::default());
        let (mut sx, mut sy) = (0f64, 0f64);
        for (c, &(s, e)) in children[..n_children].iter().enumerate() {
            self.build_node(first_child + c, s, e, level + 1, width2 / 4.0);
            let child = self.nodes[first_child + c];
            sx += f64::from(child.cx) * f64::from(child.count);
            sy += f64::from(child.cy) * f64::from(child.count);
        }
        node.cx = (sx / f64::from(node.count)) as f32;
        node.cy = (sy / f64::from(node.count)) as f32;
        self.nodes[id] = node;
    }

    /// Repulsion on the sorted point `k` (unnormalised force and share of Z).
    #[inline]
    fn point_repulsion(&self, k: usize, stack: &mut Vec<u32>) -> [f32; 3] {
        let (xi, yi) = (self.sx[k], self.sy[k]);
        let (mut fx, mut fy, mut z) = (0f32, 0f32, 0f32);
        stack.clear();
        stack.push(0);
        while let Some(id) = stack.pop() {
            let node = &self.nodes[id as usize];
            if node.n_children == 0 {
                for j in node.start as usize..node.end as usize {
                    let dx = xi - self.sx[j];
                    let dy = yi - self.sy[j];
                    let q = 1.0 / (1.0 + dx * dx + dy * dy);
                    z += q;
                    let q2 = q * q;
                    fx += q2 * dx;
                    fy += q2 * dy;
                }
                // The point itself, if in this leaf, added exactly 1 to z and 0 to the force.
                if (node.start as usize..node.end as usize).contains(&k) {
                    z -= 1.0;
                }
                continue;
            }
            let dx = xi - node.cx;
            let dy = yi - node.cy;
            let d2 = dx * dx + dy * dy;
            if node.width2 < self.theta2 * d2 {
                let q = 1.0 / (1.0 + d2);
                let mq = node.count * q;
                z += mq;
                let mq2 = mq * q;
                fx += mq2 * dx;
                fy += mq2 * dy;
            } else {
                stack.extend(node.first_child..node.first_child + node.n_children);
            }
        }
        [fx, fy, z]
    }

    /// Repulsion for every point (original order) into `out[i][2..5]`.
    pub fn repulsion(&mut self, out: &mut [Forces]) {
        let mut sorted_out = std::mem::take(&mut self.sorted_out);
        let this = &*self;
        sorted_out
            .par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each_init(
                || Vec::with_capacity(256),
                |stack, (c, block)| {
                    for (r, o) in block.iter_mut().enumerate() {
                        *o = this.point_repulsion(c * ROWS_PER_TASK + r, stack);
                    }
                },
            );
        for (&i, r) in self.order.iter().zip(&sorted_out) {
            let o = &mut out[i as usize];
            o[2] = r[0];
            o[3] = r[1];
            o[4] = r[2];
        }
        self.sorted_out = sorted_out;
    }
}
