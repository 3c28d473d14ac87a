"""Training state as flat tensors, for resumable safetensors checkpoints: modules' weights and optimisers' moments.

A resumed run must end exactly where an uninterrupted one does, so a checkpoint holds every tensor that
influences the next step: each module's state dict under ``PREFIX.NAME`` and each optimiser's per-parameter
state (Adam's step, moments) under ``PREFIX.INDEX.NAME``. Safetensors stores tensors only: nothing in a
checkpoint can run code when it is read.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from facesteer.errors import FacesteerError
from facesteer.files import write_safetensors


def state_tensors(
    modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> dict[str, torch.Tensor]:
    """Every module's and optimiser's state, flattened to ``{prefix.name: tensor}`` (contiguous, on the CPU)."""
    tensors = {}
    for prefix, module in modules.items():
        tensors |= {f"{prefix}.{k}": v.detach().cpu() for k, v in module.state_dict().items()}
    for prefix, optimizer in optimizers.items():
        for index, state in optimizer.state_dict()["state"].items():
            for name, value in state.items():
                tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).detach().cpu()
    return {k: v.contiguous() for k, v in tensors.items()}


def restore_state(
    tensors: dict[str, torch.Tensor],
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    device: str | torch.device = "cpu",
) -> None:
    """Load what :func:`state_tensors` wrote back into the same modules and optimisers."""
    for prefix, module in modules.items():
        module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
    for prefix, optimizer in optimizers.items():
        state = optimizer.state_dict()
        entries: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix + "."):
                _, index, name = key.split(".", 2)
                entries.setdefault(int(index), {})[name] = value.to(device)
        state["state"] = entries
        optimizer.load_state_dict(state)


def write_checkpoint(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors checkpoint atomically (a run killed while writing keeps its previous checkpoint)."""
    write_safetensors(path, tensors, metadata)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors checkpoint.

    Raises:
        FacesteerError: the file is not a readable safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle)
    except (SafetensorError, OSError) as error:
        raise FacesteerError(f"cannot read checkpoint {path}: {error}") from None
    return tensors, metadata
