//! Linear assignment with a cost limit (the `lap.lapjv(cost, extend_cost=True,
//! cost_limit=thresh)` call of ByteTrack's `matching.linear_assignment`), and the IoU costs.
//!
//! # Cost limit semantics
//! `lap.lapjv` with a finite `cost_limit` L solves the square problem of size `R + C` built as
//!
//! ```text
//!            C real columns     R dummy columns
//!  R rows  [   cost[i][j]    |     L / 2      ]
//!  C rows  [     L / 2       |       0        ]
//! ```
//!
//! and reports a real row/column pair as matched when the optimum uses it. Leaving a row and a
//! column unmatched costs `L / 2 + L / 2 = L`, so the optimum is the matching that maximises
//! `sum(L - cost)` over its pairs: a pair with cost above L is never taken, but a pair below L can
//! still be left out when it blocks a better combination (one good pair beats two mediocre ones).
//! This is not the same as "optimal assignment, then drop pairs above the threshold", and
//! ByteTrack's results depend on it, so [`linear_assignment`] builds the same extended matrix and
//! solves it exactly with the Jonker-Volgenant algorithm ([`lapjv`]).
//!
//! # The solver
//! [`lapjv`] is the shortest augmenting path algorithm of Jonker and Volgenant (1987, "A shortest
//! augmenting path algorithm for dense and sparse linear assignment problems"), with its four
//! phases: column reduction, reduction transfer, two rounds of augmenting row reduction, and
//! Dijkstra-like augmentation for the rows still free. Ties are broken as in the paper (first
//! minimal row in a column; the last unassigned column among the closest ones ends a path). Like
//! lapx (the `lap` provider the reference runs), [`linear_assignment`] solves the transposed
//! problem when there are more rows than columns. With distinct costs the optimum, and so the
//! set of accepted pairs, is unique anyway; on the 800 cases of
//! `tests/fixtures/bytetrack/assignment/lapjv_cases.json`, tie-heavy ones included, the result is
//! identical to `lap.lapjv` of lapx 0.11.

// Index loops mirror the matrix formulas and the paper's pseudo-code.
#![allow(clippy::needless_range_loop)]

/// Value that stands for a missing / non-finite cost (never preferred to a dummy).
const BIG: f64 = 1e12;

/// Solves the square assignment problem `cost` (`n x n`, row-major) exactly.
///
/// Returns `(x, y)`: `x[i]` is the column of row `i`, `y[j]` the row of column `j`. Non-finite
/// costs are treated as a very large finite cost.
pub fn lapjv(n: usize, cost: &[f64]) -> (Vec<usize>, Vec<usize>) {
    assert_eq!(cost.len(), n * n, "lapjv: cost must be n x n");
    let cost = sanitize(cost);
    lapjv_with(&Dense { n, cost: &cost })
}

/// Access to the square cost matrix of [`lapjv_with`]. `reduced_row` and `column_min` have
/// generic versions; the padded matrix of [`linear_assignment`] overrides them with loops over
/// its blocks, which compute the very same values (same subtractions, same first-minimum rule)
/// without branches per element.
trait CostMatrix {
    fn n(&self) -> usize;
    fn at(&self, i: usize, j: usize) -> f64;
    /// `out[j] = at(i, j) - v[j]` for all j.
    fn reduced_row(&self, i: usize, v: &[f64], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.at(i, j) - v[j];
        }
    }
    /// `(min, first row with the min)` of column j.
    fn column_min(&self, j: usize) -> (f64, usize) {
        let mut imin = 0;
        let mut min = self.at(0, j);
        for i in 1..self.n() {
            let cij = self.at(i, j);
            if cij < min {
                min = cij;
                imin = i;
            }
        }
        (min, imin)
    }
}

struct Dense<'a> {
    n: usize,
    cost: &'a [f64],
}

