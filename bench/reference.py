"""PyTorch reference loops for `make bench`: the same models, data layout and optimiser settings
as valleys, so that the two are compared on the same machine doing the same work.

Each command prints one JSON object on stdout.

  train   samples/s of SGD training steps (data in memory on the device, random flips,
          cross-entropy, SGD with momentum and weight decay), after a warm-up
  protocol  seconds of the authors' interpolation protocol (He et al., interpulation.py):
          per point, load the weights, bn_update over the whole augmented training set, then
          evaluate the training and the test set
  eval    seconds of one eval-mode pass over the test set under no_grad (BN statistics from a
          bn_update over 1 024 training samples)
  pyhessian  PyHessian (pip install pyhessian) on the weights and training samples `valleys
          bench curvature` wrote: seconds per Hessian-vector product against one forward and
          backward pass, its top eigenvalue (power iteration) and trace (Hutchinson), and
          resident memory around its power iteration
"""

import argparse
import gzip
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the SWA code's pre-activation ResNet (timgaripov/swa models/preresnet.py) ---------------

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(x))
        residual = self.downsample(out) if self.downsample is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + residual


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(x))
        residual = self.downsample(out) if self.downsample is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + residual


class PreResNet(nn.Module):
    def __init__(self, depth, in_channels, classes):
        super().__init__()
        # Basic blocks below depth 44, bottlenecks from 44 on, as in the SWA code.
        block, n = (Bottleneck, (depth - 2) // 9) if depth >= 44 else (BasicBlock, (depth - 2) // 6)
        self.block = block
        self.inplanes = 16
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.layer1 = self._make_layer(16, n)
        self.layer2 = self._make_layer(32, n, stride=2)
        self.layer3 = self._make_layer(64, n, stride=2)
        self.bn = nn.BatchNorm2d(64 * block.expansion)
        self.fc = nn.Linear(64 * block.expansion, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / k))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, planes, blocks, stride=1):
        block, out = self.block, planes * self.block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, out, 1, stride, bias=False))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        layers += [block(out, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# --- data --------------------------------------------------------------------------------

def read_idx(path):
    raw = gzip.open(path).read()
    magic, count = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(count, 1, rows, cols)
    return torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8).long()


def dataset(name, device):
    """The bench's data: the embedded Fashion-MNIST subset, or CIFAR-shaped random bytes."""
    if name == "quick":
        d = os.path.join(ROOT, "assets", "fashion-mnist-10k")
        x = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
        xt = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
        yt = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
        mean, std = [0.2860], [0.3530]
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (10240, 3, 32, 32), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (10240,), generator=g)
        xt, yt = x[:1024].clone(), y[:1024].clone()
        mean, std = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
    mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=device).view(1, -1, 1, 1)
    return x.to(device), y.to(device), xt.to(device), yt.to(device), mean, std


def prepare(xb, mean, std, flip=None):
    x = xb.float() / 255.0
    if flip is not None:
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    return (x - mean) / std


# The bench's models: the quick preset, and PreResNets on CIFAR-shaped data.
DEPTHS = {"quick": 8, "preresnet20": 20, "preresnet110": 110, "preresnet164": 164}


def model_for(name, device):
    channels = 1 if name == "quick" else 3
    return PreResNet(DEPTHS[name], channels, 10).to(device)


# --- commands ----------------------------------------------------------------------------

