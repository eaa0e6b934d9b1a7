"""The two tasks (fall, penn): windows for training (random, augmented) and for testing (fixed),
all in source pixels and turned into model input by `preprocess.normalize_window` only."""
import numpy as np

import data
from preprocess import FLIP_INDEX, normalize_window

# Joints a task's model multiplies by zero inside its graph (model.STGCNPP ignore_joints).
# Fall: the face (absent from most sets) and the elbows: MD4FD, which holds most of the real
# falls, has no elbows, and a model that sees them learns "no elbows = fall" (measured: a run
# with arms scored the NTU falling clip 0.26 at most, 0.85 with that clip's arms removed).
# MD4FD fills missing wrists with hip + a random offset; ignoring the wrists too (train.py
# --ignore-joints 1,2,3,4,7,8,9,10) costs held-out precision on arm-driven sports.
FALL_IGNORE_JOINTS = (1, 2, 3, 4, 7, 8)
PENN_IGNORE_JOINTS = (1, 2, 3, 4)

TASKS = {
    "fall": dict(name="fall_stgcnpp", T=48, min_frames=20, labels=data.FALL_LABELS,
                 speed=(0.6, 1.6), rot=12.0, short_prob=0.5, ignore_joints=FALL_IGNORE_JOINTS,
                 features=("joint", "bone", "motion")),
    "penn": dict(name="penn_action_stgcnpp", T=100, min_frames=20, labels=None,
                 speed=(0.8, 1.25), rot=10.0, short_prob=0.15, ignore_joints=PENN_IGNORE_JOINTS,
                 features=("joint",)),
}


# normal activity that looks most like a fall (class indices of the sets' label_names)
PENN_HARD = (2, 4, 9, 10, 11)        # bench_press, clean_and_jerk, pushup, situp, squat
JHMDB_HARD = (3, 4, 9, 10)           # jump, pick, sit, stand


def task_config(task):
    cfg = dict(TASKS[task])
    if task == "penn":
        _, names = data.load_penn()
        cfg["labels"] = names
    return cfg


# ------------------------------------------------------------------------------------------
# Augmentation (pixel space, before the contract's normalisation)
# ------------------------------------------------------------------------------------------

def resample(kp, start, r, L):
    """Frames at source positions start + r*k (k < L), linear interpolation of x, y; a joint
    is valid only if both neighbours are valid (score = the smaller)."""
    pos = start + r * np.arange(L)
    pos = np.clip(pos, 0, len(kp) - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, len(kp) - 1)
    a = (pos - i0)[:, None, None]
    out = (1 - a) * kp[i0] + a * kp[i1]
    out[..., 2] = np.where(a[..., 0] > 0, np.minimum(kp[i0][..., 2], kp[i1][..., 2]), kp[i0][..., 2])
    bad = out[..., 2] <= 0.01
    out[bad] = 0.0
    return out


def augment(f, rng, cfg, width, height):
    f = f.copy()
    valid = f[..., 2] > 0.01
    if rng.random() < 0.5:                                   # horizontal flip, L <-> R
        f[..., 0] = width - f[..., 0]
        f = f[:, FLIP_INDEX]
        valid = valid[:, FLIP_INDEX]
    if valid.any():
        cx, cy = f[..., 0][valid].mean(), f[..., 1][valid].mean()
        size = max(np.ptp(f[..., 0][valid]), np.ptp(f[..., 1][valid]), 1.0)
    else:
        cx, cy, size = width / 2, height / 2, 1.0
    th = np.deg2rad(rng.uniform(-cfg["rot"], cfg["rot"]))
    asp = np.exp(rng.uniform(np.log(0.85), np.log(1.18)))
    sc = np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
    x, y = f[..., 0] - cx, f[..., 1] - cy
    x, y = np.cos(th) * x - np.sin(th) * y, np.sin(th) * x + np.cos(th) * y
    f[..., 0] = x * asp * sc + cx + rng.uniform(-0.2, 0.2) * width
    f[..., 1] = y / asp * sc + cy + rng.uniform(-0.2, 0.2) * height
    if rng.random() < 0.6:                                   # detector jitter
        f[..., :2] += rng.normal(0, rng.uniform(0.003, 0.02) * size, f[..., :2].shape)
    drop = np.zeros(f.shape[:2], bool)
    drop |= rng.random(17)[None, :] < 0.05                   # joints missing for the window
    if rng.random() < 0.15:
        drop[:, [7, 8]] = True                               # no elbows (as MD4FD)
    drop |= rng.random(f.shape[:2]) < 0.03                   # per-frame misses
    if rng.random() < 0.6:                                   # detector-like scores
        f[..., 2] = np.where(valid, rng.uniform(0.25, 1.0, f.shape[:2]), f[..., 2])
    f[drop] = 0.0
    f[~valid] = 0.0
    return f


