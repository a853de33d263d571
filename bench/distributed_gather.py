"""What the palette encoder's global losses cost in data-parallel training: the all_gather of every
step's palettes (docs/distributed.md, "What a step computes" and "From C++ (c10d)") against the step.
Two gloo processes on this machine, one thread each, torchrun's variables set here (no torchrun: its
start-up and 5 s polling are not the question), train the palette encoder on their shards of the same
global batches, with the intra/inter/decorrelation losses within each shard (no palette gather) and on
the whole batch's gathered palettes (two runs each, in the order within, whole, whole, within), and
rank 0 prints ms per step of both, the gather's ms per step inside the step (which includes the wait for
the slower rank's forward: the shards differ in length), the same gather alone after the ranks met
(its communication), and the ratios:

  - the C++ c10d path: build/bench/bench_distributed_gather (the PaletteTrainer with a GradientSync
    that times GradientSync::all_gather; shard_local_losses true / false), when built
    (-DLAMIA_BUILD_BENCH=ON, the distributed component);
  - the Python path: pylamia.distributed.palette_encoder_module(global_losses=False / True) under
    torch DDP, torch.distributed.all_gather timed (both collectives of the palette gather), and the
    all_reduce of the label-token weights that global_losses=False uses instead.

    nice -n 10 /usr/bin/python3 bench/distributed_gather.py --bench build/bench/bench_distributed_gather

(PYTHONPATH with pylamia, e.g. build/pypkg after scripts/dev-pytest.sh build.) About 1.5 minutes on
a 2-core machine with the defaults (400 items, the 4-layer d = 256 model, global batch 64, 10 steps).
"""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(cmd, world):
    """`world` processes of cmd with torchrun's variables, one thread each; rank 0's stdout."""
    port = free_port()
    procs = [subprocess.Popen(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1",
                                            MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(r),
                                            LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]
    outs = [p.communicate() for p in procs]
    for r, (p, (out, err)) in enumerate(zip(procs, outs)):
        if p.returncode != 0:
            sys.exit(f"rank {r} failed: {' '.join(cmd)}\n{out[-3000:]}{err[-3000:]}")
    return outs[0][0]


def worker(args):
    """One rank of the Python path."""
    import torch
    import torch.distributed as dist

    import pylamia
    from pylamia.distributed import palette_encoder_module, shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    catalog = pylamia.generate_synthetic(num_items=args.items, num_users=0).dataset.catalog
    enc = pylamia.PaletteEncoder.from_scratch(catalog, 2, hidden_size=args.hidden, num_layers=args.layers,
                                              dropout=0.0, seed=0)
    batches = pylamia.PaletteTrainer(enc, batch_size=args.batch, validation_fraction=0.0).epoch_batches(0)
    batches = (batches * (args.steps + 1))[: args.steps + 1]

    timed = {"all_gather": 0.0, "all_reduce": 0.0}
    largest = []  # the numel of every all_gather's tensor

    def timing(name, collective):
        def call(tensors, *a, **k):
            t0 = time.perf_counter()
            try:
                return collective(tensors, *a, **k)
            finally:
                timed[name] += time.perf_counter() - t0
                if name == "all_gather":
                    largest.append(a[0].numel())
        return call

    # pylamia.distributed calls these through the torch.distributed module (DDP's own gradient
    # all-reduce runs in its C++ reducer, not through them).
    plain_all_gather = dist.all_gather
    dist.all_gather = timing("all_gather", dist.all_gather)
    dist.all_reduce = timing("all_reduce", dist.all_reduce)

    def run(global_losses):
        """(ms per step, ms of all_gathers per step, ms of all_reduces per step) of one run."""
        ddp = torch.nn.parallel.DistributedDataParallel(palette_encoder_module(enc, global_losses=global_losses))
        opt = torch.optim.Adam(ddp.parameters(), lr=1e-4)
        seconds = 0.0
        for step, batch in enumerate(batches):
            if step == 1:  # the first step is a warm-up
                timed.update(all_gather=0.0, all_reduce=0.0)
            t0 = time.perf_counter()
            loss = ddp(shard(batch, rank, world))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step >= 1:
                seconds += time.perf_counter() - t0
        return [1e3 * seconds / args.steps, 1e3 * timed["all_gather"] / args.steps,
                1e3 * timed["all_reduce"] / args.steps]

    # In the order False, True, True, False: a drift of the machine's load hits both alike.
    runs = {False: [], True: []}
    for global_losses in (False, True, True, False):
        runs[global_losses].append(run(global_losses))
    (within, _, within_reduce), (whole, gather, _) = ([sum(c) / len(c) for c in zip(*runs[m])] for m in (False, True))
    # The gathers alone: the step's two tensors (3 numbers, then the largest palette tensor) after the
    # ranks met, so that no rank waits for another's forward.
    head, payload = torch.zeros(3, dtype=torch.float64), torch.zeros(max(largest), dtype=torch.float64)
    reps, pure = 20, 0.0
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        for t in (head, payload):
            plain_all_gather([torch.empty_like(t) for _ in range(world)], t)
        pure += time.perf_counter() - t0
    pure_ms = 1e3 * pure / reps
    if rank == 0:
        print(f"Python DDP: {world} ranks, {args.items} items, model {args.layers} layers d = {args.hidden}, "
              f"global batch {args.batch}, 2 runs of {args.steps} steps per mode (1 thread each)")
        print(f"  global_losses=False:  {within:8.1f} ms/step (label-token all_reduce {within_reduce:.2f} ms/step)")
        print(f"  global_losses=True:   {whole:8.1f} ms/step, palette all_gathers {gather:.2f} ms/step (the wait "
              "for the other rank's forward included)")
        print(f"  the two all_gathers alone (3 and {payload.numel()} float64 per rank, the ranks met first): "
              f"{pure_ms:.3f} ms")
        print(f"  True / False: {whole / within:.3f}; all_gathers in the step / step: {gather / whole:.4f}; "
              f"all_gathers alone / step: {pure_ms / whole:.5f}")
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default="build/bench/bench_distributed_gather", help="the C++ program ('' to skip)")
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    sizes = ["--items", str(args.items), "--steps", str(args.steps), "--batch", str(args.batch),
             "--hidden", str(args.hidden), "--layers", str(args.layers)]
    if args.bench and os.path.exists(args.bench):
        t0 = time.perf_counter()
        print(launch([args.bench, *sizes], args.world), end="")
        print(f"  ({time.perf_counter() - t0:.1f} s)")
    elif args.bench:
        print(f"{args.bench} not found: the C++ path skipped (-DLAMIA_BUILD_BENCH=ON, distributed component)")
    t0 = time.perf_counter()
    print(launch([sys.executable, os.path.abspath(__file__), "--worker", "--world", str(args.world), *sizes],
                 args.world), end="")
    print(f"  ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