def train(args, device):
    torch.manual_seed(1)
    x, y, _, _, mean, std = dataset(args.model, device)
    model = model_for(args.model, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    n, bs = x.shape[0], args.batch

    def steps(count):
        done = 0
        while done < count:
            order = torch.randperm(n, device=device)
            for start in range(0, n, bs):
                if done == count:
                    break
                idx = order[start:start + bs]
                flip = torch.rand(idx.shape[0], device=device) < 0.5
                xb = prepare(x.index_select(0, idx), mean, std, flip)
                loss = F.cross_entropy(model(xb), y.index_select(0, idx))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
        if device.type == "cuda":
            torch.cuda.synchronize()

    steps(args.warmup)
    t = time.perf_counter()
    steps(args.steps)
    seconds = time.perf_counter() - t
    return {"samples_per_s": args.steps * bs / seconds, "seconds": seconds, "steps": args.steps}


@torch.no_grad()
def bn_update(model, x, mean, std, bs):
    """timgaripov/swa utils.bn_update: cumulative-average BN statistics over one pass."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = {}
    for m in bns:
        m.reset_running_stats()
        momenta[m] = m.momentum
    model.train()
    seen = 0
    order = torch.randperm(x.shape[0], device=x.device)
    for start in range(0, x.shape[0], bs):
        xb = x.index_select(0, order[start:start + bs])
        b = xb.shape[0]
        for m in bns:
            m.momentum = b / (seen + b)
        flip = torch.rand(b, device=x.device) < 0.5
        model(prepare(xb, mean, std, flip))
        seen += b
    for m in bns:
        m.momentum = momenta[m]


@torch.no_grad()
def evaluate(model, x, y, mean, std, bs, flip=False):
    model.eval()
    total, correct = 0.0, 0
    for start in range(0, x.shape[0], bs):
        xb, yb = x[start:start + bs], y[start:start + bs]
        f = (torch.rand(xb.shape[0], device=x.device) < 0.5) if flip else None
        out = model(prepare(xb, mean, std, f))
        total += F.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
    return total / x.shape[0], correct / x.shape[0]


def protocol(args, device):
    torch.manual_seed(1)
    x, y, xt, yt, mean, std = dataset(args.model, device)
    swa, sgd = model_for(args.model, device), model_for(args.model, device)
    a = [p.detach().clone() for p in swa.parameters()]
    b = [p.detach().clone() for p in sgd.parameters()]
    probe = model_for(args.model, device)
    t = time.perf_counter()
    for i in range(args.points):
        alpha = -2 + 5 * i / (args.points - 1)
        with torch.no_grad():
            for p, pa, pb in zip(probe.parameters(), a, b):
                p.copy_(pa + alpha * (pb - pa))
        bn_update(probe, x, mean, std, 128)
        evaluate(probe, x, y, mean, std, 128, flip=True)  # the authors evaluate the augmented loader
        evaluate(probe, xt, yt, mean, std, 128)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "points": args.points, "seconds_per_point": seconds / args.points}


@torch.no_grad()
def bn_pass(model, x, mean, std, bs):
    """The BN pass of a plane point: train-mode forward passes without autograd over `x`
    (randomly flipped, as the SWA code's bn_update), BN keeping the cumulative average of its
    batch statistics (momentum None)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    for start in range(0, x.shape[0], bs):
        xb = x[start:start + bs]
        flip = torch.rand(xb.shape[0], device=x.device) < 0.5
        model(prepare(xb, mean, std, flip))


def eval_pass(args, device):
    """One evaluation pass over the test set in eval mode under no_grad, as the authors' and
    Li et al.'s code evaluate each point, and one BN pass over as many training samples
    (medians of --passes passes after a warm-up), with PyTorch's own ways to run them fast:
    --variant eager (as written), frozen (TorchScript, frozen and optimised for inference:
    BN folded into the convolutions; eval only, its BN pass eager) or compile (torch.compile,
    inductor's C++ on a CPU; each mode compiled on its first pass, timed apart)."""
    torch.manual_seed(1)
    x, y, xt, yt, mean, std = dataset(args.model, device)
    model = model_for(args.model, device)
    bn_update(model, x[:1024], mean, std, 128)
    model.eval()
    runner, bn_runner, compile_seconds = model, model, {}
    if args.variant == "frozen":
        with torch.no_grad():
            scripted = torch.jit.script(model.eval())
            runner = torch.jit.optimize_for_inference(torch.jit.freeze(scripted))
    elif args.variant == "compile":
        runner = torch.compile(model)
        bn_runner = runner
    train_samples = x[:xt.shape[0]]

    def timed(f):
        t = time.perf_counter()
        f()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    # Warm-ups (compilations, for torch.compile) of both passes.
    first_eval = timed(lambda: evaluate(runner, xt, yt, mean, std, args.batch))
    first_bn = timed(lambda: bn_pass(bn_runner, train_samples, mean, std, args.batch))
    times, bn_times = [], []
    for _ in range(args.passes):
        times.append(timed(lambda: evaluate(runner, xt, yt, mean, std, args.batch)))
        bn_times.append(timed(lambda: bn_pass(bn_runner, train_samples, mean, std, args.batch)))
    seconds = sorted(times)[len(times) // 2]
    bn_seconds = sorted(bn_times)[len(bn_times) // 2]
    if args.variant == "compile":
        compile_seconds = {"eval": first_eval - seconds, "bn_pass": first_bn - bn_seconds}
    return {"variant": args.variant, "seconds": seconds, "samples_per_s": xt.shape[0] / seconds, "all_seconds": times,
            "samples": xt.shape[0], "batch": args.batch, "bn_pass_seconds": bn_seconds,
            "bn_pass_samples_per_s": train_samples.shape[0] / bn_seconds, "all_bn_pass_seconds": bn_times,
            "compile_seconds": compile_seconds}


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) / 1e3 for l in f if l.startswith("VmRSS:"))


def load_safetensors(path, prefix):
    """The tensors under `prefix` of a safetensors file (read by hand: an 8-byte header size,
    a JSON header, then the raw little-endian data)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or not name.startswith(prefix):
            continue
        assert meta["dtype"] == "F32", meta
        start, end = meta["data_offsets"]
        data = bytearray(raw[8 + n + start : 8 + n + end])
        out[name[len(prefix) :]] = torch.frombuffer(data, dtype=torch.float32).view(meta["shape"])
    return out


def pyhessian_check(args, device):
    from pyhessian import hessian
    from pyhessian.utils import hessian_vector_product

    x, y, _, _, mean, std = dataset("quick", device)
    model = model_for("quick", device)
    state = load_safetensors(args.weights, "sgd/")
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    idx = torch.tensor(json.load(open(args.samples))["train_indices"], device=device)
    inputs, targets = prepare(x[idx], mean, std), y[idx]
    criterion = nn.CrossEntropyLoss()
    model.eval()

    def forward_backward():
        model.zero_grad()
        criterion(model(inputs), targets).backward()

    def median_time(f, n):
        f()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return sorted(times)[n // 2]

    pass_seconds = median_time(forward_backward, 10)
    model.zero_grad()
    with torch.no_grad():
        loss = criterion(model(inputs), targets).item()
    h = hessian(model, criterion, data=(inputs, targets), cuda=device.type == "cuda")
    torch.manual_seed(7)
    v = [torch.randn_like(p) for p in h.params]
    product_seconds = median_time(lambda: hessian_vector_product(h.gradsH, h.params, v), 20)
    timing = {
        "loss": loss,
        "seconds_per_product": product_seconds,
        "products_per_s": 1.0 / product_seconds,
        "forward_backward_seconds": pass_seconds,
        "ratio_to_forward_backward": product_seconds / pass_seconds,
    }
    if args.time_only:
        return timing
    torch.manual_seed(3)
    before = rss_mb()
    t = time.perf_counter()
    eigenvalues, _ = h.eigenvalues(maxIter=100, tol=1e-6, top_n=1)
    eigen_seconds = time.perf_counter() - t
    after = rss_mb()
    torch.manual_seed(5)
    samples = h.trace(maxIter=args.trace_vectors, tol=0.0)
    n = len(samples)
    trace_mean = sum(samples) / n
    sd = (sum((s - trace_mean) ** 2 for s in samples) / (n - 1)) ** 0.5
    return {
        **timing,
        "top_eigenvalue": eigenvalues[0],
        "power_iteration_seconds": eigen_seconds,
        "trace": trace_mean,
        # Student's t at n - 1 degrees of freedom is within 0.3% of 1.97 for n = 200.
        "trace_interval": [trace_mean - 1.97 * sd / n**0.5, trace_mean + 1.97 * sd / n**0.5],
        "trace_vectors": n,
        "rss_mb_before_power_iteration": before,
        "rss_mb_after_power_iteration": after,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["train", "protocol", "eval", "pyhessian"])
    ap.add_argument("--model", choices=sorted(DEPTHS), default="quick")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--points", type=int, default=41)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--variant", choices=["eager", "frozen", "compile"], default="eager",
                    help="eval: how PyTorch runs the passes")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--weights", help="pyhessian: a valleys checkpoint (safetensors)")
    ap.add_argument("--samples", help="pyhessian: the JSON of `valleys bench curvature`'s samples")
    ap.add_argument("--trace-vectors", type=int, default=200)
    ap.add_argument("--time-only", action="store_true", help="pyhessian: only the products' timing")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    commands = {"train": train, "protocol": protocol, "eval": eval_pass, "pyhessian": pyhessian_check}
    result = commands[args.command](args, device)
    result.update(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