# ------------------------------------------------------------------------------------------
# Synthetic motion (fall task only; applied to real windows of normal activity)
# ------------------------------------------------------------------------------------------

def _pivot(pose):
    """Ground point under a pose: the ankle midpoint, else the lowest valid joint."""
    v = pose[:, 2] > 0.01
    if v[15] and v[16]:
        return (pose[15, :2] + pose[16, :2]) / 2
    if not v.any():
        return None
    low = np.argmax(np.where(v, pose[:, 1], -np.inf))
    return pose[low, :2].copy()


def synth_fall(f, rng, min_after=6):
    """A fall inserted into a real window of a standing person: from onset t0 the pose at t0
    (limbs drifting a little) rotates about the ground point, accelerating, by up to 100
    degrees and/or collapses vertically while widening (falls towards or away from the
    camera), until the body is lying (bounding box wider than tall), then stays down.
    At least `min_after` frames of the window follow the onset. None if unusable."""
    L = len(f)
    if L < min_after + 2:
        return None
    t0 = int(rng.integers(1, L - min_after + 1))
    base = f[t0].copy()
    piv = _pivot(base)
    if piv is None:
        return None
    d = int(rng.integers(6, 26))
    valid = base[:, 2] > 0.01
    rel0 = base[valid, :2] - piv
    for _ in range(20):                                      # must end lying: aspect h/w <= 1
        phi = np.deg2rad(rng.choice([-1, 1]) * rng.uniform(0, 100))
        c = rng.uniform(0.1, 1.0)
        spread = rng.uniform(0.0, 1.0)
        x, y = rel0[:, 0] * (1 + (1 - c) * spread), rel0[:, 1] * c
        x, y = np.cos(phi) * x - np.sin(phi) * y, np.sin(phi) * x + np.cos(phi) * y
        if np.ptp(y) <= np.ptp(x):
            break
    else:
        return None
    drift = rng.normal(0, 0.02, 2) * max(np.ptp(base[:, 1]), 1.0)
    flail = rng.normal(0, 0.08, (17, 2)) * max(np.ptp(base[:, 1]), 1.0)
    out = f.copy()
    for t in range(t0, L):
        p = min((t - t0 + 1) / d, 1.0)
        rel = base[:, :2] - piv
        rel[:, 1] *= 1 - p * (1 - c)
        rel[:, 0] *= 1 + p * (1 - c) * spread
        a = phi * p * p
        x = np.cos(a) * rel[:, 0] - np.sin(a) * rel[:, 1]
        y = np.sin(a) * rel[:, 0] + np.cos(a) * rel[:, 1]
        bump = np.sin(np.pi * p) * flail
        out[t, :, 0] = piv[0] + x + bump[:, 0] + drift[0] * p
        out[t, :, 1] = piv[1] + y + bump[:, 1] + drift[1] * p
        out[t, :, 2] = np.where(valid, base[:, 2], 0.0)
    out[out[..., 2] <= 0.01] = 0.0
    return out


