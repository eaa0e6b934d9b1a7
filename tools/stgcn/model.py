"""ST-GCN++ written from the PYSKL paper (Duan et al., 2022, "PYSKL: Towards Good Practices for
Skeleton Action Recognition", section 3.2): an ST-GCN whose spatial module is a GCN with an
adjacency initialised from the skeleton graph and then learned freely, with a residual path, and
whose temporal module is a multi-branch temporal convolution (dilated 3x1 convolutions, a
max-pooling branch and a 1x1 branch, each after a 1x1 channel reduction).

Shapes follow the `stgcnclassify` contract: input `[N, M, T, V, C]`, output `[N, K]` logits.
"""
import torch
from torch import nn

from preprocess import FLIP_INDEX

# COCO-17: nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle
COCO_EDGES = [(0, 1), (0, 2), (1, 3), (2, 4),            # face
              (0, 5), (0, 6),                            # head - shoulders
              (5, 7), (7, 9), (6, 8), (8, 10),           # arms
              (5, 11), (6, 12),                          # torso sides
              (11, 13), (13, 15), (12, 14), (14, 16)]    # legs
COCO_CENTER = 0
FACE_JOINTS = (1, 2, 3, 4)
# Each joint's parent towards the nose (the nose is its own parent): bones = joint - parent.
COCO_PARENTS = (0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)
# Input features the network derives from (x, y, score) inside its graph (PYSKL's joint, bone
# and joint-motion modalities fused early): "joint" = x, y, score; "bone" = x, y minus the
# parent's; "motion" = x, y minus the previous frame's. Bone and motion are zero where either
# end is an invalid joint (score 0 after the contract's preprocessing) or a padding frame.
FEATURE_CHANNELS = {"joint": 3, "bone": 2, "motion": 2}


def hop_distance(num_nodes, edges, center):
    dist = [None] * num_nodes
    dist[center] = 0
    frontier = [center]
    while frontier:
        nxt = []
        for u in frontier:
            for a, b in edges:
                for p, q in ((a, b), (b, a)):
                    if p == u and dist[q] is None:
                        dist[q] = dist[u] + 1
                        nxt.append(q)
        frontier = nxt
    return dist


def spatial_partition(num_nodes=17, edges=COCO_EDGES, center=COCO_CENTER):
    """ST-GCN spatial configuration partitioning: for node i, subset 0 = itself, subset 1 =
    neighbours nearer the centre (centripetal), subset 2 = neighbours farther from it
    (centrifugal). Each subset is row-normalised (node i averages what it receives).
    Returns float32 tensor [3, V, V] with A[k, i, j] = weight of j's feature in i's output."""
    d = hop_distance(num_nodes, edges, center)
    A = torch.zeros(3, num_nodes, num_nodes)
    for i in range(num_nodes):
        A[0, i, i] = 1.0
    for a, b in edges:
        for i, j in ((a, b), (b, a)):
            A[1 if d[j] < d[i] else 2, i, j] = 1.0
    deg = A.sum(dim=2, keepdim=True)
    return A / torch.where(deg > 0, deg, torch.ones_like(deg))


class GCN(nn.Module):
    """Spatial module: 1x1 conv to K*C_out, aggregation with a learnable adjacency initialised
    from the partitioned graph, BN, plus a residual projection of the input; ReLU."""

    def __init__(self, c_in, c_out, A):
        super().__init__()
        self.K = A.shape[0]
        self.A = nn.Parameter(A.clone())
        self.conv = nn.Conv2d(c_in, c_out * self.K, 1)
        self.bn = nn.BatchNorm2d(c_out)
        if c_in == c_out:
            self.res = nn.Identity()
        else:
            self.res = nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))
        self.act = nn.ReLU()

    def forward(self, x):                                   # x: [N, C, T, V]
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.K, -1, t, v)
        y = torch.einsum("nkctj,kij->ncti", y, self.A)
        return self.act(self.bn(y) + self.res(x))


class MultiScaleTCN(nn.Module):
    """Temporal module: branches of (1x1 reduce, BN, ReLU, 3x1 conv dilation d) for d in
    `dilations`, a (1x1, BN, ReLU, 3x1 max-pool) branch and a strided 1x1 branch; the
    concatenation goes through BN, ReLU and a 1x1 fusion conv with BN."""

    def __init__(self, c_in, c_out, stride=1, dilations=(1, 2, 3, 4), dropout=0.0):
        super().__init__()
        n_branch = len(dilations) + 2
        mid = [c_out // n_branch] * n_branch
        mid[0] += c_out - sum(mid)
        branches = []
        for c, d in zip(mid, dilations):
            branches.append(nn.Sequential(
                nn.Conv2d(c_in, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
                nn.Conv2d(c, c, (3, 1), stride=(stride, 1), padding=(d, 0), dilation=(d, 1)),
                nn.BatchNorm2d(c)))
        c = mid[len(dilations)]
        branches.append(nn.Sequential(
            nn.Conv2d(c_in, c, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)), nn.BatchNorm2d(c)))
        c = mid[-1]
        branches.append(nn.Sequential(nn.Conv2d(c_in, c, 1, stride=(stride, 1)), nn.BatchNorm2d(c)))
        self.branches = nn.ModuleList(branches)
        self.fuse = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU(), nn.Conv2d(c_out, c_out, 1),
                                  nn.BatchNorm2d(c_out))
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        y = torch.cat([b(x) for b in self.branches], dim=1)
        return self.drop(self.fuse(y))