impl CostMatrix for Dense<'_> {
    fn n(&self) -> usize {
        self.n
    }
    #[inline]
    fn at(&self, i: usize, j: usize) -> f64 {
        self.cost[i * self.n + j]
    }
    fn reduced_row(&self, i: usize, v: &[f64], out: &mut [f64]) {
        let row = &self.cost[i * self.n..(i + 1) * self.n];
        for ((o, c), vj) in out.iter_mut().zip(row).zip(v) {
            *o = c - vj;
        }
    }
}

/// The `lap.lapjv` cost-limit extension of an `r x c` matrix: `[[real, half], [half, 0]]`, size
/// `r + c`.
struct Padded<'a> {
    r: usize,
    c: usize,
    real: &'a [f64],
    half: f64,
}

impl CostMatrix for Padded<'_> {
    fn n(&self) -> usize {
        self.r + self.c
    }
    #[inline]
    fn at(&self, i: usize, j: usize) -> f64 {
        if i < self.r {
            if j < self.c {
                self.real[i * self.c + j]
            } else {
                self.half
            }
        } else if j < self.c {
            self.half
        } else {
            0.0
        }
    }
    fn reduced_row(&self, i: usize, v: &[f64], out: &mut [f64]) {
        let (left_v, right_v) = v.split_at(self.c);
        let (left, right) = out.split_at_mut(self.c);
        if i < self.r {
            let row = &self.real[i * self.c..(i + 1) * self.c];
            for ((o, c), vj) in left.iter_mut().zip(row).zip(left_v) {
                *o = c - vj;
            }
            for (o, vj) in right.iter_mut().zip(right_v) {
                *o = self.half - vj;
            }
        } else {
            for (o, vj) in left.iter_mut().zip(left_v) {
                *o = self.half - vj;
            }
            for (o, vj) in right.iter_mut().zip(right_v) {
                *o = 0.0 - vj;
            }
        }
    }
    fn column_min(&self, j: usize) -> (f64, usize) {
        // Rows 0..r, then rows r..n (all equal: the first of them is the candidate).
        let (mut min, mut imin, rest) = if j < self.c {
            let mut imin = 0;
            let mut min = self.real[j];
            for i in 1..self.r {
                let cij = self.real[i * self.c + j];
                if cij < min {
                    min = cij;
                    imin = i;
                }
            }
            (min, imin, self.half)
        } else {
            (self.half, 0, 0.0)
        };
        if self.c > 0 && rest < min {
            min = rest;
            imin = self.r;
        }
        (min, imin)
    }
}

/// Finite copy of `cost` (only allocates when something is not finite).
fn sanitize(cost: &[f64]) -> std::borrow::Cow<'_, [f64]> {
    if cost.iter().all(|c| c.is_finite()) {
        return std::borrow::Cow::Borrowed(cost);
    }
    std::borrow::Cow::Owned(
        cost.iter()
            .map(|&c| {
                if c.is_finite() {
                    c.clamp(-BIG, BIG)
                } else if c == f64::NEG_INFINITY {
                    -BIG
                } else {
                    BIG
                }
            })
            .collect(),
    )
}