def down_poses(items):
    """Real on-the-floor poses of the training split (URFD after the fall, UP-Fall fall-onward
    frames on the floor): end states for `synth_fall_to`."""
    out = []
    for s in items:
        if s["kind"] == "ends":
            kp = s["kp"][min(s["fall_onset"] + 10, len(s["kp"])):]
            out += list(kp[data.on_floor(kp)])
        elif s["kind"] == "frames":
            m = (s["flabel"] == 1) & s["down"]
            out += list(s["kp"][m])
    return np.array(out)


def _torso(pose):
    v = pose[:, 2] > 0.01
    if not (v[5] and v[6] and v[11] and v[12]):
        return None
    return np.linalg.norm((pose[5, :2] + pose[6, :2]) / 2 - (pose[11, :2] + pose[12, :2]) / 2)


def synth_fall_to(f, rng, poses, min_after=6):
    """A fall from a real standing pose into a real on-the-floor pose (lying, sitting, on all
    fours, ...): from onset t0 the frozen pose at t0 tips over (rotation about the ground point,
    accelerating) while blending into the target pose, scaled to the same torso length and put
    on the ground next to the feet; then the target pose stays with small drift."""
    L = len(f)
    if L < min_after + 2 or not len(poses):
        return None
    t0 = int(rng.integers(1, L - min_after + 1))
    base = f[t0].copy()
    piv = _pivot(base)
    tb = _torso(base)
    target = poses[rng.integers(len(poses))].copy()
    tt = _torso(target)
    if piv is None or not tb or not tt or tt < 1e-3:
        return None
    vt = target[:, 2] > 0.01
    if rng.random() < 0.5:                                   # mirror the target pose
        target[:, 0] = -target[:, 0]
        target = target[list(FLIP_INDEX)]
        vt = vt[list(FLIP_INDEX)]
    sc = tb / tt * rng.uniform(0.85, 1.15)
    tx = (target[:, 0] - target[vt, 0].mean()) * sc
    ty = (target[:, 1] - target[vt, 1].max()) * sc          # lowest joint on the ground
    side = rng.choice([-1, 1])
    tgt = np.stack([piv[0] + tx + side * rng.uniform(0, 0.6) * tb * 2,
                    piv[1] + ty + rng.uniform(-0.1, 0.1) * tb], axis=1)
    d = int(rng.integers(6, 26))
    phi = np.deg2rad(side * rng.uniform(30, 90))
    vb = base[:, 2] > 0.01
    drift = rng.normal(0, 0.03, 2) * tb
    out = f.copy()
    for t in range(t0, L):
        p = min((t - t0 + 1) / d, 1.0)
        rel = base[:, :2] - piv
        a = phi * p * p
        rx = piv[0] + np.cos(a) * rel[:, 0] - np.sin(a) * rel[:, 1]
        ry = piv[1] + np.sin(a) * rel[:, 0] + np.cos(a) * rel[:, 1]
        w = p * p
        out[t, :, 0] = (1 - w) * rx + w * tgt[:, 0] + drift[0] * p
        out[t, :, 1] = (1 - w) * ry + w * tgt[:, 1] + drift[1] * p
        valid = (vb & vt) if p < 1 else vt
        out[t, :, 2] = np.where(valid, np.where(p < 1, np.minimum(base[:, 2], target[:, 2]), target[:, 2]), 0.0)
    out[t0:, :, :2] += rng.normal(0, 0.01 * tb, out[t0:, :, :2].shape)
    out[out[..., 2] <= 0.01] = 0.0
    return out


