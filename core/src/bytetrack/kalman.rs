//! Constant-velocity Kalman filter in `(x, y, a, h)` box space, as used by ByteTrack (and
//! DeepSORT before it).
//!
//! State (8): centre `x, y`, aspect ratio `a = w / h`, height `h`, and their velocities
//! `vx, vy, va, vh`. Measurement (4): `x, y, a, h`. Process and measurement noise are scaled by
//! the current height with the weights 1/20 (position) and 1/160 (velocity); aspect ratio noise is
//! fixed (1e-2 / 1e-5 in the motion model, 1e-1 in the measurement model). Everything is `f64`.
//!
//! The formulas are those of the official ByteTrack `kalman_filter.py`:
//! - initiate: `mean = [z, 0]`, `P = diag(std^2)` with
//!   `std = [2 wp h, 2 wp h, 1e-2, 2 wp h, 10 wv h, 10 wv h, 1e-5, 10 wv h]`;
//! - predict: `mean' = F mean`, `P' = F P F^T + Q`,
//!   `Q = diag([wp h, wp h, 1e-2, wp h, wv h, wv h, 1e-5, wv h]^2)` (h of the prior mean);
//! - project: `H mean`, `S = H P H^T + R`, `R = diag([wp h, wp h, 1e-1, wp h]^2)`;
//! - update: `K = P H^T S^-1` (through a Cholesky factor of S),
//!   `mean' = mean + K (z - H mean)`, `P' = P - K S K^T`.
//!
//! `F` is the identity with `dt = 1` in the upper-right block; `H` selects the first four
//! components. Products with `F` and `H` are written out (they only add or select entries), which
//! gives bit-identical results to the dense products.

// Index loops mirror the matrix formulas and the paper's pseudo-code.
#![allow(clippy::needless_range_loop)]

/// State mean `[x, y, a, h, vx, vy, va, vh]`.
pub type Mean = [f64; 8];
/// 8x8 state covariance, row-major.
pub type Covariance = [[f64; 8]; 8];
/// Measurement `[x, y, a, h]` (centre, aspect ratio w/h, height).
pub type Measurement = [f64; 4];

/// Weight of the position noise relative to the box height (official: `1. / 20`).
pub const STD_WEIGHT_POSITION: f64 = 1.0 / 20.0;
/// Weight of the velocity noise relative to the box height (official: `1. / 160`).
pub const STD_WEIGHT_VELOCITY: f64 = 1.0 / 160.0;

/// The ByteTrack Kalman filter (stateless: it holds only the model constants, which are fixed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KalmanFilter;

fn diag_sq(std: &[f64; 8]) -> Covariance {
    let mut m = [[0.0; 8]; 8];
    for i in 0..8 {
        m[i][i] = std[i] * std[i];
    }
    m
}

impl KalmanFilter {
    pub fn new() -> Self {
        KalmanFilter
    }

    /// Creates a track state from an unassociated measurement; velocities start at 0.
    pub fn initiate(&self, z: &Measurement) -> (Mean, Covariance) {
        let h = z[3];
        let wp = STD_WEIGHT_POSITION;
        let wv = STD_WEIGHT_VELOCITY;
        let mean = [z[0], z[1], z[2], z[3], 0.0, 0.0, 0.0, 0.0];
        let std = [
            2.0 * wp * h,
            2.0 * wp * h,
            1e-2,
            2.0 * wp * h,
            10.0 * wv * h,
            10.0 * wv * h,
            1e-5,
            10.0 * wv * h,
        ];
        (mean, diag_sq(&std))
    }