/// [`lapjv`] on an `n x n` matrix given as a function (so that the padded matrix of
/// [`linear_assignment`] never has to be written out).
fn lapjv_with<M: CostMatrix>(m: &M) -> (Vec<usize>, Vec<usize>) {
    let n = m.n();
    let c = |i: usize, j: usize| m.at(i, j);
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    const NONE: usize = usize::MAX;

    let mut x = vec![NONE; n]; // column of row i
    let mut y = vec![NONE; n]; // row of column j
    let mut v = vec![0.0f64; n]; // column prices

    // --- Column reduction (columns in reverse order, as in the paper) ---
    let mut times_min = vec![0u32; n];
    for j in (0..n).rev() {
        let (min, imin) = m.column_min(j);
        v[j] = min;
        times_min[imin] += 1;
        if times_min[imin] == 1 {
            x[imin] = j;
            y[j] = imin;
        }
    }

    // --- Reduction transfer ---
    let mut free: Vec<usize> = Vec::with_capacity(n);
    let mut red = vec![0.0f64; n]; // reduced costs of one row
    for i in 0..n {
        if x[i] == NONE {
            free.push(i);
        } else if times_min[i] == 1 {
            let j1 = x[i];
            let mut min = f64::INFINITY;
            m.reduced_row(i, &v, &mut red);
            for (j, &r) in red.iter().enumerate() {
                if j != j1 && r < min {
                    min = r;
                }
            }
            if min.is_finite() {
                v[j1] -= min;
            }
        }
    }

    // --- Augmenting row reduction, twice ---
    for _ in 0..2 {
        if free.is_empty() {
            break;
        }
        let previous = std::mem::take(&mut free);
        let mut queue = previous;
        let mut k = 0usize;
        let mut next_free: Vec<usize> = Vec::with_capacity(queue.len());
        // Guard against cycling through float round-off (the paper's version terminates in exact
        // arithmetic); after this many steps displaced rows are deferred instead of revisited.
        let mut steps = 0usize;
        let max_steps = n.saturating_mul(n).max(16);
        while k < queue.len() {
            let i = queue[k];
            k += 1;
            steps += 1;
            // Lowest and second lowest reduced cost in row i.
            m.reduced_row(i, &v, &mut red);
            let mut j1 = 0;
            let mut umin = red[0];
            let mut j2 = NONE;
            let mut usubmin = f64::INFINITY;
            for j in 1..n {
                let h = red[j];
                if h < usubmin {
                    if h >= umin {
                        usubmin = h;
                        j2 = j;
                    } else {
                        usubmin = umin;
                        umin = h;
                        j2 = j1;
                        j1 = j;
                    }
                }
            }
            let mut i0 = y[j1];
            let lowers = umin < usubmin;
            if lowers {
                // Make j1 as attractive for row i as the runner-up column.
                v[j1] -= usubmin - umin;
            } else if i0 != NONE && j2 != NONE {
                // Tie: take the second column instead of displacing j1's row.
                j1 = j2;
                i0 = y[j2];
            }
            x[i] = j1;
            y[j1] = i;
            if i0 != NONE {
                x[i0] = NONE;
                if lowers && steps < max_steps {
                    // Process the displaced row next.
                    k -= 1;
                    queue[k] = i0;
                } else {
                    next_free.push(i0);
                }
            }
        }
        free = next_free;
    }

    // --- Augmentation: shortest path from each remaining free row ---
    let mut d = vec![0.0f64; n];
    let mut pred = vec![0usize; n];
    let mut cols: Vec<usize> = (0..n).collect();
    for &f in &free {
        m.reduced_row(f, &v, &mut d);
        for j in 0..n {
            pred[j] = f;
            cols[j] = j;
        }
        // cols[..low] = ready (shortest distance final), cols[low..up] = to scan (distance ==
        // min), cols[up..] = to do.
        let mut low = 0usize;
        let mut up = 0usize;
        let mut n_ready = 0usize;
        let mut min = 0.0f64;
        let end_j: usize = 'search: loop {
            if up == low {
                // Collect the to-do columns at minimal distance.
                n_ready = low;
                min = d[cols[up]];
                up += 1;
                // The range is fixed at loop entry (as the paper's `for k := up + 1 to n`).
                #[allow(clippy::mut_range_bound)]
                for k in up..n {
                    let j = cols[k];
                    let h = d[j];
                    if h <= min {
                        if h < min {
                            up = low;
                            min = h;
                        }
                        cols[k] = cols[up];
                        cols[up] = j;
                        up += 1;
                    }
                }
                // An unassigned column among them ends the path (the last one, as the paper).
                let mut found = NONE;
                for &j in &cols[low..up] {
                    if y[j] == NONE {
                        found = j;
                    }
                }
                if found != NONE {
                    break 'search found;
                }
            }
            // Scan the next column at minimal distance: relax through its row.
            let j1 = cols[low];
            low += 1;
            let i = y[j1];
            let u1 = c(i, j1) - v[j1] - min;
            let mut k = up;
            while k < n {
                let j = cols[k];
                let h = c(i, j) - v[j] - u1;
                if h < d[j] {
                    d[j] = h;
                    pred[j] = i;
                    if h == min {
                        if y[j] == NONE {
                            break 'search j;
                        }
                        cols[k] = cols[up];
                        cols[up] = j;
                        up += 1;
                    }
                }
                k += 1;
            }
        };
        // Update the prices of the ready columns.
        for &j in &cols[..n_ready] {
            v[j] += d[j] - min;
        }
        // Augment along the path.
        let mut j = end_j;
        loop {
            let i = pred[j];
            y[j] = i;
            let next = x[i];
            x[i] = j;
            if i == f {
                break;
            }
            j = next;
        }
    }
    (x, y)
}