def synth_fall_sit(f, rng, min_after=6):
    """A fall that ends sitting or kneeling on the floor rather than lying: from onset t0 the
    pose at t0 drops, accelerating, to a seated pose next to the feet (hips at floor level,
    legs stretched or folded out to one side, foreshortened when they point at the camera,
    torso within 45 degrees of upright) or a kneeling one (hips above the knees, knees and
    shins on the floor), then stays with small drift. These are the end states on_floor()
    rejects (the torso stays upright, the box stays taller than wide), so synth_fall_to never
    reaches them. None if unusable."""
    L = len(f)
    if L < min_after + 2:
        return None
    t0 = int(rng.integers(1, L - min_after + 1))
    base = f[t0].copy()
    vb = base[:, 2] > 0.01
    if not vb[[5, 6, 11, 12, 13, 14, 15, 16]].all():
        return None
    tb = _torso(base)
    hip = (base[11, :2] + base[12, :2]) / 2
    ground = (base[15, :2] + base[16, :2]) / 2
    thigh = np.mean([np.linalg.norm(base[h, :2] - base[k, :2]) for h, k in ((11, 13), (12, 14))])
    shin = np.mean([np.linalg.norm(base[k, :2] - base[a, :2]) for k, a in ((13, 15), (14, 16))])
    if not tb or ground[1] - hip[1] < 0.5 * tb:
        return None
    side = rng.choice([-1, 1])
    fs = rng.uniform(0.2, 1.0)                                # leg foreshortening
    end = base.copy()
    if rng.random() < 0.7:                                    # sitting on the floor
        new_hip = np.array([ground[0] + side * rng.uniform(-0.3, 0.3) * tb,
                            ground[1] - rng.uniform(0.05, 0.3) * tb])
        for h, kn, a in ((11, 13, 15), (12, 14, 16)):
            off = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)]) * tb
            ankle = new_hip + off + np.array([side * (thigh + shin) * fs * rng.uniform(0.5, 1.0),
                                              rng.uniform(0.0, 0.15) * tb])
            knee = (new_hip + ankle) / 2 - np.array([0.0, rng.uniform(0.0, 0.6) * thigh])
            end[h, :2], end[kn, :2], end[a, :2] = new_hip + off, knee, ankle
    else:                                                     # kneeling
        new_hip = np.array([ground[0], ground[1] - rng.uniform(0.4, 0.8) * thigh])
        for h, kn, a in ((11, 13, 15), (12, 14, 16)):
            off = np.array([rng.uniform(-0.1, 0.1), 0.0]) * tb
            knee = np.array([new_hip[0] + side * thigh * fs * rng.uniform(0.0, 0.6),
                             ground[1] - rng.uniform(0.0, 0.1) * tb])
            end[h, :2] = new_hip + off
            end[kn, :2] = knee + off
            end[a, :2] = knee + off + np.array([-side * shin * fs * rng.uniform(0.5, 1.0), 0.0])
    upper = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    lean = np.deg2rad(rng.uniform(-45, 45))
    rel = base[upper, :2] - hip
    end[upper, 0] = new_hip[0] + np.cos(lean) * rel[:, 0] - np.sin(lean) * rel[:, 1]
    end[upper, 1] = new_hip[1] + np.sin(lean) * rel[:, 0] + np.cos(lean) * rel[:, 1]
    d = int(rng.integers(6, 26))
    flail = rng.normal(0, 0.08, (17, 2)) * tb
    drift = rng.normal(0, 0.03, 2) * tb
    out = f.copy()
    for t in range(t0, L):
        p = min((t - t0 + 1) / d, 1.0)
        w = p * p
        out[t, :, :2] = (1 - w) * base[:, :2] + w * end[:, :2] + np.sin(np.pi * p) * flail + drift * p
        out[t, :, 2] = np.where(vb, base[:, 2], 0.0)
    out[t0:, :, :2] += rng.normal(0, 0.01 * tb, out[t0:, :, :2].shape)
    out[out[..., 2] <= 0.01] = 0.0
    return out


