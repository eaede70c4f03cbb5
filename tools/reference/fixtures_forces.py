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

Also writes crates/equivariant/tests/fixtures/forces_model.json: a potential of two
convolutions with a gate and a linear layer between them,

    h = Linear(Gate(conv1(f_in)))       (Gate: silu scalars, sigmoid gates; Linear with biases)
    E = sum(conv2(h) * c)

on one graph, its forces and virial W = -sum_e r_e (x) dE/dr_e (from dE/d edge_vec with
create_graph=True), the loss

    L = w_e (E - e_ref)^2 + w_f mean((F - f_ref)^2) + w_w sum((W - w_ref)^2)

and its gradient with respect to every parameter (both radial MLPs, the linear layer's weight
and bias) and the positions.
"""

import torch

from e3nn import nn, o3
from e3nn.math import soft_one_hot_linspace

from burn_fixtures import dump, flat, header
from fixtures_nn import ACTS, conv_fields, conv_model, fc_layers, graph

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)

W_E, W_F, W_W = 0.3, 1.7, 0.9


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


class ConvLayer:
    """The guide's convolution as a layer of a model: FullyConnectedTensorProduct with per-edge
    weights from a radial MLP, summed into the destination and divided by sqrt(E / N)."""

    def __init__(self, irreps_in, irreps_out, lmax, num_basis, basis, cutoff, hidden, act, max_radius):
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.settings = dict(lmax=lmax, num_basis=num_basis, basis=basis, cutoff=cutoff, hidden=hidden, act=act,
                             max_radius=max_radius)
        self.tp = o3.FullyConnectedTensorProduct(self.irreps_in, self.irreps_sh, self.irreps_out,
                                                 shared_weights=False)
        self.fc = nn.FullyConnectedNet([num_basis] + hidden + [self.tp.weight_numel], ACTS[act])

    def __call__(self, f, edge_vec, edge_src, edge_dst, num_nodes):
        s = self.settings
        sh = o3.spherical_harmonics(self.irreps_sh, edge_vec, normalize=True, normalization="component")
        emb = soft_one_hot_linspace(edge_vec.norm(dim=1), 0.0, s["max_radius"], s["num_basis"], s["basis"],
                                    s["cutoff"]).mul(s["num_basis"] ** 0.5)
        summand = self.tp(f[edge_src], sh, self.fc(emb))
        out = summand.new_zeros(num_nodes, self.irreps_out.dim).index_add(0, edge_dst, summand)
        return out.div((len(edge_src) / num_nodes) ** 0.5)

    def fields(self, name, pos, f_in, edge_src, edge_dst):
        s = self.settings
        return conv_fields(name, self.irreps_in, self.irreps_out, self.irreps_sh, s["lmax"], s["num_basis"],
                           s["basis"], s["cutoff"], s["hidden"], s["act"], s["max_radius"], pos, f_in, edge_src,
                           edge_dst, self.fc, self.tp)


def model_case(name, seed, num_nodes, scale, max_radius):
    torch.manual_seed(seed)
    pos = torch.randn(num_nodes, 3) * scale
    edge_src, edge_dst = graph(pos, max_radius)
    irreps_in = o3.Irreps("10x0e + 10x1e")
    f_in = irreps_in.randn(num_nodes, -1)
    first = ConvLayer(irreps_in, "20x0e + 10x1e", lmax=2, num_basis=10, basis="smooth_finite", cutoff=True,
                      hidden=[16], act="silu", max_radius=max_radius)
    gate = nn.Gate("10x0e", [torch.nn.functional.silu], "10x0e", [torch.sigmoid], "10x1e")
    linear = o3.Linear(gate.irreps_out, gate.irreps_out, biases=True)
    with torch.no_grad():
        linear.bias.copy_(torch.randn_like(linear.bias))  # e3nn starts them at zero
    second = ConvLayer(linear.irreps_out, "4x0e + 3x1o + 2x2e", lmax=3, num_basis=8, basis="gaussian",
                       cutoff=True, hidden=[12, 12], act="silu", max_radius=max_radius)
    c = torch.randn(num_nodes, second.irreps_out.dim) * 0.05  # an energy of order one
    e_ref = torch.randn(())
    f_ref = torch.randn(num_nodes, 3)
    w_ref = torch.randn(3, 3)

    pos.requires_grad_(True)
    edge_vec = pos[edge_dst] - pos[edge_src]
    h = linear(gate(first(f_in, edge_vec, edge_src, edge_dst, num_nodes)))
    energy = (second(h, edge_vec, edge_src, edge_dst, num_nodes) * c).sum()
    (g,) = torch.autograd.grad(energy, edge_vec, create_graph=True)
    zeros = g.new_zeros(num_nodes, 3)
    forces = zeros.index_add(0, edge_src, g) - zeros.index_add(0, edge_dst, g)
    virial = -edge_vec.T @ g
    loss = (W_E * (energy - e_ref) ** 2 + W_F * (forces - f_ref).pow(2).mean()
            + W_W * (virial - w_ref).pow(2).sum())
    params = fc_layers(first.fc) + fc_layers(second.fc)
    grads = torch.autograd.grad(loss, [layer.weight for layer in params] + [linear.weight, linear.bias, pos])
    nf = len(fc_layers(first.fc))
    print(f"{name}: {num_nodes} nodes, {len(edge_src)} edges, E = {energy.item():.6f}, L = {loss.item():.6f}")
    return {
        "name": name,
        "num_nodes": num_nodes,
        "pos": flat(pos),
        "f_in": flat(f_in),
        "first": first.fields("first", pos, f_in, edge_src, edge_dst),
        "gate": {"scalars": "10x0e", "gates": "10x0e", "gated": "10x1e"},
        "linear_weight": flat(linear.weight),
        "linear_bias": flat(linear.bias),
        "second": second.fields("second", pos, h, edge_src, edge_dst),
        "c": flat(c),
        "e_ref": e_ref.item(),
        "f_ref": flat(f_ref),
        "w_ref": flat(w_ref),
        "w_e": W_E,
        "w_f": W_F,
        "w_w": W_W,
        "energy": energy.item(),
        "forces": flat(forces),
        "virial": flat(virial),
        "loss": loss.item(),
        "grad_first_fc_weights": [flat(x) for x in grads[:nf]],
        "grad_second_fc_weights": [flat(x) for x in grads[nf:len(params)]],
        "grad_linear_weight": flat(grads[-3]),
        "grad_linear_bias": flat(grads[-2]),
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
    models = [model_case("conv_gate_linear_conv", 9100, num_nodes=12, scale=0.8, max_radius=1.8)]
    dump("forces_model", {**header("tools/reference/fixtures_forces.py"), "cases": models})


if __name__ == "__main__":
    main()
