#!/usr/bin/env python3
"""Writes assets/torchscript/: TorchScript models, safetensors data and the numbers PyTorch
computes on them, against which valleys' support for custom models is tested
(src/model/torchscript/tests.rs, tests/torchscript.rs).

Run with torch 2.11.0 (the libtorch valleys links):  python scripts/make_torchscript_fixtures.py
(`--hostile` writes only the hostile modules.)

  convbn.pt        a 2-stage conv net with batch norm, for 1x28x28 images, 10 classes
  convnobn.pt      the same net without batch norm (its no-BN twin), with the same weights
  convbn-trained.pt   convbn.pt after 20 epochs of SGD on images.safetensors
  mlp.pt           a two-layer perceptron with dropout, for 20-feature rows, 5 classes
  mlpbn.pt         a two-layer perceptron with BatchNorm1d, for the same rows
  preresnet8.pt    valleys' preresnet-8 (same structure and tensor names), for 1x28x28 images
  noparams.pt, nanout.pt   bad modules: no parameters; NaN logits
  trainfail.pt, shortbatch.pt, intlogits.pt, zerosize.pt, laterfail.pt   hostile modules that
                   pass an eval-mode forward on two samples and fail later (see `hostile`)
  images.safetensors  uint8 images: the first 384 / 128 samples of the embedded Fashion-MNIST
  rows.safetensors    float32 rows: five Gaussian clusters in 20 dimensions
  golden.json, golden.safetensors   what PyTorch computed (see `golden` below)
"""

import gzip
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "torchscript"
FASHION = ROOT / "assets" / "fashion-mnist-10k"


class ConvNet(nn.Module):
    def __init__(self, bn: bool):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
        self.stage1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), norm(8), nn.ReLU(), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), norm(16), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stage2(self.stage1(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class TrainFail(nn.Module):
    """Fine in eval mode; in training mode a shape error, as a broken training-only branch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        if self.training:
            x = x.view(3, -1)
        return self.fc(x)


class ShortBatch(nn.Module):
    """Fails in training mode on any batch but 64 samples: a hard-coded batch size."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        if self.training:
            x = x.view(64, 784)
        return self.fc(x.flatten(1))


class IntLogits(nn.Module):
    """Returns integer (Long) logits of the right shape."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return (self.fc(x.flatten(1)) * 100).long()


class ZeroSize(nn.Module):
    """Every parameter has zero elements; the logits are constant."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(0))
        self.b = nn.Parameter(torch.zeros(10, 0))

    def forward(self, x):
        return torch.zeros(x.size(0), 10) + self.b.sum(1) + self.w.sum()


class LaterFail(nn.Module):
    """Fails on its 13th forward call in training mode: a failure no up-front check can see."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls > 12:
                raise RuntimeError("injected failure on training call 13")
        return self.fc(x.flatten(1))


def hostile() -> None:
    """Modules that pass an eval-mode forward on two images and fail later (issue 31)."""
    torch.manual_seed(1)
    for name, module in [
        ("trainfail", TrainFail()),
        ("shortbatch", ShortBatch()),
        ("intlogits", IntLogits()),
        ("zerosize", ZeroSize()),
        ("laterfail", LaterFail()),
    ]:
        torch.jit.script(module).save(str(OUT / f"{name}.pt"))


class Block(nn.Module):
    """valleys' basic pre-activation block (src/model/preresnet.rs)."""

    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.has_downsample = stride != 1 or inplanes != planes
        self.downsample = (
            nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False))
            if self.has_downsample
            else nn.Sequential()
        )

    def forward(self, x):
        out = F.relu(self.bn1(x))
        residual = self.downsample(out) if self.has_downsample else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + residual