class Block(nn.Module):
    def __init__(self, c_in, c_out, A, stride=1, residual=True, dropout=0.0):
        super().__init__()
        self.gcn = GCN(c_in, c_out, A)
        self.tcn = MultiScaleTCN(c_out, c_out, stride, dropout=dropout)
        if not residual:
            self.res = None
        elif c_in == c_out and stride == 1:
            self.res = nn.Identity()
        else:
            self.res = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=(stride, 1)),
                                     nn.BatchNorm2d(c_out))
        self.act = nn.ReLU()

    def forward(self, x):
        y = self.tcn(self.gcn(x))
        if self.res is not None:
            y = y + self.res(x)
        return self.act(y)


# (channels, temporal stride) per block after the first; the first block has no residual
WIDTHS = {
    "tiny": [(32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)],
    "small": [(48, 1), (48, 1), (48, 1), (96, 2), (96, 1), (96, 1), (192, 2), (192, 1)],
}


class STGCNPP(nn.Module):
    """[N, M, T, V, C] -> [N, K] logits.

    `ignore_joints`: joints multiplied by zero at the input (inside the exported graph), so
    the model never depends on them (the face points, which most training sets lack)."""

    def __init__(self, num_classes, num_joints=17, width="tiny",
                 dropout=0.3, tcn_dropout=0.0, ignore_joints=FACE_JOINTS, features=("joint",)):
        super().__init__()
        assert features[0] == "joint" and all(f in FEATURE_CHANNELS for f in features), features
        self.features = tuple(features)
        in_channels = sum(FEATURE_CHANNELS[f] for f in self.features)
        # constants of the graph, not state: checkpoints load whatever features they use
        self.register_buffer("parents", torch.tensor(COCO_PARENTS, dtype=torch.long), persistent=False)
        # set by export.py --flip-average (not a trained parameter, not in the state dict)
        self.flip_average = False
        self.register_buffer("flip_index", torch.tensor(FLIP_INDEX, dtype=torch.long), persistent=False)
        self.register_buffer("flip_sign", torch.tensor([-1.0, 1.0, 1.0]), persistent=False)
        A = spatial_partition(num_joints)
        mask = torch.ones(1, 1, 1, num_joints, 1)
        for j in ignore_joints:
            mask[..., j, :] = 0.0
        self.register_buffer("joint_mask", mask)
        self.data_bn = nn.BatchNorm1d(num_joints * in_channels)
        cfg = WIDTHS[width]
        layers = [Block(in_channels, cfg[0][0], A, cfg[0][1], residual=False)]
        c = cfg[0][0]
        for c_out, s in cfg[1:]:
            layers.append(Block(c, c_out, A, s, dropout=tcn_dropout))
            c = c_out
        self.blocks = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):                                   # [N, M, T, V, C]
        if self.flip_average and not self.training:
            # test-time flip: the mean of the logits for the window and its mirror image
            # (x negated: the contract's window normalisation centres x; left <-> right)
            mirrored = x[..., self.flip_index, :] * self.flip_sign
            return (self.classify(x) + self.classify(mirrored)) / 2
        return self.classify(x)

    def classify(self, x):
        n, m, t, v, c = x.shape
        x = x * self.joint_mask
        if len(self.features) > 1:
            x = self.derive_features(x)
            c = x.shape[-1]
        x = x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t)   # BN per (joint, channel)
        x = self.data_bn(x)
        x = x.reshape(n * m, v, c, t).permute(0, 2, 3, 1)        # [N*M, C, T, V]
        x = self.blocks(x)
        x = x.mean(dim=(2, 3)).reshape(n, m, -1).mean(dim=1)     # pool T, V, then persons
        return self.fc(self.drop(x))

    def derive_features(self, x):
        """[N, M, T, V, 3] -> [N, M, T, V, C'] with the configured modalities."""
        valid = (x[..., 2:3] > 0).to(x.dtype)
        out = [x]
        if "bone" in self.features:
            par = x[..., self.parents, :]
            out.append((x[..., :2] - par[..., :2]) * valid * valid[..., self.parents, :])
        if "motion" in self.features:
            d = (x[:, :, 1:, :, :2] - x[:, :, :-1, :, :2]) * valid[:, :, 1:] * valid[:, :, :-1]
            out.append(torch.cat([torch.zeros_like(d[:, :, :1]), d], dim=2))
        return torch.cat(out, dim=-1)
