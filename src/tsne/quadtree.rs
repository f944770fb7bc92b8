//! Barnes-Hut repulsion over a quadtree (van der Maaten 2014, section 4.2), with scikit-learn's
//! rule from `sklearn/neighbors/_quad_tree.pyx` (`summarize`): a cell stands in for its points
//! when max_width^2 / d^2 < theta^2, d being the distance to its centre of mass; the forces
//! follow `compute_gradient_negative` in `sklearn/manifold/_barnes_hut_tsne.pyx`.
//!
//! The tree is rebuilt every iteration without allocating: points are sorted by Morton (Z-order)
//! code over the bounding box, so every cell is a contiguous range of the sorted points and the
//! build is a recursive split of ranges. The sort is a radix sort (four passes of 8 bits, a
//! fraction of the comparison sort it replaced, which was 5% of a 1,500-point run). Cells of at most `LEAF_SIZE` points are leaves whose
//! points are summed exactly (more accurate than one point per leaf, and faster). Points are
//! traversed in Morton order, so neighbouring tasks walk the same cells.

use rayon::prelude::*;

use super::gradient::Forces;
use super::simd::Simd;

/// Largest leaf.
const LEAF_SIZE: usize = 8;
/// Largest group of points that share one traversal and interaction list.
const GROUP_SIZE: usize = 128;
/// Groups per parallel task (fixed, so results do not depend on the thread count).
const GROUPS_PER_TASK: usize = 1;
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
#[derive(Debug)]
pub struct BarnesHut {
    theta2: f32,
    /// Kernels used (checked available at construction).
    simd: Simd,
    leaf_size: usize,
    group_size: usize,
    /// Point indices in Morton order.
    order: Vec<u32>,
    codes: Vec<u32>,
    /// (code, point) in Morton order, and the radix sort's second buffer.
    keyed: Vec<(u32, u32)>,
    spare: Vec<(u32, u32)>,
    /// Coordinates in Morton order.
    sx: Vec<f32>,
    sy: Vec<f32>,
    nodes: Vec<Node>,
    sorted_out: Vec<Forces>,
    /// Target groups as sorted-point ranges.
    groups: Vec<(u32, u32)>,
    stack: Vec<u32>,
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

/// `keyed` = (codes[i], i) for every point, sorted by code, ties by index: a stable LSD radix
/// sort from index order, 8 bits a pass (a pass whose byte is the same for all is skipped).
fn sort_by_code(codes: &[u32], keyed: &mut Vec<(u32, u32)>, spare: &mut Vec<(u32, u32)>) {
    keyed.clear();
    keyed.extend(codes.iter().enumerate().map(|(i, &c)| (c, i as u32)));
    spare.clear();
    spare.resize(keyed.len(), (0, 0));
    for shift in [0u32, 8, 16, 24] {
        let mut start = [0usize; 257];
        for &(c, _) in keyed.iter() {
            start[((c >> shift) & 0xff) as usize + 1] += 1;
        }
        if start[1..].contains(&keyed.len()) {
            continue;
        }
        for b in 0..256 {
            start[b + 1] += start[b];
        }
        for &entry in keyed.iter() {
            let b = ((entry.0 >> shift) & 0xff) as usize;
            spare[start[b]] = entry;
            start[b] += 1;
        }
        std::mem::swap(keyed, spare);
    }
}

impl BarnesHut {
    /// A workspace for `n` points and opening angle `theta`.
    pub fn new(n: usize, theta: f64, simd: Simd) -> Self {
        Self {
            theta2: (theta * theta) as f32,
            simd: if simd.available() { simd } else { Simd::Scalar },
            leaf_size: LEAF_SIZE,
            group_size: GROUP_SIZE,
            order: (0..n as u32).collect(),
            codes: vec![0; n],
            keyed: Vec::with_capacity(n),
            spare: Vec::with_capacity(n),
            sx: vec![0.0; n],
            sy: vec![0.0; n],
            nodes: Vec::with_capacity(2 * n),
            sorted_out: vec![[0.0; 5]; n],
            groups: Vec::new(),
            stack: Vec::new(),
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
        sort_by_code(&self.codes, &mut self.keyed, &mut self.spare);
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
        if end - start <= self.leaf_size || level == BITS {
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

    /// Collects the target groups: the highest cells with at most `GROUP_SIZE` points.
    fn collect_groups(&mut self) {
        self.groups.clear();
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        stack.push(0u32);
        while let Some(id) = stack.pop() {
            let node = self.nodes[id as usize];
            if node.n_children == 0 || (node.end - node.start) as usize <= self.group_size {
                self.groups.push((node.start, node.end));
            } else {
                // Reverse push keeps the groups in Morton order.
                stack.extend((node.first_child..node.first_child + node.n_children).rev());
            }
        }
        self.stack = stack;
    }

    /// The interaction list of the points `start..end` (sorted order, bounding box `bbox`):
    /// cells far enough from every point of the group, as (centre, count), and single points
    /// otherwise. A cell is summarised when max_width^2 < theta^2 d^2 with d the distance from
    /// its centre of mass to the group's box, so each point of the group sees it at least that
    /// far: the per-point rule of scikit-learn's `summarize`, applied conservatively to all of
    /// them at once. Cells holding a group point are always opened.
    fn interactions(
        &self,
        (start, end): (u32, u32),
        bbox: [f32; 4],
        stack: &mut Vec<u32>,
        list: &mut InteractionList,
    ) {
        list.clear();
        stack.clear();
        stack.push(0);
        let [x0, x1, y0, y1] = bbox;
        while let Some(id) = stack.pop() {
            let node = &self.nodes[id as usize];
            let overlaps = node.start < end && start < node.end;
            if !overlaps {
                let dx = (x0 - node.cx).max(node.cx - x1).max(0.0);
                let dy = (y0 - node.cy).max(node.cy - y1).max(0.0);
                if node.width2 < self.theta2 * (dx * dx + dy * dy) {
                    list.push(node.cx, node.cy, node.count);
                    continue;
                }
            }
            if node.n_children == 0 {
                for j in node.start as usize..node.end as usize {
                    list.push(self.sx[j], self.sy[j], 1.0);
                }
            } else {
                stack.extend(node.first_child..node.first_child + node.n_children);
            }
        }
        list.pad();
    }

    /// Repulsion for every point (original order) into `out[i][2..5]`, and `attraction(i)`
    /// into `out[i][0..2]` in the same parallel pass (one fork-join per iteration, not two).
    pub fn forces(&mut self, out: &mut [Forces], attraction: impl Fn(usize) -> [f32; 2] + Sync) {
        self.collect_groups();
        let mut sorted_out = std::mem::take(&mut self.sorted_out);
        let this = &*self;
        // Each task owns a fixed run of groups and writes only its points' slots.
        let groups = &this.groups;
        let tasks: Vec<(usize, usize)> = (0..groups.len())
            .step_by(GROUPS_PER_TASK)
            .map(|g| (g, (g + GROUPS_PER_TASK).min(groups.len())))
            .collect();
        // (`tasks` and `slices` are the only per-iteration allocations: a few hundred entries.)
        let mut slices: Vec<&mut [Forces]> = Vec::with_capacity(tasks.len());
        let mut rest: &mut [Forces] = &mut sorted_out;
        for &(g0, g1) in &tasks {
            let len = (groups[g1 - 1].1 - groups[g0].0) as usize;
            let (head, tail) = rest.split_at_mut(len);
            slices.push(head);
            rest = tail;
        }
        slices
            .into_par_iter()
            .zip(tasks.par_iter())
            .with_max_len(1)
            .for_each(|(slice, &(g0, g1))| {
                SCRATCH.with_borrow_mut(|(stack, list)| {
                    let base = groups[g0].0 as usize;
                    for &(start, end) in &groups[g0..g1] {
                        let (s, e) = (start as usize, end as usize);
                        let xs = &this.sx[s..e];
                        let ys = &this.sy[s..e];
                        let bbox = [
                            xs.iter().copied().fold(f32::MAX, f32::min),
                            xs.iter().copied().fold(f32::MIN, f32::max),
                            ys.iter().copied().fold(f32::MAX, f32::min),
                            ys.iter().copied().fold(f32::MIN, f32::max),
                        ];
                        this.interactions((start, end), bbox, stack, list);
                        for k in s..e {
                            let [fx, fy, z] = list.apply(this.sx[k], this.sy[k], this.simd);
                            let [ax, ay] = attraction(this.order[k] as usize);
                            // The point met itself once (as a single point): 1 in z, 0 force.
                            slice[k - base] = [ax, ay, fx, fy, z - 1.0];
                        }
                    }
                });
            });
        for (&i, r) in self.order.iter().zip(&sorted_out) {
            out[i as usize] = *r;
        }
        self.sorted_out = sorted_out;
    }
}

thread_local! {
    /// Per-thread traversal stack and interaction list, reused across groups and iterations so
    /// the iteration loop does not allocate once they have grown.
    static SCRATCH: std::cell::RefCell<(Vec<u32>, InteractionList)> =
        std::cell::RefCell::new((Vec::with_capacity(256), InteractionList::default()));
}

/// Sources a group of points interacts with, as structure-of-arrays padded to whole lanes.
#[derive(Debug, Default)]
struct InteractionList {
    x: Vec<f32>,
    y: Vec<f32>,
    m: Vec<f32>,
}

const LANES: usize = 8;

impl InteractionList {
    fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
        self.m.clear();
    }
    #[inline]
    fn push(&mut self, x: f32, y: f32, m: f32) {
        self.x.push(x);
        self.y.push(y);
        self.m.push(m);
    }
    fn pad(&mut self) {
        while !self.x.len().is_multiple_of(LANES) {
            self.push(super::gradient::PAD_COORD, super::gradient::PAD_COORD, 0.0);
        }
    }
    /// sum_s m_s w_s^2 (p - s) and sum_s m_s w_s over the sources s, w_s = 1 / (1 + |p - s|^2).
    #[inline]
    fn apply(&self, px: f32, py: f32, simd: Simd) -> [f32; 3] {
        #[cfg(target_arch = "x86_64")]
        {
            if simd == Simd::Avx2 {
                // SAFETY: the CPU supports AVX2 and FMA, checked just above.
                return unsafe { apply_avx2(&self.x, &self.y, &self.m, px, py) };
            }
        }
        apply_lanes::<false>(&self.x, &self.y, &self.m, px, py)
    }
}

#[inline(always)]
fn apply_lanes<const FMA: bool>(xs: &[f32], ys: &[f32], ms: &[f32], px: f32, py: f32) -> [f32; 3] {
    let madd = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    let mut fx = [0f32; LANES];
    let mut fy = [0f32; LANES];
    let mut z = [0f32; LANES];
    for ((bx, by), bm) in xs
        .chunks_exact(LANES)
        .zip(ys.chunks_exact(LANES))
        .zip(ms.chunks_exact(LANES))
    {
        for l in 0..LANES {
            let dx = px - bx[l];
            let dy = py - by[l];
            let q = 1.0 / madd(dy, dy, madd(dx, dx, 1.0));
            let mq = bm[l] * q;
            z[l] += mq;
            let mq2 = mq * q;
            fx[l] = madd(mq2, dx, fx[l]);
            fy[l] = madd(mq2, dy, fy[l]);
        }
    }
    let sum = |v: [f32; LANES]| ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
    [sum(fx), sum(fy), sum(z)]
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_avx2(xs: &[f32], ys: &[f32], ms: &[f32], px: f32, py: f32) -> [f32; 3] {
    use std::arch::x86_64::*;
    debug_assert!(xs.len().is_multiple_of(LANES) && ys.len() == xs.len() && ms.len() == xs.len());
    // SAFETY (whole block): AVX2/FMA are enabled here; every load reads 8 floats at an offset
    // c with c + 8 <= len, the lists being padded to whole lanes.
    unsafe {
        let one = _mm256_set1_ps(1.0);
        let two = _mm256_set1_ps(2.0);
        let (pxv, pyv) = (_mm256_set1_ps(px), _mm256_set1_ps(py));
        let zero = _mm256_setzero_ps();
        let (mut fx, mut fy, mut z) = (zero, zero, zero);
        for c in (0..xs.len()).step_by(LANES) {
            let dx = _mm256_sub_ps(pxv, _mm256_loadu_ps(xs.as_ptr().add(c)));
            let dy = _mm256_sub_ps(pyv, _mm256_loadu_ps(ys.as_ptr().add(c)));
            let d = _mm256_fmadd_ps(dy, dy, _mm256_fmadd_ps(dx, dx, one));
            // Reciprocal estimate plus one Newton step, as in the exact tile kernel.
            let r = _mm256_rcp_ps(d);
            let q = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, two));
            let mq = _mm256_mul_ps(_mm256_loadu_ps(ms.as_ptr().add(c)), q);
            z = _mm256_add_ps(z, mq);
            let mq2 = _mm256_mul_ps(mq, q);
            fx = _mm256_fmadd_ps(mq2, dx, fx);
            fy = _mm256_fmadd_ps(mq2, dy, fy);
        }
        let hsum = |v: __m256| {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        };
        [hsum(fx), hsum(fy), hsum(z)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_orders_by_code_then_index() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for (n, range) in [
            (0usize, 1u32),
            (1, 1),
            (1500, 1 << 12),
            (3000, u32::MAX),
            (700, 3),
        ] {
            // Small ranges make many ties; a full range exercises every byte.
            let codes: Vec<u32> = (0..n).map(|_| rng.random_range(0..range.max(1))).collect();
            let mut want: Vec<(u32, u32)> = codes
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, i as u32))
                .collect();
            want.sort_unstable();
            let (mut got, mut spare) = (vec![(7, 7)], Vec::new());
            sort_by_code(&codes, &mut got, &mut spare);
            assert_eq!(got, want, "n {n}, range {range}");
        }
    }
}