class PreResNet8(nn.Module):
    def __init__(self, in_channels: int = 1, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.layer1 = nn.Sequential(Block(16, 16, 1))
        self.layer2 = nn.Sequential(Block(16, 32, 2))
        self.layer3 = nn.Sequential(Block(32, 64, 2))
        self.bn = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def idx(name: str) -> torch.Tensor:
    raw = gzip.open(FASHION / name).read()
    if raw[2:4] == b"\x08\x03":
        n, h, w = (int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
        return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(n, 1, h, w)
    n = int.from_bytes(raw[4:8], "big")
    return torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8)[:n].long()


def normalised(x_u8: torch.Tensor, train_u8: torch.Tensor) -> torch.Tensor:
    """valleys' preparation of uint8 images from a tensors file: [0, 1], then the training
    split's per-channel mean and population standard deviation (in float64, kept as float32)."""
    t = train_u8.double() / 255.0
    mean = t.mean(dim=(0, 2, 3)).float().view(1, -1, 1, 1)
    std = t.std(dim=(0, 2, 3), unbiased=False).float().view(1, -1, 1, 1)
    return (x_u8.float() / 255.0 - mean) / std


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def main() -> None:
    if not torch.__version__.startswith("2.11.0"):
        sys.exit(f"torch {torch.__version__}: run with torch 2.11.0, the libtorch valleys links")
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    # Data: real images, synthetic rows.
    x_train, x_test = idx("train-images-idx3-ubyte.gz")[:384], idx("t10k-images-idx3-ubyte.gz")[:128]
    y_train, y_test = idx("train-labels-idx1-ubyte.gz")[:384], idx("t10k-labels-idx1-ubyte.gz")[:128]
    save_file(
        {"x_train": x_train.contiguous(), "y_train": y_train, "x_test": x_test.contiguous(), "y_test": y_test},
        OUT / "images.safetensors",
    )
    centres = torch.randn(5, 20) * 2.0
    def blobs(n):
        y = torch.arange(n) % 5
        return (centres[y] + torch.randn(n, 20)).float(), y.long()
    r_train, ry_train = blobs(300)
    r_test, ry_test = blobs(100)
    save_file(
        {"x_train": r_train, "y_train": ry_train, "x_test": r_test, "y_test": ry_test, "classes": torch.tensor(5)},
        OUT / "rows.safetensors",
    )

    # Models. convbn.pt is freshly initialised, as a module is before training, and
    # convnobn.pt, its twin, starts from the same convolution and linear weights.
    # convbn-trained.pt (20 epochs of plain SGD) is the one the numbers below are computed on:
    # they are not those of chance, and its BN scales and running statistics are not their
    # defaults.
    fresh = ConvNet(bn=True)
    twin = ConvNet(bn=False)
    twin.load_state_dict({k: v for k, v in fresh.state_dict().items() if k in twin.state_dict()})
    torch.jit.script(fresh).save(str(OUT / "convbn.pt"))
    torch.jit.script(twin).save(str(OUT / "convnobn.pt"))
    net = ConvNet(bn=True)
    net.load_state_dict(fresh.state_dict())
    xs = normalised(x_train, x_train)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    for _ in range(20):
        for i in range(0, len(xs), 64):
            opt.zero_grad()
            F.cross_entropy(net(xs[i : i + 64]), y_train[i : i + 64]).backward()
            opt.step()
    net.eval()
    torch.jit.script(net).save(str(OUT / "convbn-trained.pt"))
    torch.jit.script(Mlp()).save(str(OUT / "mlp.pt"))
    torch.jit.script(nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 5))).save(
        str(OUT / "mlpbn.pt")
    )
    torch.jit.script(PreResNet8()).save(str(OUT / "preresnet8.pt"))
    # Bad modules: one without parameters, and one whose logits are NaN.
    torch.jit.script(nn.Flatten()).save(str(OUT / "noparams.pt"))
    nan = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        nan[1].bias.fill_(float("nan"))
    torch.jit.script(nan).save(str(OUT / "nanout.pt"))
    hostile()

    golden = {"torch": torch.__version__}
    tensors = {}
    model = torch.jit.load(str(OUT / "convbn-trained.pt"))
    names = [n for n, _ in model.named_parameters()]
    golden["convbn_parameters"] = names
    xt = normalised(x_test, x_train)

    def evaluate(m):
        m.eval()
        with torch.no_grad():
            logits = m(xt)
            loss = F.cross_entropy(logits, y_test, reduction="sum").double() / len(y_test)
            acc = (logits.argmax(1) == y_test).double().mean()
        return loss.item(), acc.item()

    # 1. Eval-mode loss and accuracy on the test split.
    golden["eval_test_loss"], golden["eval_test_acc"] = evaluate(model)

    # 2. update_bn over the training split in file order, batches of 64.
    loader = [xs[i : i + 64] for i in range(0, len(xs), 64)]
    # update_bn on a scripted module: momentum is a constant of its code, so do what
    # torch.optim.swa_utils.update_bn does, reset the statistics and average the batches',
    # by hand on an eager copy with the same weights.
    eager = ConvNet(bn=True)
    eager.load_state_dict(net.state_dict())
    torch.optim.swa_utils.update_bn(loader, eager)
    for n, b in eager.named_buffers():
        if "running" in n:
            tensors[f"update_bn.{n}"] = b.detach().clone()
    eager.eval()
    golden["update_bn_test_loss"], golden["update_bn_test_acc"] = evaluate(eager)

    # 3. Two SGD steps (momentum 0.9, weight decay 5e-4, lr 0.1) on fixed batches, train mode.
    stepped = ConvNet(bn=True)
    stepped.load_state_dict(net.state_dict())
    stepped.train()
    opt = torch.optim.SGD(stepped.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for i in range(2):
        opt.zero_grad()
        F.cross_entropy(stepped(xs[i * 32 : (i + 1) * 32]), y_train[i * 32 : (i + 1) * 32]).backward()
        opt.step()
    tensors["sgd_two_steps"] = flat(stepped)

    # 4. A probe point: w + t d along a stored direction, eval mode (frozen BN statistics).
    gen = torch.Generator().manual_seed(7)
    w = flat(net)
    d = torch.randn(w.numel(), generator=gen)
    d = d / d.norm() * w.norm()
    tensors["direction"] = d
    moved = ConvNet(bn=True)
    moved.load_state_dict(net.state_dict())
    torch.nn.utils.vector_to_parameters(w + 0.3 * d, moved.parameters())
    golden["probe_t"] = 0.3
    golden["probe_test_loss"], golden["probe_test_acc"] = evaluate(moved)

    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT / "golden.safetensors")
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(ROOT)}  {f.stat().st_size} bytes")


if __name__ == "__main__":
    if sys.argv[1:] == ["--hostile"]:
        # Only the hostile modules, leaving every other fixture (and its numbers) as it is.
        hostile()
    else:
        main()
