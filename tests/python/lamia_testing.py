"""Helpers shared by the pylamia tests (imported by name: pytest puts this folder on sys.path).

CUDA tests: where CUDA is not available they skip; LAMIA_EXPECT_CUDA=1 (set by
scripts/device-check.sh on a GPU machine) makes a missing CUDA a failure, and
LAMIA_CUDA_TESTS_ON_CPU=1 runs them with the CPU standing in for the GPU (a dry run of the test code).
"""
import os
import socket
import subprocess
import sys

import pytest
import torch

import pylamia

DRY_RUN = os.environ.get("LAMIA_CUDA_TESTS_ON_CPU") == "1" and not torch.cuda.is_available()
DEVICE = "cpu" if DRY_RUN else "cuda"
DEVICE_TYPE = torch.device(DEVICE).type
needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() or DRY_RUN), reason="CUDA not available")


def require_cuda_where_expected():
    if os.environ.get("LAMIA_EXPECT_CUDA") != "1":
        pytest.skip("CUDA not expected (LAMIA_EXPECT_CUDA is not 1)")
    assert torch.cuda.is_available(), "LAMIA_EXPECT_CUDA=1 but torch.cuda.is_available() is False"


def rel(a, b):
    """max |a - b| / max |b|, in float64 on the CPU."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def norm_rel(a, b):
    """||a - b|| / ||b||, in float64 on the CPU."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def assert_grad_close(name, got, want, scale):
    """Relative error < 1e-3; the key projection's bias has a zero gradient in exact arithmetic
    (softmax ignores the q.b_k added to every score of a query), so there both devices give
    rounding noise of either sign: it must only be tiny against the largest gradient."""
    if name.endswith("k_proj.bias"):
        assert got.abs().max().item() < 1e-4 * scale, name
    else:
        assert rel(got, want) < 1e-3, name


COLORS = ["red", "blue", "green", "black", "white", "yellow"]
ANIMALS = ["cat", "dog", "fox", "owl", "bee"]
KINDS = {"cat": "mammal", "dog": "mammal", "fox": "mammal", "owl": "bird", "bee": "insect"}


def make_catalog(n=30):
    """A small catalog with title, color and kind: color and kind are recoverable from the title."""
    c = pylamia.Catalog(["title", "color", "kind"])
    for i in range(n):
        color, animal = COLORS[i % len(COLORS)], ANIMALS[(i // len(COLORS)) % len(ANIMALS)]
        c.add(f"it{i}", [f"the {color} {animal} number {i % 7}", color, KINDS[animal]])
    return c


def tiny(catalog, **kw):
    """A 2-layer, width-32 palette encoder from scratch over catalog (one content attribute)."""
    args = dict(palette_size=3, vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, dropout=0.0,
                max_position_embeddings=128, seed=0)
    args.update(kw)
    return pylamia.PaletteEncoder.from_scratch(catalog, 1, **args)


def assert_notebook_loop_learns(enc):
    """A notebook's own Adam loop over enc.forward(): the generation loss of the last 5 of 40 steps
    is below 70 % of the first 5."""
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    samples = [(i, t) for i in range(12) for t in range(3)]
    losses = []
    for step in range(40):
        batch = samples[(step * 12) % len(samples):][:12] or samples[:12]
        out = enc.forward(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["generation_loss"].item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


# torch 1.13's torchrun parses its default --redirects/--tee "0" to None under Python 3.11 (a zero
# Flag member is no longer iterated) and fails in to_map(); 1 (stdout) parses on every version.
TORCHRUN_STD_FLAGS = ["--redirects", "1", "--tee", "1"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def this_machine_address():
    """This machine's first non-loopback IPv4 address (`hostname -I`), else 127.0.0.1."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    return next((a for a in out if ":" not in a and not a.startswith("127.")), "127.0.0.1")


def torchrun_two_nodes(program, env):
    """docs/distributed.md's multi-machine launch with both "machines" here: two torchrun invocations
    with --nnodes 2 --node_rank 0/1 --nproc_per_node 1 and torchrun's static rendezvous at this machine's
    address (a free port), running `program` (torchrun's arguments after its own: a script and its
    arguments, or --no_python and a command). Skips where a node cannot use the address; fails with a
    node's log where one fails. Returns "address:port"."""
    addr, port = this_machine_address(), free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node),
         "--nproc_per_node", "1", "--master_addr", addr, "--master_port", str(port), *TORCHRUN_STD_FLAGS,
         *map(str, program)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for node in range(2)]
    try:
        logs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for node, (p, log) in enumerate(zip(procs, logs)):
        if p.returncode != 0 and ("Cannot assign requested address" in log or "Network is unreachable" in log):
            pytest.skip(f"node {node} cannot use {addr}: {log[-500:]}")
        assert p.returncode == 0, f"node {node} ({addr}:{port}):\n{log[-3000:]}"
    return f"{addr}:{port}"
