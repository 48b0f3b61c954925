"""Models, adapters, data and training for the FLoRA transfer benchmark (``benchmarks/flora_transfer.py``).

The digits tasks pretrain a small CNN on classes 0-4 and adapt it to classes 5-9; the conv stack is
the ResNet-sized plain network whose training step is timed.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import numpy as np

OLD, NEW = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
SHOTS = 20                  # training images per new class
VALIDATION = 20             # validation images per new class (disjoint from train and test)
BATCH = 20
PRETRAIN_LR, PRETRAIN_BATCH = 1e-3, 64
KERNEL_RANKS = (1, 2)       # FLoRA's rank on each 3 x 3 spatial mode, tried when matching a budget
ROTATION_SEED = 12345       # the rotated data set is the same for every seed


# --------------------------------------------------------------------------------------------
# Models and adapters


def digits_cnn(task: int):
    """Task 1: 8 x 8 input, 3 convolutions; task 2: 16 x 16 input, 4 convolutions. ``head`` is new."""
    import torch.nn as nn

    if task == 1:
        layers = [("conv1", nn.Conv2d(1, 16, 3, padding=1)), ("act1", nn.ReLU()),
                  ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("act2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
                  ("conv3", nn.Conv2d(32, 32, 3, padding=1)), ("act3", nn.ReLU()),
                  ("flat", nn.Flatten()), ("fc", nn.Linear(32 * 16, 64)), ("act4", nn.ReLU()),
                  ("head", nn.Linear(64, 5))]
    else:
        layers = [("conv1", nn.Conv2d(1, 16, 3, padding=1)), ("act1", nn.ReLU()),
                  ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("act2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
                  ("conv3", nn.Conv2d(32, 64, 3, padding=1)), ("act3", nn.ReLU()), ("pool3", nn.MaxPool2d(2)),
                  ("conv4", nn.Conv2d(64, 64, 3, padding=1)), ("act4", nn.ReLU()), ("pool4", nn.AdaptiveAvgPool2d(2)),
                  ("flat", nn.Flatten()), ("fc", nn.Linear(64 * 4, 64)), ("act5", nn.ReLU()),
                  ("head", nn.Linear(64, 5))]
    return nn.Sequential(OrderedDict(layers))


def conv_stack(widths, strides):
    """A plain conv stack (3 x 3 convolutions with ReLU, no skips, no norms) with a 10-way head."""
    import torch.nn as nn

    layers, channels = [], 3
    for i, (width, stride) in enumerate(zip(widths, strides)):
        layers += [(f"conv{i}", nn.Conv2d(channels, width, 3, stride=stride, padding=1)), (f"act{i}", nn.ReLU())]
        channels = width
    layers += [("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("head", nn.Linear(channels, 10))]
    return nn.Sequential(OrderedDict(layers))


def target_names(model) -> list:
    """Every convolution and linear layer but the head: where both adapters go."""
    import torch.nn as nn

    return [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and name != "head"]


def head_parameters(model) -> int:
    return sum(p.numel() for p in model.head.parameters())


class ModeRanks:
    """FLoRA ranks for a weight shape: ``channels`` on the (out, in) modes, ``kernel`` on spatial modes.

    Capped at each mode's size; a callable for ``FLoRAConfig(ranks=...)``.
    """

    def __init__(self, channels: int, kernel: int):
        self.channels, self.kernel = channels, kernel

    def __call__(self, shape) -> tuple:
        wanted = (self.channels, self.channels) + (self.kernel,) * (len(shape) - 2)
        return tuple(min(r, d) for r, d in zip(wanted, shape))

    def __repr__(self) -> str:
        return f"r={self.channels}, k={self.kernel}"


def flora_adapter_parameters(model, ranks: ModeRanks) -> int:
    """FLoRA adapter parameters, prod(r) + sum(d_i r_i) per target (head excluded)."""
    total = 0
    for name in target_names(model):
        shape = tuple(model.get_submodule(name).weight.shape)
        r = ranks(shape)
        total += int(np.prod(r)) + sum(d * k for d, k in zip(shape, r))
    return total


def lora_adapter_parameters(model, rank: int) -> int:
    """peft LoRA parameters: r·(in·k·k) + out·r per convolution, r·(in + out) per linear layer."""
    total = 0
    for name in target_names(model):
        shape = tuple(model.get_submodule(name).weight.shape)
        total += rank * (int(np.prod(shape[1:])) + shape[0])
    return total


def matched_flora_ranks(model, lora_rank: int) -> ModeRanks:
    """The FLoRA ranks with the most parameters not above LoRA's at ``lora_rank``.

    Searched over a channel rank (1-256) and a spatial rank in ``KERNEL_RANKS``; a tie goes to the
    larger channel rank. Chosen from parameter counts alone, before any training.
    """
    budget = lora_adapter_parameters(model, lora_rank)
    best, best_count = ModeRanks(1, 1), -1
    for kernel in KERNEL_RANKS:
        for channels in range(1, 257):
            ranks = ModeRanks(channels, kernel)
            count = flora_adapter_parameters(model, ranks)
            if count > budget:
                break
            if (count, channels) > (best_count, best.channels):
                best, best_count = ranks, count
    return best


def adapt(model, how: str, rank: int = 0):
    """Prepare ``model`` for fine-tuning; gives (model, adapter parameters, extra metrics).

    ``how`` is "full", "probe", "lora" (peft at ``rank``) or "flora" (at LoRA ``rank``'s budget).
    The head is trainable in every case and not counted.
    """
    from .harness import Unavailable

    head = head_parameters(model)
    if how == "full":
        model.requires_grad_(True)
        return model, sum(p.numel() for p in model.parameters()) - head, {}
    if how == "probe":
        model.requires_grad_(False)
        model.head.requires_grad_(True)
        return model, 0, {}
    targets = target_names(model)
    if how == "flora":
        from tensorkit import FLoRAConfig, count_trainable_parameters, inject_flora

        ranks = matched_flora_ranks(model, rank)
        config = FLoRAConfig(ranks=ranks, scale=1.0, target_modules=targets, modules_to_save=("head",))
        model = inject_flora(model, config)
        extra = {"channel_rank": ranks.channels, "kernel_rank": ranks.kernel}
        return model, count_trainable_parameters(model) - head, extra
    if how == "lora":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from peft import LoraConfig, get_peft_model

                config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=targets,
                                    modules_to_save=["head"])
                model = get_peft_model(model, config)
        except ImportError:
            raise Unavailable("peft is not installed (pip install '.[bench]')") from None
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return model, trainable - head, {}
    raise ValueError(f"unknown fine-tuning {how!r}")


# --------------------------------------------------------------------------------------------
# Training


def train(model, x, y, epochs: int, lr: float, batch: int, seed: int):
    """Adam on cross-entropy, ``epochs`` passes in a seeded random order."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    return model


def accuracy(model, x, y) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def tensors(x, y):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x[:, None])), torch.from_numpy(np.asarray(y, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# The transfer tasks


def digits_images(size: int, rotate: bool):
    """scikit-learn's digits in [0, 1], upsampled to ``size``; classes 5-9 rotated if ``rotate``.

    Gives (pretraining images and labels of classes 0-4, images and labels 0-4 of classes 5-9).
    """
    from scipy import ndimage
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target
    if size != 8:
        images = np.stack([ndimage.zoom(image, size / 8, order=1) for image in images]).astype(np.float32)
    old = np.isin(labels, OLD)
    new = np.isin(labels, NEW)
    new_x, new_y = images[new].copy(), labels[new] - NEW[0]
    if rotate:
        angles = np.random.default_rng(ROTATION_SEED).uniform(-45, 45, size=len(new_x))
        new_x = np.stack([ndimage.rotate(image, angle, reshape=False, order=1, mode="constant")
                          for image, angle in zip(new_x, angles)]).astype(np.float32)
    return (images[old], labels[old]), (new_x, new_y)


class TransferTask:
    """One transfer task: its images, and per seed a split and a pretrained backbone, made once.

    The backbone of a seed is pretrained (full training on classes 0-4) the first time a method
    asks for it and kept for every other method, learning rate and split of that seed: pretraining
    is part of the data, never of the fine-tuning that is timed.
    """

    def __init__(self, task: int, size: int, rotate: bool, pretrain_epochs: int):
        self.task, self.pretrain_epochs = task, pretrain_epochs
        self.pretraining, (self.images, self.labels) = digits_images(size, rotate)
        self._splits: dict = {}
        self._backbones: dict = {}

    def split(self, seed: int) -> dict:
        """The seed's training, validation and test tensors of the new classes."""
        if seed not in self._splits:
            rng = np.random.default_rng(seed)
            picked = [rng.choice(np.flatnonzero(self.labels == c), SHOTS + VALIDATION, replace=False)
                      for c in range(len(NEW))]
            train_idx = np.concatenate([p[:SHOTS] for p in picked])
            val_idx = np.concatenate([p[SHOTS:] for p in picked])
            test_idx = np.setdiff1d(np.arange(len(self.labels)), np.concatenate([train_idx, val_idx]))
            self._splits[seed] = {name: tensors(self.images[idx], self.labels[idx])
                                  for name, idx in (("train", train_idx), ("validation", val_idx),
                                                    ("test", test_idx))}
        return self._splits[seed]

    def backbone(self, seed: int) -> dict:
        """The seed's pretrained weights (its head a placeholder), pretrained on first use."""
        if seed not in self._backbones:
            import torch

            torch.manual_seed(seed)
            model = digits_cnn(self.task)
            x, y = tensors(*self.pretraining)
            train(model, x, y, self.pretrain_epochs, PRETRAIN_LR, PRETRAIN_BATCH, seed)
            self._backbones[seed] = model.state_dict()
        return self._backbones[seed]

    def fresh_model(self, seed: int):
        """The pretrained backbone with a new 5-way head, the same head for every method of a seed."""
        import torch
        import torch.nn as nn

        model = digits_cnn(self.task)
        model.load_state_dict(copy.deepcopy(self.backbone(seed)))
        torch.manual_seed(1000 + seed)
        model.head = nn.Linear(model.head.in_features, len(NEW))
        return model

    def backbone_parameters(self) -> int:
        model = digits_cnn(self.task)
        return sum(p.numel() for p in model.parameters()) - head_parameters(model)


# --------------------------------------------------------------------------------------------
# Training-step cost


def optimizer_state_bytes(optimizer) -> int:
    return sum(value.numel() * value.element_size() for state in optimizer.state.values()
               for value in state.values() if hasattr(value, "numel"))


def warm_up_libraries() -> None:
    """One Adam step of a throwaway model: oneDNN and autograd set up, and the modules torch imports
    on a first optimizer step (about 70 MiB, which peft would otherwise have loaded for LoRA alone)."""
    import torch
    import torch.nn.functional as F

    warm = conv_stack((8, 8), (1, 1))
    F.cross_entropy(warm(torch.randn(2, 3, 16, 16)), torch.zeros(2, dtype=torch.long)).backward()
    torch.optim.Adam(warm.parameters(), lr=1e-3).step()
