# Reference values of e3nn 0.6.0's rotation functions (e3nn/o3/_rotation.py) for
# crates/equivariant-core/tests/rotation.rs.
#
# Run from the repository root with a Python that has torch and e3nn==0.6.0:
#
#     /work/venv-e3nn/bin/python tools/reference/fixtures_rotation.py
#
# It writes crates/equivariant-core/tests/fixtures/rotation.json. Everything is float64 and
# seeded, so reruns give the same file; json.dump prints Python floats exactly (shortest
# round-trip repr).
#
# Layout (all lists are parallel):
#   cases: Euler-angle triples; kind is "random" or a degenerate special case
#     ("identity", "beta0", "betapi") where e3nn's angle split and (for betapi, a half turn)
#     the axis are decided by rounding noise, so tests compare those through matrices.
#   xyz: xyz_to_angles of random (non-unit) vectors, the zero vector and the poles.
#   axis_angle: conversions of random (non-unit) axes with angles in [-2pi, 2pi], plus
#     a zero axis.
#   quaternion: conversions of random unit quaternions (either sign of w).
#   compose: pairs of Euler angles / quaternions / axis-angles and their compositions.
#   elementary: matrix_x, matrix_y, matrix_z.

import json
import math
import os

import e3nn
import torch
from e3nn import o3

assert e3nn.__version__ == "0.6.0", e3nn.__version__
torch.set_default_dtype(torch.float64)
torch.manual_seed(20240611)

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "crates",
    "equivariant-core",
    "tests",
    "fixtures",
    "rotation.json",
)


def tolist(x):
    return x.detach().tolist()


def angle_triple(t):
    return [float(t[0]), float(t[1]), float(t[2])]


# --- Euler-angle cases --------------------------------------------------------------------

N_RANDOM = 10
a, b, c = o3.rand_angles(N_RANDOM)
cases = [(float(a[i]), float(b[i]), float(c[i]), "random") for i in range(N_RANDOM)]
# Angles outside the canonical ranges (negative beta, |alpha| > pi) also go in.
cases.append((-4.0, -0.7, 5.5, "random"))
cases.append((0.0, 0.0, 0.0, "identity"))
cases.append((0.3, 0.0, 1.1, "beta0"))
cases.append((0.7, math.pi, -0.4, "betapi"))

case_out = []
for alpha, beta, gamma, kind in cases:
    al, be, ga = torch.tensor(alpha), torch.tensor(beta), torch.tensor(gamma)
    R = o3.angles_to_matrix(al, be, ga)
    q = o3.angles_to_quaternion(al, be, ga)
    axis, angle = o3.angles_to_axis_angle(al, be, ga)
    entry = {
        "kind": kind,
        "angles": [alpha, beta, gamma],
        "matrix": tolist(R),
        "quaternion": tolist(q),
        "axis": tolist(axis),
        "angle": float(angle),
        "xyz": tolist(o3.angles_to_xyz(al, be)),
        "matrix_to_angles": angle_triple(o3.matrix_to_angles(R)),
        "matrix_to_quaternion": tolist(o3.matrix_to_quaternion(R)),
        "quaternion_to_matrix": tolist(o3.quaternion_to_matrix(q)),
        "quaternion_to_angles": angle_triple(o3.quaternion_to_angles(q)),
        "axis_angle_to_matrix": tolist(o3.axis_angle_to_matrix(axis, angle)),
        "axis_angle_to_quaternion": tolist(o3.axis_angle_to_quaternion(axis, angle)),
    }
    case_out.append(entry)

# --- xyz_to_angles -----------------------------------------------------------------------

vectors = 3.0 * torch.randn(8, 3)
vectors = torch.cat(
    [
        vectors,
        torch.tensor(
            [
                [0.0, 0.0, 0.0],
                [0.0, 2.0, 0.0],
                [0.0, -0.5, 0.0],
                [0.0, 0.0, -1.0],
                [-1.0, 0.0, 0.0],
                [1e-14, 1e-14, 1e-14],
            ]
        ),
    ]
)
va, vb = o3.xyz_to_angles(vectors)
xyz_out = {"input": tolist(vectors), "alpha": tolist(va), "beta": tolist(vb)}