/// Result of [`linear_assignment`]: matched `(row, col)` pairs in increasing row order, and the
/// unmatched rows and columns in increasing order (the order of ByteTrack's
/// `matching.linear_assignment`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub matches: Vec<(usize, usize)>,
    pub unmatched_rows: Vec<usize>,
    pub unmatched_cols: Vec<usize>,
}

/// `matching.linear_assignment(cost, thresh)`: optimal assignment of the `rows x cols` matrix
/// (row-major) with the `lap.lapjv(..., extend_cost=True, cost_limit=thresh)` padding.
pub fn linear_assignment(rows: usize, cols: usize, cost: &[f64], thresh: f64) -> Assignment {
    assert_eq!(
        cost.len(),
        rows * cols,
        "linear_assignment: cost must be rows x cols"
    );
    if rows == 0 || cols == 0 {
        return Assignment {
            matches: Vec::new(),
            unmatched_rows: (0..rows).collect(),
            unmatched_cols: (0..cols).collect(),
        };
    }
    // lapx (the `lap` provider the reference runs) solves the transposed problem when there are
    // more rows than columns; that only changes which optimum is picked when several are optimal
    // (exact ties), but it is cheap to do the same.
    let transpose = rows > cols;
    let cost = sanitize(cost);
    let (r, c, real): (usize, usize, std::borrow::Cow<'_, [f64]>) = if transpose {
        let mut t = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = cost[i * cols + j];
            }
        }
        (cols, rows, std::borrow::Cow::Owned(t))
    } else {
        (rows, cols, cost)
    };
    let half = if thresh.is_finite() {
        (thresh / 2.0).clamp(-BIG, BIG)
    } else {
        BIG
    };
    let (x, y) = lapjv_with(&Padded {
        r,
        c,
        real: &real,
        half,
    });
    // Row -> column map of the original orientation (NONE when unmatched).
    let (row_to_col, col_to_row) = if transpose { (&y, &x) } else { (&x, &y) };
    let mut out = Assignment::default();
    for i in 0..rows {
        let j = row_to_col[i];
        if j < cols {
            out.matches.push((i, j));
        } else {
            out.unmatched_rows.push(i);
        }
    }
    for j in 0..cols {
        if col_to_row[j] >= rows {
            out.unmatched_cols.push(j);
        }
    }
    out
}

/// IoU of two `(x1, y1, x2, y2)` boxes with the "+1" pixel convention of `cython_bbox`
/// (`bbox_overlaps`), which the official ByteTrack uses: areas `(x2 - x1 + 1) * (y2 - y1 + 1)`,
/// intersection sides `min - max + 1`, 0 unless both sides are positive. Same operations, same
/// order, in `f64`.
#[inline]
pub fn bbox_iou(a: &[f64; 4], q: &[f64; 4]) -> f64 {
    let iw = a[2].min(q[2]) - a[0].max(q[0]) + 1.0;
    if iw > 0.0 {
        let ih = a[3].min(q[3]) - a[1].max(q[1]) + 1.0;
        if ih > 0.0 {
            let box_area = (q[2] - q[0] + 1.0) * (q[3] - q[1] + 1.0);
            let ua = (a[2] - a[0] + 1.0) * (a[3] - a[1] + 1.0) + box_area - iw * ih;
            return iw * ih / ua;
        }
    }
    0.0
}

