"""One process of tests/python/test_distributed.py, launched by torchrun (gloo): trains the tiny palette
encoder or the tiny recommender on its shard of each global batch under DistributedDataParallel and
rank 0 saves the parameters. Usage: distributed_worker.py {palette|recommender} STEPS OUT.pt [SCHEDULE [local]]
(SCHEDULE: distributed_cases.make's; local: palette_encoder_module(global_losses=False))."""
import sys

import torch
import torch.distributed as dist

import pylamia
from pylamia.distributed import palette_encoder_module, recommender_module, shard

import distributed_cases as cases


def main(kind, steps, out, schedule="even", losses="global"):
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    case = cases.make(kind, seed=rank, schedule=schedule)  # other initial values per rank: DDP must broadcast rank 0's
    if kind == "palette":
        module = palette_encoder_module(case.model, global_losses=losses != "local")
    else:
        module = recommender_module(case.model)
    ddp = torch.nn.parallel.DistributedDataParallel(module)
    opt = torch.optim.SGD(ddp.parameters(), lr=case.lr)
    losses = []
    for step in range(steps):
        loss = ddp(case.inputs(shard(case.global_batch(step), rank, world)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if rank == 0:
        torch.save({k: v.detach().clone() for k, v in cases.named(case.model).items()}, out)
        torch.save(losses, str(out) + ".losses")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:])