def synth_lean(f, rng):
    """Normal motion: the upper body (joints above the hips) leans forward/sideways by up
    to 40 degrees about the hip midpoint and maybe back (bowing, hugging, reaching)."""
    L = len(f)
    out = f.copy()
    t0 = int(rng.integers(0, max(L // 2, 1)))
    d = int(rng.integers(6, 40))
    phi = np.deg2rad(rng.choice([-1, 1]) * rng.uniform(10, 40))
    back = rng.random() < 0.5
    upper = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    for t in range(t0, L):
        p = min((t - t0 + 1) / d, 1.0)
        if back and t - t0 >= d:
            p = max(0.0, 1.0 - (t - t0 - d) / d)
        v = out[t, :, 2] > 0.01
        if not (v[11] and v[12]):
            continue
        hip = (out[t, 11, :2] + out[t, 12, :2]) / 2
        rel = out[t, upper, :2] - hip
        a = phi * p
        out[t, upper, 0] = hip[0] + np.cos(a) * rel[:, 0] - np.sin(a) * rel[:, 1]
        out[t, upper, 1] = hip[1] + np.sin(a) * rel[:, 0] + np.cos(a) * rel[:, 1]
    out[out[..., 2] <= 0.01] = 0.0
    return out


def _knee(hip, ankle, thigh, shin, forward):
    """Knee position for a hip and an ankle with the given segment lengths (two-link inverse
    kinematics), bent towards `forward` (+1: image right, -1: left)."""
    d = ankle - hip
    dist = float(np.linalg.norm(d))
    if dist < 1e-6:
        return hip.copy()
    dist_c = min(dist, thigh + shin - 1e-6)
    a = (thigh ** 2 - shin ** 2 + dist_c ** 2) / (2 * dist_c)
    h = np.sqrt(max(thigh ** 2 - a ** 2, 0.0))
    u = d / dist
    n = np.array([-u[1], u[0]])
    if n[0] * forward < 0:
        n = -n
    return hip + a * u + h * n


def synth_crouch(f, rng):
    """Normal motion: a deep bend or crouch with the feet on the ground (picking something up,
    tying a shoe, landing a jump): from t0 the hips sink towards the ankles (knees bend forward,
    segment lengths kept) while the upper body leans forward by 30-90 degrees about the hips;
    held for a while, then back up, or still down at the window's end. Half of them start as a
    landing: before t0 the whole body, feet included, comes down from up to 0.6 of its height
    (a jump off a box or a step). The torso can end horizontal, as in a fall, but the person
    stays on their feet with the hips above half their standing height. None if unusable."""
    L = len(f)
    if L < 10:
        return None
    v0 = f[:, [11, 12, 13, 14, 15, 16], 2].min(0) > 0.01
    if not v0.all():
        return None
    t0 = int(rng.integers(0, L - 5))
    d_down = int(rng.integers(3, 13))
    hold = int(rng.integers(0, 30))
    d_up = int(rng.integers(4, 16))
    depth = rng.uniform(0.15, 0.5)                      # share of the hip-ankle height lost
    lean = np.deg2rad(rng.uniform(30, 90))
    nose_dx = f[t0, 0, 0] - (f[t0, 5, 0] + f[t0, 6, 0]) / 2 if f[t0, 0, 2] > 0.01 else 0.0
    forward = np.sign(nose_dx) if abs(nose_dx) > 1e-3 and rng.random() < 0.8 else rng.choice([-1, 1])
    upper = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    out = f.copy()
    for t in range(t0, L):
        k = t - t0 + 1
        if k <= d_down:
            p = k / d_down
        elif k <= d_down + hold:
            p = 1.0
        else:
            p = max(0.0, 1.0 - (k - d_down - hold) / d_up)
        p = p * p * (3 - 2 * p)                         # smooth start and stop
        pose = out[t]
        hip_mid = (pose[11, :2] + pose[12, :2]) / 2
        ankle_mid = (pose[15, :2] + pose[16, :2]) / 2
        drop = p * depth * max(ankle_mid[1] - hip_mid[1], 0.0)
        back = -forward * p * depth * 0.35 * max(ankle_mid[1] - hip_mid[1], 0.0)
        shift = np.array([back, drop])
        rel = pose[upper, :2] - hip_mid
        a = forward * lean * p                          # positive angle turns the head forward
        ca, sa = np.cos(a), np.sin(a)
        new_upper = np.stack([ca * rel[:, 0] - sa * rel[:, 1], sa * rel[:, 0] + ca * rel[:, 1]], 1)
        for hip_i, knee_i, ankle_i in ((11, 13, 15), (12, 14, 16)):
            thigh = np.linalg.norm(pose[knee_i, :2] - pose[hip_i, :2])
            shin = np.linalg.norm(pose[ankle_i, :2] - pose[knee_i, :2])
            new_hip = pose[hip_i, :2] + shift
            pose[knee_i, :2] = _knee(new_hip, pose[ankle_i, :2], thigh, shin, forward)
            pose[hip_i, :2] = new_hip
        pose[upper, :2] = hip_mid + shift + new_upper
    if t0 > 0 and rng.random() < 0.5:                   # a landing: airborne before t0
        height = np.ptp(f[t0, f[t0, :, 2] > 0.01, 1])
        lift = rng.uniform(0.2, 0.6) * height
        d_fall = int(rng.integers(3, 9))
        for t in range(t0):
            k = t0 - t                                  # frames before touchdown
            out[t, :, 1] -= lift * min(k / d_fall, 1.0) ** 2
    out[out[..., 2] <= 0.01] = 0.0
    return out


# ------------------------------------------------------------------------------------------
# Training windows
# ------------------------------------------------------------------------------------------

class Sampler:
    def __init__(self, task, items, seed=0, synth=True, sit_falls=False):
        self.task = task
        self.sit_falls = sit_falls
        self.cfg = task_config(task)
        self.rng = np.random.default_rng(seed)
        cfg_synth = 1.0 if synth else 0.0
        self.synth = synth
        if task == "penn":
            self.pools = {None: [(1.0, items)]}
        else:
            by = lambda pred: [s for s in items if pred(s)]  # noqa: E731
            normal_clips = by(lambda s: s["kind"] == "clip" and s["label"] == 0)
            self.pools = {
                1: [(0.3, by(lambda s: s["kind"] == "ends")),
                    (0.3, by(lambda s: s["kind"] == "frames" and (s["flabel"] == 1).sum() >= 8)),
                    (0.4 * cfg_synth, normal_clips)],
                # hard negatives get their own share: lying/low exercise (Penn) and jumping,
                # sitting down, picking up (JHMDB) look most like a fall
                0: [(0.2, by(lambda s: s.get("cls") == "penn")),
                    (0.15, by(lambda s: s.get("cls") == "penn" and s["action"] in PENN_HARD)),
                    (0.15, by(lambda s: s.get("cls") == "jhmdb")),
                    (0.1, by(lambda s: s.get("cls") == "jhmdb" and s["action"] in JHMDB_HARD)),
                    (0.3, by(lambda s: s["source"] in ("urfd", "le2i") and s["kind"] == "clip")),
                    (0.1, by(lambda s: (s["kind"] == "ends" and s["fall_onset"] >= 30)
                             or (s["kind"] == "frames" and (s["flabel"] == 0).sum() >= 20)))],
            }
            self.down = down_poses(items)
            for k, v in self.pools.items():
                # a pool can be empty when a source is held out (train.py --hold-out-source):
                # the other pools of the class share its weight
                self.pools[k] = [(w, p) for w, p in v if w > 0 and p]
                assert self.pools[k], f"no training material for class {k}"

    def _pick(self, cls):
        pools = self.pools[cls]
        w = np.array([p[0] for p in pools])
        pool = pools[self.rng.choice(len(pools), p=w / w.sum())][1]
        return pool[self.rng.integers(len(pool))]

    def one(self):
        cfg, rng, T = self.cfg, self.rng, self.cfg["T"]
        want = None if self.task == "penn" else int(rng.random() < 0.4)
        for _ in range(200):
            item = self._pick(want)
            n = len(item["kp"])
            r = np.exp(rng.uniform(np.log(cfg["speed"][0]), np.log(cfg["speed"][1])))
            max_L = min(T, int((n - 1) / r) + 1)
            if max_L < 8:
                continue
            if rng.random() < cfg["short_prob"]:
                L = int(rng.integers(min(cfg["min_frames"], max_L), max_L + 1))
            else:
                L = max_L
            span = (L - 1) * r
            start = rng.uniform(0, n - 1 - span) if n - 1 - span > 0 else 0.0
            end = int(np.ceil(start + span)) + 1               # exclusive source end
            f = resample(item["kp"], start, r, L)
            if self.task == "penn":
                label = item["label"]
            else:
                label = data.window_label(item, min(end, n), min(end, n) - int(np.floor(start)))
                if label is None:
                    continue
                if label == 0 and want == 1:                 # synthetic fall into normal motion
                    if data.upright(f).mean() < 0.6:
                        continue
                    kind = rng.random()
                    if self.sit_falls and kind < 1 / 3:
                        f = synth_fall_sit(f, rng)
                    elif kind < (2 / 3 if self.sit_falls else 0.5):
                        f = synth_fall(f, rng)
                    else:
                        f = synth_fall_to(f, rng, self.down)
                    if f is None:
                        continue
                    label = 1
                elif label == 0 and self.synth and rng.random() < 0.25:
                    if rng.random() < 0.5:
                        f = synth_lean(f, rng)
                    else:
                        g = synth_crouch(f, rng)
                        f = f if g is None else g
                if label != want:
                    continue
            f = augment(f, rng, cfg, item["width"], item["height"])
            return normalize_window(f, item["width"], item["height"], T), label
        raise RuntimeError("could not draw a window")

    def batch(self, n):
        xs, ys = zip(*(self.one() for _ in range(n)))
        return np.stack(xs)[:, None], np.array(ys)


# ------------------------------------------------------------------------------------------
# Test windows: {"frames" [L,17,3] pixels, "width", "height", "label", "source", "id"}
# ------------------------------------------------------------------------------------------

def _centre(kp, L):
    s = max((len(kp) - L) // 2, 0)
    return kp[s:s + L]


def fall_test_windows(items, L, clip_stride=None):
    """Evaluation windows of length L. Normal-activity clips (Penn, JHMDB) give their centre
    window, or with `clip_stride` every window at that stride (more varied negatives: the
    validation subset is otherwise too small to tell runs and thresholds apart)."""
    out = []
    for s in items:
        base = dict(width=s["width"], height=s["height"], source=s["source"])
        if s["source"] in ("le2i", "urfd"):                  # MD4FD windows: the last L frames
            out.append(dict(base, frames=s["kp"][-L:], label=s["label"], id=f"{s['group']}:last{L}",
                            recording=f"{s['source']}-recording-{s['recording']}"))
        elif s["source"] == "upfall":
            n = len(s["kp"])
            for end in range(min(L, n), n + 1, 4):
                lab = data.window_label(s, end, min(L, end))
                if lab is not None:
                    out.append(dict(base, frames=s["kp"][max(end - L, 0):end], label=lab,
                                    id=f"{s['video']}:{s['frames'][0] + end - 1}"))
        elif clip_stride is None:                              # penn / jhmdb clips
            out.append(dict(base, frames=_centre(s["kp"], L), label=0,
                            source=s["source"], id=f"{s['source']}:{s['group']}:centre{L}"))
        else:
            n = len(s["kp"])
            for end in range(min(L, n), n + 1, clip_stride):
                out.append(dict(base, frames=s["kp"][max(end - L, 0):end], label=0,
                                source=s["source"], id=f"{s['source']}:{s['group']}:{end - 1}"))
    return out


def penn_test_clips(items, T, stride=25):
    """Per test clip: the list of contiguous windows (the whole clip if <= T frames, else all
    T-frame windows at `stride`, plus the last one)."""
    clips = []
    for s in items:
        kp, n = s["kp"], len(s["kp"])
        if n <= T:
            wins = [kp]
        else:
            ends = list(range(T, n + 1, stride))
            if ends[-1] != n:
                ends.append(n)
            wins = [kp[e - T:e] for e in ends]
        clips.append(dict(windows=wins, width=s["width"], height=s["height"], label=s["label"],
                          id=s["group"]))
    return clips