    /// Prediction step (constant velocity, dt = 1).
    pub fn predict(&self, mean: &Mean, cov: &Covariance) -> (Mean, Covariance) {
        let h = mean[3];
        let wp = STD_WEIGHT_POSITION;
        let wv = STD_WEIGHT_VELOCITY;
        let std = [wp * h, wp * h, 1e-2, wp * h, wv * h, wv * h, 1e-5, wv * h];

        let mut m = *mean;
        for i in 0..4 {
            m[i] = mean[i] + mean[i + 4];
        }
        // F P: row i (< 4) gets row i + 4 added.
        let mut fp = *cov;
        for i in 0..4 {
            for j in 0..8 {
                fp[i][j] = cov[i][j] + cov[i + 4][j];
            }
        }
        // (F P) F^T: column j (< 4) gets column j + 4 added.
        let mut p = fp;
        for row in p.iter_mut() {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for i in 0..8 {
            p[i][i] += std[i] * std[i];
        }
        (m, p)
    }

    /// Projects the state into measurement space: `(H mean, H P H^T + R)`.
    pub fn project(&self, mean: &Mean, cov: &Covariance) -> ([f64; 4], [[f64; 4]; 4]) {
        let h = mean[3];
        let wp = STD_WEIGHT_POSITION;
        let std = [wp * h, wp * h, 1e-1, wp * h];
        let mut s = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = cov[i][j];
            }
            s[i][i] += std[i] * std[i];
        }
        ([mean[0], mean[1], mean[2], mean[3]], s)
    }

    /// Correction step with measurement `z`.
    pub fn update(&self, mean: &Mean, cov: &Covariance, z: &Measurement) -> (Mean, Covariance) {
        let (proj_mean, s) = self.project(mean, cov);
        let l = cholesky4(&s);

        // K^T = S^-1 (P H^T)^T, column by column (8 right-hand sides of size 4).
        let mut kt = [[0.0; 8]; 4];
        for c in 0..8 {
            let b = [cov[c][0], cov[c][1], cov[c][2], cov[c][3]];
            let x = cholesky4_solve(&l, &b);
            for r in 0..4 {
                kt[r][c] = x[r];
            }
        }

        let innovation = [
            z[0] - proj_mean[0],
            z[1] - proj_mean[1],
            z[2] - proj_mean[2],
            z[3] - proj_mean[3],
        ];
        let mut new_mean = *mean;
        for (c, m) in new_mean.iter_mut().enumerate() {
            let mut acc = 0.0;
            for r in 0..4 {
                acc += innovation[r] * kt[r][c];
            }
            *m += acc;
        }

        // K S (8x4), then (K S) K^T.
        let mut ks = [[0.0; 4]; 8];
        for i in 0..8 {
            for j in 0..4 {
                let mut acc = 0.0;
                for k in 0..4 {
                    acc += kt[k][i] * s[k][j];
                }
                ks[i][j] = acc;
            }
        }
        let mut new_cov = *cov;
        for i in 0..8 {
            for j in 0..8 {
                let mut acc = 0.0;
                for k in 0..4 {
                    acc += ks[i][k] * kt[k][j];
                }
                new_cov[i][j] -= acc;
            }
        }
        (new_mean, new_cov)
    }
}

/// Lower Cholesky factor of a symmetric positive definite 4x4 matrix. A non-positive pivot
/// (which the filter does not produce for positive heights) is clamped to a tiny value instead
/// of producing NaN.
fn cholesky4(a: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
    let mut l = [[0.0; 4]; 4];
    for j in 0..4 {
        let mut d = a[j][j];
        for k in 0..j {
            d -= l[j][k] * l[j][k];
        }
        let d = if d > 0.0 {
            d.sqrt()
        } else {
            f64::MIN_POSITIVE.sqrt()
        };
        l[j][j] = d;
        for i in j + 1..4 {
            let mut v = a[i][j];
            for k in 0..j {
                v -= l[i][k] * l[j][k];
            }
            l[i][j] = v / d;
        }
    }
    l
}

/// Solves `L L^T x = b`.
fn cholesky4_solve(l: &[[f64; 4]; 4], b: &[f64; 4]) -> [f64; 4] {
    let mut y = [0.0; 4];
    for i in 0..4 {
        let mut v = b[i];
        for k in 0..i {
            v -= l[i][k] * y[k];
        }
        y[i] = v / l[i][i];
    }
    let mut x = [0.0; 4];
    for i in (0..4).rev() {
        let mut v = y[i];
        for k in i + 1..4 {
            v -= l[k][i] * x[k];
        }
        x[i] = v / l[i][i];
    }
    x
}

