"""e3nn 0.6.0 fixtures for forces and training on forces with the guide's convolution.

Run from the repository root with the pinned venv (see tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_forces.py

Writes crates/equivariant/tests/fixtures/forces.json: {"generator", "e3nn", "torch", "dtype",
"cases": [...]}. Each case is the guide's convolution as fixtures_nn.py builds it (same graph
rule: every ordered pair closer than max_radius, sorted by (dst, src); z = E / N held fixed)
with an energy

    E = sum(f_out * c)                           (c: a fixed random [N, irreps_out.dim])

its forces F = -dE/dpos (torch.autograd.grad with create_graph=True), and the loss

    L = w_e (E - e_ref)^2 + w_f mean((F - f_ref)^2)

whose gradient with respect to every weight of the radial MLP (a second derivative, through
the forces) and the positions is recorded. float64, fixed seeds.
"""

import torch

from e3nn import o3
from e3nn.math import soft_one_hot_linspace

from burn_fixtures import dump, flat, header
from fixtures_nn import conv_fields, conv_model, fc_layers

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)

W_E, W_F = 0.3, 1.7


def case(name, seed, irreps_in, irreps_out, lmax, num_basis, basis, cutoff, hidden, act, max_radius, num_nodes,
         scale):
    irreps_in, irreps_out, irreps_sh, pos, f_in, tp, fc, edge_src, edge_dst = conv_model(
        seed, irreps_in, irreps_out, lmax, num_basis, hidden, act, max_radius, num_nodes, scale)
    layers = fc_layers(fc)
    num_edges = len(edge_src)
    num_neighbors = num_edges / num_nodes
    c = torch.randn(num_nodes, irreps_out.dim)
    e_ref = torch.randn(())
    f_ref = torch.randn(num_nodes, 3)

    pos.requires_grad_(True)
    edge_vec = pos[edge_dst] - pos[edge_src]
    sh = o3.spherical_harmonics(irreps_sh, edge_vec, normalize=True, normalization="component")
    emb = soft_one_hot_linspace(edge_vec.norm(dim=1), 0.0, max_radius, num_basis, basis, cutoff).mul(num_basis**0.5)
    summand = tp(f_in[edge_src], sh, fc(emb))
    f_out = summand.new_zeros(num_nodes, irreps_out.dim).index_add(0, edge_dst, summand).div(num_neighbors**0.5)
    energy = (f_out * c).sum()
    (grad_pos,) = torch.autograd.grad(energy, pos, create_graph=True)
    forces = -grad_pos
    loss = W_E * (energy - e_ref) ** 2 + W_F * (forces - f_ref).pow(2).mean()
    weights = [layer.weight for layer in layers]
    grads = torch.autograd.grad(loss, weights + [pos])
    print(f"{name}: {num_nodes} nodes, {num_edges} edges, E = {energy.item():.6f}, L = {loss.item():.6f}")
    return {
        **conv_fields(name, irreps_in, irreps_out, irreps_sh, lmax, num_basis, basis, cutoff, hidden, act,
                      max_radius, pos, f_in, edge_src, edge_dst, fc, tp),
        "c": flat(c),
        "e_ref": e_ref.item(),
        "f_ref": flat(f_ref),
        "w_e": W_E,
        "w_f": W_F,
        "energy": energy.item(),
        "forces": flat(forces),
        "loss": loss.item(),
        "grad_fc_weights": [flat(g) for g in grads[:-1]],
        "grad_pos": flat(grads[-1]),
    }


def main():
    cases = [
        case("guide_relu", 9000, "10x0e + 10x1e", "20x0e + 10x1e", lmax=2, num_basis=10, basis="smooth_finite",
             cutoff=False, hidden=[16], act="relu", max_radius=1.8, num_nodes=12, scale=0.8),
        case("guide_silu_cutoff", 9001, "10x0e + 10x1e", "20x0e + 10x1e", lmax=2, num_basis=10,
             basis="smooth_finite", cutoff=True, hidden=[16], act="silu", max_radius=1.8, num_nodes=12, scale=0.8),
        case("silu_lmax3_two_hidden", 9002, "4x0e + 2x1o + 1x2e", "3x0e + 2x1o + 2x2e", lmax=3, num_basis=8,
             basis="gaussian", cutoff=True, hidden=[12, 12], act="silu", max_radius=1.5, num_nodes=10, scale=0.7),
    ]
    dump("forces", {**header("tools/reference/fixtures_forces.py"), "cases": cases})


if __name__ == "__main__":
    main()