# --- axis-angle conversions --------------------------------------------------------------

axes = torch.randn(8, 3) * torch.rand(8, 1).mul(3).add(0.1)
angles = torch.rand(8).mul(4 * math.pi).sub(2 * math.pi)
axes = torch.cat([axes, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])])
angles = torch.cat([angles, torch.tensor([0.0, 0.8])])
aa_q = o3.axis_angle_to_quaternion(axes, angles)
aa_R = o3.axis_angle_to_matrix(axes, angles)
aa_abc = o3.axis_angle_to_angles(axes, angles)
axis_angle_out = {
    "axis": tolist(axes),
    "angle": tolist(angles),
    "axis_angle_to_quaternion": tolist(aa_q),
    "axis_angle_to_matrix": tolist(aa_R),
    "axis_angle_to_angles": [angle_triple(t) for t in zip(*aa_abc)],
}

# --- quaternion conversions --------------------------------------------------------------

quats = torch.nn.functional.normalize(torch.randn(8, 4), dim=-1)
quats = torch.cat([quats, torch.tensor([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]])])
qa_axis, qa_angle = o3.quaternion_to_axis_angle(quats)
quaternion_out = {
    "q": tolist(quats),
    "quaternion_to_axis": tolist(qa_axis),
    "quaternion_to_angle": tolist(qa_angle),
    "quaternion_to_matrix": tolist(o3.quaternion_to_matrix(quats)),
    "quaternion_to_angles": [angle_triple(t) for t in zip(*o3.quaternion_to_angles(quats))],
    "inverse_quaternion": tolist(o3.inverse_quaternion(quats)),
}

# --- compositions ------------------------------------------------------------------------

N_PAIRS = 6
a1, b1, c1 = o3.rand_angles(N_PAIRS)
a2, b2, c2 = o3.rand_angles(N_PAIRS)
ca, cb, cc = o3.compose_angles(a1, b1, c1, a2, b2, c2)
q1 = o3.rand_quaternion(N_PAIRS)
q2 = o3.rand_quaternion(N_PAIRS)
ax1 = torch.randn(N_PAIRS, 3)
an1 = torch.rand(N_PAIRS).mul(4 * math.pi).sub(2 * math.pi)
ax2 = torch.randn(N_PAIRS, 3)
an2 = torch.rand(N_PAIRS).mul(4 * math.pi).sub(2 * math.pi)
cax, can = o3.compose_axis_angle(ax1, an1, ax2, an2)
compose_out = {
    "angles1": [angle_triple(t) for t in zip(a1, b1, c1)],
    "angles2": [angle_triple(t) for t in zip(a2, b2, c2)],
    "compose_angles": [angle_triple(t) for t in zip(ca, cb, cc)],
    "q1": tolist(q1),
    "q2": tolist(q2),
    "compose_quaternion": tolist(o3.compose_quaternion(q1, q2)),
    "axis1": tolist(ax1),
    "angle1": tolist(an1),
    "axis2": tolist(ax2),
    "angle2": tolist(an2),
    "compose_axis": tolist(cax),
    "compose_angle": tolist(can),
}

# --- elementary rotations ----------------------------------------------------------------

el = torch.cat([torch.rand(5).mul(4 * math.pi).sub(2 * math.pi), torch.tensor([0.0, math.pi])])
elementary_out = {
    "angle": tolist(el),
    "matrix_x": tolist(o3.matrix_x(el)),
    "matrix_y": tolist(o3.matrix_y(el)),
    "matrix_z": tolist(o3.matrix_z(el)),
}

data = {
    "e3nn_version": e3nn.__version__,
    "torch_version": torch.__version__,
    "cases": case_out,
    "xyz": xyz_out,
    "axis_angle": axis_angle_out,
    "quaternion": quaternion_out,
    "compose": compose_out,
    "elementary": elementary_out,
}

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(data, f, indent=1)
    f.write("\n")
print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")