/// `(top-left x, top-left y, w, h)` -> `(centre x, centre y, w / h, h)`, as `tlwh_to_xyah`.
pub fn tlwh_to_xyah(tlwh: &[f64; 4]) -> Measurement {
    let [x, y, w, h] = *tlwh;
    [x + w / 2.0, y + h / 2.0, w / h, h]
}

/// State mean -> `(top-left x, top-left y, w, h)`, as `STrack.tlwh`.
pub fn mean_to_tlwh(mean: &Mean) -> [f64; 4] {
    let w = mean[2] * mean[3];
    let h = mean[3];
    [mean[0] - w / 2.0, mean[1] - h / 2.0, w, h]
}

/// State mean -> `(x1, y1, x2, y2)`, as `STrack.tlbr`.
pub fn mean_to_tlbr(mean: &Mean) -> [f64; 4] {
    tlwh_to_tlbr(&mean_to_tlwh(mean))
}

/// `(x, y, w, h)` -> `(x1, y1, x2, y2)` (`x2 = w + x`, as `ret[2:] += ret[:2]`).
pub fn tlwh_to_tlbr(tlwh: &[f64; 4]) -> [f64; 4] {
    [tlwh[0], tlwh[1], tlwh[2] + tlwh[0], tlwh[3] + tlwh[1]]
}

