"""sentence-transformers Dense modules (linear + activation, optional residual), rebuilt in PyTorch for tracing."""
from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from .errors import ModelSourceError


class Dense(nn.Module):
    """activation(linear(x)) [+ x, or + residual(x) when the widths differ], as sentence_transformers' Dense."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: nn.Module, use_residual: bool) -> None:
        super().__init__()
        self.in_features, self.out_features, self.use_residual = in_features, out_features, use_residual
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_function = activation
        if use_residual and in_features != out_features:
            self.residual = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in) -> (B, out)
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (x if self.in_features == self.out_features else self.residual(x))
        return out


def load_dense(folder: Path, config: dict) -> Dense:
    """Build a Dense module from its folder's config.json (already read) and weights (model.safetensors or .bin)."""
    try:
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelSourceError(f"{folder}/config.json needs integer in_features and out_features ({err}); "
                               "fix the file or restore the model folder") from err
    layer = Dense(n_in, n_out, bool(config.get("bias", True)), _activation(folder, config), bool(config.get("use_residual", False)))
    state = _weights(folder)
    missing, unexpected = layer.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelSourceError(f"{folder}: Dense weights do not match its config.json (missing {missing or 'none'}, "
                               f"unexpected {unexpected or 'none'}); restore the model folder")
    return layer.eval()


def _activation(folder: Path, config: dict) -> nn.Module:
    """The activation named in config (a torch.nn module class path; sentence-transformers' default is Tanh)."""
    name = config.get("activation_function", "torch.nn.modules.activation.Tanh")
    if name is None:
        return nn.Identity()
    module, _, cls = str(name).rpartition(".")
    target = None
    if module.startswith("torch.nn"):
        try:
            target = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):
            target = None
    if not (isinstance(target, type) and issubclass(target, nn.Module)):
        raise ModelSourceError(f"{folder}/config.json: activation_function {name!r} is not a torch.nn module class; "
                               "only torch.nn activations (Identity, Tanh, ReLU, GELU, SiLU, ...) can be exported")
    return target()


def _weights(folder: Path) -> dict:
    """The module's state dict from model.safetensors, else pytorch_model.bin."""
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ModelSourceError(f"{folder} has no model.safetensors or pytorch_model.bin; restore the Dense module's weights")