/// `matching.iou_distance`: `1 - IoU` for every (a, b) pair, row-major `a.len() x b.len()`.
pub fn iou_distance(a: &[[f64; 4]], b: &[[f64; 4]]) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for ta in a {
        for tb in b {
            out.push(1.0 - bbox_iou(ta, tb));
        }
    }
    out
}

/// `matching.fuse_score`: `1 - (1 - cost) * score` with the score of each column (detection).
pub fn fuse_score(cost: &mut [f64], cols: usize, scores: &[f64]) {
    if cols == 0 {
        return;
    }
    assert_eq!(scores.len(), cols);
    for row in cost.chunks_mut(cols) {
        for (c, s) in row.iter_mut().zip(scores) {
            let iou_sim = 1.0 - *c;
            *c = 1.0 - iou_sim * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive optimum over permutations (small n).
    fn brute_force(n: usize, cost: &[f64]) -> f64 {
        fn rec(n: usize, cost: &[f64], row: usize, used: &mut Vec<bool>, acc: f64, best: &mut f64) {
            if row == n {
                if acc < *best {
                    *best = acc;
                }
                return;
            }
            for j in 0..n {
                if !used[j] {
                    used[j] = true;
                    rec(n, cost, row + 1, used, acc + cost[row * n + j], best);
                    used[j] = false;
                }
            }
        }
        let mut best = f64::INFINITY;
        rec(n, cost, 0, &mut vec![false; n], 0.0, &mut best);
        best
    }

    /// Deterministic xorshift for test matrices.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn check_perm(n: usize, x: &[usize], y: &[usize]) {
        let mut seen = vec![false; n];
        for i in 0..n {
            assert!(x[i] < n);
            assert!(!seen[x[i]], "column used twice");
            seen[x[i]] = true;
            assert_eq!(y[x[i]], i);
        }
    }

    #[test]
    fn lapjv_is_optimal_on_random_matrices() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for trial in 0..400 {
            let n = 1 + trial % 7;
            let integer = trial % 3 == 0; // many ties
            let cost: Vec<f64> = (0..n * n)
                .map(|_| {
                    if integer {
                        (rng.next() * 4.0).floor()
                    } else {
                        rng.next()
                    }
                })
                .collect();
            let (x, y) = lapjv(n, &cost);
            check_perm(n, &x, &y);
            let total: f64 = (0..n).map(|i| cost[i * n + x[i]]).sum();
            let best = brute_force(n, &cost);
            assert!(
                (total - best).abs() < 1e-9,
                "trial {trial}: {total} vs {best} for {cost:?}"
            );
        }
    }

    #[test]
    fn lapjv_larger_matrix_is_a_permutation_with_tight_duals() {
        // No brute force at n = 60; check optimality through complementary slackness instead:
        // with u_i = c[i][x_i] - v_j..., verify no negative reduced cost cycle by comparing with a
        // simple O(n^3) Hungarian implementation.
        let mut rng = Rng(12345);
        for &n in &[20usize, 60, 120] {
            let cost: Vec<f64> = (0..n * n).map(|_| rng.next()).collect();
            let (x, y) = lapjv(n, &cost);
            check_perm(n, &x, &y);
            let total: f64 = (0..n).map(|i| cost[i * n + x[i]]).sum();
            let best = hungarian(n, &cost);
            assert!((total - best).abs() < 1e-9, "n={n}: {total} vs {best}");
        }
    }

    /// Textbook O(n^3) Hungarian (potentials, shortest augmenting paths), for cross-checking.
    fn hungarian(n: usize, a: &[f64]) -> f64 {
        let inf = f64::INFINITY;
        let mut u = vec![0.0; n + 1];
        let mut v = vec![0.0; n + 1];
        let mut p = vec![0usize; n + 1];
        let mut way = vec![0usize; n + 1];
        for i in 1..=n {
            p[0] = i;
            let mut j0 = 0;
            let mut minv = vec![inf; n + 1];
            let mut used = vec![false; n + 1];
            loop {
                used[j0] = true;
                let i0 = p[j0];
                let mut delta = inf;
                let mut j1 = 0;
                for j in 1..=n {
                    if !used[j] {
                        let cur = a[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                        if cur < minv[j] {
                            minv[j] = cur;
                            way[j] = j0;
                        }
                        if minv[j] < delta {
                            delta = minv[j];
                            j1 = j;
                        }
                    }
                }
                for j in 0..=n {
                    if used[j] {
                        u[p[j]] += delta;
                        v[j] -= delta;
                    } else {
                        minv[j] -= delta;
                    }
                }
                j0 = j1;
                if p[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = way[j0];
                p[j0] = p[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
        (1..=n).map(|j| a[(p[j] - 1) * n + (j - 1)]).sum()
    }

    /// Only `at` from the padded matrix: the trait's generic `reduced_row` / `column_min`.
    struct Generic<'a>(&'a Padded<'a>);
    impl CostMatrix for Generic<'_> {
        fn n(&self) -> usize {
            self.0.n()
        }
        fn at(&self, i: usize, j: usize) -> f64 {
            self.0.at(i, j)
        }
    }

    #[test]
    fn padded_block_loops_equal_generic_definitions() {
        let mut rng = Rng(4242);
        for trial in 0..200 {
            let r = 1 + trial % 5;
            let c = 1 + (trial / 5) % 5;
            // Quantised values so that ties with `half` and between rows happen.
            let real: Vec<f64> = (0..r * c)
                .map(|_| (rng.next() * 5.0).floor() / 5.0)
                .collect();
            let half = [0.4, 0.0, -0.2, 0.2][trial % 4];
            let p = Padded {
                r,
                c,
                real: &real,
                half,
            };
            let g = Generic(&p);
            let n = r + c;
            let v: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
            for j in 0..n {
                assert_eq!(p.column_min(j), g.column_min(j), "trial {trial} column {j}");
            }
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            for i in 0..n {
                p.reduced_row(i, &v, &mut a);
                g.reduced_row(i, &v, &mut b);
                assert_eq!(a, b, "trial {trial} row {i}");
            }
            assert_eq!(lapjv_with(&p), lapjv_with(&g), "trial {trial}");
        }
    }

    #[test]
    fn cost_limit_prefers_one_good_pair_over_two_mediocre() {
        // Plain optimal assignment takes (0,1) + (1,0) = 1.0 (both under 0.8); with the lapjv
        // padding, (0,0) alone is worth 0.8 - 0.1 = 0.7 > (0.3 + 0.3) = 0.6.
        let cost = [0.1, 0.5, 0.5, 0.95];
        let a = linear_assignment(2, 2, &cost, 0.8);
        assert_eq!(a.matches, vec![(0, 0)]);
        assert_eq!(a.unmatched_rows, vec![1]);
        assert_eq!(a.unmatched_cols, vec![1]);
    }

    #[test]
    fn cost_limit_rejects_pairs_above_threshold() {
        let cost = [0.9, 0.85, 0.95, 0.81];
        let a = linear_assignment(2, 2, &cost, 0.8);
        assert!(a.matches.is_empty());
        assert_eq!(a.unmatched_rows, vec![0, 1]);
        assert_eq!(a.unmatched_cols, vec![0, 1]);
    }

    #[test]
    fn cost_limit_rectangular() {
        // 3 tracks, 2 detections (the python example: x = [0, 1, -1]).
        let cost = [0.1, 0.9, 0.85, 0.2, 0.3, 0.79];
        let a = linear_assignment(3, 2, &cost, 0.8);
        assert_eq!(a.matches, vec![(0, 0), (1, 1)]);
        assert_eq!(a.unmatched_rows, vec![2]);
        assert!(a.unmatched_cols.is_empty());
        // 1 track, 3 detections.
        let cost = [0.7, 0.2, 0.5];
        let a = linear_assignment(1, 3, &cost, 0.5);
        assert_eq!(a.matches, vec![(0, 1)]);
        assert_eq!(a.unmatched_cols, vec![0, 2]);
    }

    #[test]
    fn empty_inputs() {
        let a = linear_assignment(0, 3, &[], 0.8);
        assert_eq!(a.unmatched_cols, vec![0, 1, 2]);
        let a = linear_assignment(2, 0, &[], 0.8);
        assert_eq!(a.unmatched_rows, vec![0, 1]);
        assert_eq!(lapjv(0, &[]), (vec![], vec![]));
    }

    #[test]
    fn padding_equals_max_weight_matching_brute_force() {
        // For random rectangular problems, the accepted set must maximise sum(thresh - cost).
        let mut rng = Rng(777);
        for trial in 0..300 {
            let rows = 1 + trial % 4;
            let cols = 1 + (trial / 4) % 4;
            let cost: Vec<f64> = (0..rows * cols).map(|_| rng.next()).collect();
            let thresh = 0.3 + 0.5 * rng.next();
            let a = linear_assignment(rows, cols, &cost, thresh);
            let got: f64 = a
                .matches
                .iter()
                .map(|&(i, j)| thresh - cost[i * cols + j])
                .sum();
            // brute force over partial matchings
            fn best(
                rows: usize,
                cols: usize,
                cost: &[f64],
                t: f64,
                r: usize,
                used: &mut Vec<bool>,
            ) -> f64 {
                if r == rows {
                    return 0.0;
                }
                let mut b = best(rows, cols, cost, t, r + 1, used);
                for j in 0..cols {
                    if !used[j] {
                        used[j] = true;
                        b = b.max(t - cost[r * cols + j] + best(rows, cols, cost, t, r + 1, used));
                        used[j] = false;
                    }
                }
                b
            }
            let want = best(rows, cols, &cost, thresh, 0, &mut vec![false; cols]);
            assert!((got - want).abs() < 1e-12, "trial {trial}: {got} vs {want}");
            for &(i, j) in &a.matches {
                assert!(cost[i * cols + j] <= thresh);
            }
        }
    }

    #[test]
    fn non_finite_costs_do_not_hang() {
        let cost = [f64::NAN, 0.2, f64::INFINITY, 0.1];
        let a = linear_assignment(2, 2, &cost, 0.8);
        assert_eq!(a.matches, vec![(1, 1)]);
    }

    #[test]
    fn iou_uses_plus_one_convention() {
        let a = [0.0, 0.0, 9.0, 9.0]; // 10 x 10 with +1
        assert_eq!(bbox_iou(&a, &a), 1.0);
        let b = [5.0, 0.0, 14.0, 9.0]; // overlap 5 x 10 = 50, union 150
        assert!((bbox_iou(&a, &b) - 50.0 / 150.0).abs() < 1e-15);
        let c = [10.0, 0.0, 19.0, 9.0]; // touching: iw = 9 - 10 + 1 = 0
        assert_eq!(bbox_iou(&a, &c), 0.0);
        let d = iou_distance(&[a], &[a, b, c]);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], 0.0);
        assert_eq!(d[2], 1.0);
    }

    #[test]
    fn fuse_score_formula() {
        let mut cost = vec![0.2, 0.5, 1.0, 0.0];
        fuse_score(&mut cost, 2, &[0.9, 0.5]);
        let want = [
            1.0 - (1.0 - 0.2) * 0.9,
            1.0 - (1.0 - 0.5) * 0.5,
            1.0,
            1.0 - 0.5,
        ];
        for (c, w) in cost.iter().zip(want) {
            assert!((c - w).abs() < 1e-15);
        }
    }
}