/// `(x1, y1, x2, y2)` -> `(x, y, w, h)`.
pub fn tlbr_to_tlwh(tlbr: &[f64; 4]) -> [f64; 4] {
    [tlbr[0], tlbr[1], tlbr[2] - tlbr[0], tlbr[3] - tlbr[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_mul(a: &Covariance, b: &Covariance) -> Covariance {
        let mut c = [[0.0; 8]; 8];
        for i in 0..8 {
            for j in 0..8 {
                for k in 0..8 {
                    c[i][j] += a[i][k] * b[k][j];
                }
            }
        }
        c
    }

    fn motion() -> Covariance {
        let mut f = [[0.0; 8]; 8];
        for i in 0..8 {
            f[i][i] = 1.0;
        }
        for i in 0..4 {
            f[i][i + 4] = 1.0;
        }
        f
    }

    fn transpose(a: &Covariance) -> Covariance {
        let mut t = [[0.0; 8]; 8];
        for i in 0..8 {
            for j in 0..8 {
                t[j][i] = a[i][j];
            }
        }
        t
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn initiate_matches_official_formula() {
        let kf = KalmanFilter::new();
        let (m, p) = kf.initiate(&[100.0, 200.0, 0.5, 80.0]);
        assert_eq!(m, [100.0, 200.0, 0.5, 80.0, 0.0, 0.0, 0.0, 0.0]);
        // 2 * (1/20) * 80 = 8 -> 64; 10 * (1/160) * 80 = 5 -> 25
        let want = [64.0, 64.0, 1e-4, 64.0, 25.0, 25.0, 1e-10, 25.0];
        for i in 0..8 {
            assert!(
                close(p[i][i], want[i], 1e-12),
                "{i}: {} vs {}",
                p[i][i],
                want[i]
            );
            for j in 0..8 {
                if i != j {
                    assert_eq!(p[i][j], 0.0);
                }
            }
        }
    }

    #[test]
    fn predict_equals_dense_f_p_ft_plus_q() {
        let kf = KalmanFilter::new();
        let (mut m, mut p) = kf.initiate(&[10.0, 20.0, 0.4, 150.0]);
        // Make the covariance dense-ish through a few updates and velocities.
        m[4] = 3.0;
        m[7] = -1.0;
        for k in 0..3 {
            let (m2, p2) = kf.predict(&m, &p);
            let (m3, p3) = kf.update(&m2, &p2, &[12.0 + k as f64, 21.0, 0.41, 149.0]);
            m = m3;
            p = p3;
        }
        let (pm, pp) = kf.predict(&m, &p);
        let f = motion();
        let fpft = dense_mul(&dense_mul(&f, &p), &transpose(&f));
        let h = m[3];
        let q = [
            h / 20.0,
            h / 20.0,
            1e-2,
            h / 20.0,
            h / 160.0,
            h / 160.0,
            1e-5,
            h / 160.0,
        ];
        for i in 0..8 {
            let mut want_m = 0.0;
            for k in 0..8 {
                want_m += f[i][k] * m[k];
            }
            assert!(close(pm[i], want_m, 1e-14));
            for j in 0..8 {
                let want = fpft[i][j] + if i == j { q[i] * q[i] } else { 0.0 };
                assert!(
                    close(pp[i][j], want, 1e-13),
                    "({i},{j}) {} vs {want}",
                    pp[i][j]
                );
            }
        }
    }

    #[test]
    fn update_matches_closed_form_per_axis() {
        // With a diagonal prior the filter decouples into 4 independent (pos, vel) pairs, so the
        // gain can be checked against the scalar formula K = P[:, i] / (P[i][i] + r_i).
        let kf = KalmanFilter::new();
        let (m0, p0) = kf.initiate(&[50.0, 60.0, 0.5, 100.0]);
        let (m, p) = kf.predict(&m0, &p0);
        let z = [53.0, 58.0, 0.52, 104.0];
        let (um, up) = kf.update(&m, &p, &z);
        let h = m[3];
        let r = [
            (h / 20.0).powi(2),
            (h / 20.0).powi(2),
            1e-2,
            (h / 20.0).powi(2),
        ];
        for i in 0..4 {
            let s = p[i][i] + r[i];
            let k_pos = p[i][i] / s;
            let k_vel = p[i + 4][i] / s;
            let innov = z[i] - m[i];
            assert!(close(um[i], m[i] + k_pos * innov, 1e-12));
            assert!(close(um[i + 4], m[i + 4] + k_vel * innov, 1e-12));
            assert!(close(up[i][i], p[i][i] - k_pos * k_pos * s, 1e-12));
            assert!(close(up[i + 4][i], p[i + 4][i] - k_vel * k_pos * s, 1e-12));
        }
        // Symmetric and positive on the diagonal.
        for i in 0..8 {
            assert!(up[i][i] > 0.0);
            for j in 0..8 {
                assert!(close(up[i][j], up[j][i], 1e-12));
            }
        }
    }

    #[test]
    fn update_pulls_towards_measurement_and_learns_velocity() {
        let kf = KalmanFilter::new();
        let (mut m, mut p) = kf.initiate(&tlwh_to_xyah(&[0.0, 0.0, 50.0, 100.0]));
        for t in 1..30 {
            let (pm, pp) = kf.predict(&m, &p);
            let z = tlwh_to_xyah(&[5.0 * t as f64, 0.0, 50.0, 100.0]);
            let (um, up) = kf.update(&pm, &pp, &z);
            m = um;
            p = up;
        }
        assert!((m[4] - 5.0).abs() < 0.1, "vx {}", m[4]);
        assert!((mean_to_tlbr(&m)[0] - 145.0).abs() < 1.0);
    }

    #[test]
    fn box_conversions_round_trip() {
        let tlbr = [10.0, 20.0, 60.0, 120.0];
        let tlwh = tlbr_to_tlwh(&tlbr);
        assert_eq!(tlwh, [10.0, 20.0, 50.0, 100.0]);
        let z = tlwh_to_xyah(&tlwh);
        assert_eq!(z, [35.0, 70.0, 0.5, 100.0]);
        let (m, _) = KalmanFilter.initiate(&z);
        assert_eq!(mean_to_tlwh(&m), tlwh);
        assert_eq!(mean_to_tlbr(&m), tlbr);
    }

    #[test]
    fn cholesky_solve_solves() {
        let a = [
            [4.0, 1.0, 0.5, 0.0],
            [1.0, 3.0, 0.2, 0.1],
            [0.5, 0.2, 2.0, 0.3],
            [0.0, 0.1, 0.3, 1.5],
        ];
        let l = cholesky4(&a);
        let b = [1.0, -2.0, 0.5, 3.0];
        let x = cholesky4_solve(&l, &b);
        for i in 0..4 {
            let mut v = 0.0;
            for j in 0..4 {
                v += a[i][j] * x[j];
            }
            assert!(close(v, b[i], 1e-13));
        }
    }
}
