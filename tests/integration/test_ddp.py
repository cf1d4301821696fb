"""Training on two processes with torchrun (gloo on CPUs): SpeechBrain's DDP, our BatchNorm fix."""

import socket
import sys

import pytest
import torch
from recipe_runs import copy_until_clustering, recipe_command, run_recipe


def free_port():
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.ddp
def test_torchrun_two_processes_matches_single_process_checkpoint(
    tiny_run, tmp_path, small_minivox
):
    row, out = tiny_run
    run = copy_until_clustering(out, tmp_path / "ddp")
    flags = ["--first_stage=train", "--last_stage=train", "--true_labels_reference=False"]
    flags += ["--rounds=1", "--distributed_backend=gloo"]
    command = recipe_command(row, run, small_minivox, *flags)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    torchrun.append(f"--master_port={free_port()}")
    run_recipe(torchrun + command[1:])

    def checkpoint(root):
        ckpt = sorted((root / "round1" / "systems" / "camsat" / "speaker").glob("CKPT*"))[-1]
        return torch.load(ckpt / "embedding_model.ckpt", map_location="cpu")

    single, parallel = checkpoint(out), checkpoint(run)
    assert single.keys() == parallel.keys()
    assert all(single[k].shape == parallel[k].shape for k in single)
    assert not any(k.startswith("module.") for k in parallel)
