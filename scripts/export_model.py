#!/usr/bin/env python3
"""Exports your own PyTorch model (and data) for valleys.

  python scripts/export_model.py my_pkg.module:build_net --out nets/my_net.pt --input-shape 3,32,32
  python scripts/export_model.py my_pkg.module:build_net --out nets/my_net.pt \\
      --data torchvision.datasets:CIFAR10:~/data --data-out data/cifar10.safetensors

MODEL is `module:factory`: a function (or class) that returns a torch.nn.Module mapping a float
batch [N, C, H, W] (or [N, D]) to logits [N, classes]. The module is scripted
(torch.jit.script), or traced if scripting fails; traced modules keep the mode they were traced
in, so a traced module with batch norm or dropout is refused. The result is checked against
the eager module in eval and in train mode, and the `model:` section to paste into an
experiment is printed.

--data `module:Class:ROOT` builds `Class(root=ROOT, train=True/False)` (a torchvision-style data
set with `.data` and `.targets`, or one that yields (image, label) pairs) and writes its splits as
a safetensors file for `data: {dataset: tensors, path: ...}`: uint8 images NCHW when the data are
8-bit images, float32 otherwise, int64 labels.

Needs only PyTorch (and safetensors, and the data set's own package with --data).
"""

import argparse
import importlib
import os
import pathlib
import sys


def fail(message: str) -> "NoReturn":  # noqa: F821
    sys.exit(f"export_model.py: {message}")


def load_object(spec: str, what: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        fail(f"{what} {spec!r}: expected module:name, e.g. my_pkg.nets:build_net")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        fail(f"{what} {spec!r}: cannot import {module_name}: {e}")
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            fail(f"{what} {spec!r}: {module_name} has no {attr}")
        obj = getattr(obj, part)
    return obj


def as_tensor(values, torch):
    """A tensor of a tensor, a numpy array, a list or a PIL image."""
    if isinstance(values, torch.Tensor):
        return values
    if hasattr(values, "getdata"):  # a PIL image
        import numpy as np

        values = np.asarray(values)
    return torch.as_tensor(values)


def read_split(cls, root: str, train: bool, torch):
    try:
        ds = cls(root=root, train=train)
    except TypeError:
        ds = cls(root, train)
    if hasattr(ds, "data") and hasattr(ds, "targets"):
        x, y = as_tensor(ds.data, torch), as_tensor(ds.targets, torch)
    else:
        xs, ys = [], []
        for image, label in ds:
            xs.append(as_tensor(image, torch))
            ys.append(int(label))
        x, y = torch.stack(xs), torch.tensor(ys)
    if x.dim() == 3:  # [N, H, W] gray images
        x = x.unsqueeze(1)
    elif x.dim() == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.permute(0, 3, 1, 2)  # NHWC (CIFAR's .data) to NCHW
    if x.dtype != torch.uint8:
        x = x.float()
    return x.contiguous(), y.long().contiguous()


def export_data(spec: str, out: pathlib.Path, torch):
    try:
        from safetensors.torch import save_file
    except ImportError:
        fail("--data needs the safetensors package (pip install safetensors)")
    parts = spec.split(":")
    if len(parts) < 3:
        fail(f"--data {spec!r}: expected module:Class:ROOT, e.g. torchvision.datasets:CIFAR10:~/data")
    cls = load_object(f"{parts[0]}:{parts[1]}", "--data")
    root = os.path.expanduser(":".join(parts[2:]))
    x_train, y_train = read_split(cls, root, True, torch)
    x_test, y_test = read_split(cls, root, False, torch)
    if x_train.shape[1:] != x_test.shape[1:]:
        fail(f"--data: training samples are {list(x_train.shape[1:])}, test samples {list(x_test.shape[1:])}")
    classes = int(max(y_train.max(), y_test.max()).item()) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    save_file(
        {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "classes": torch.tensor(classes)},
        str(tmp),
    )
    os.replace(tmp, out)
    print(f"wrote {out}: {len(y_train)} train / {len(y_test)} test, {x_train.dtype} {list(x_train.shape[1:])}, {classes} classes")
    return x_train[:8], classes


def check_modes(eager, scripted, x, torch):
    """The exported module must behave like the eager one in both modes."""
    for mode in ("eval", "train"):
        for m in (eager, scripted):
            m.train(mode == "train")
        state = {k: v.clone() for k, v in eager.state_dict().items()}
        torch.manual_seed(0)
        a = eager(x)
        torch.manual_seed(0)
        b = scripted(x)
        eager.load_state_dict(state)
        scripted.load_state_dict(state)
        if not isinstance(b, torch.Tensor):
            fail(f"the exported module returns {type(b).__name__}; expected one tensor of logits")
        if a.shape != b.shape or not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
            gap = (a - b).abs().max().item() if a.shape == b.shape else float("nan")
            fail(
                f"in {mode} mode the exported module differs from the eager one (largest gap {gap:.3g}); "
                "a traced module keeps the mode it was traced in: make the model scriptable "
                "(torch.jit.script) so that batch norm and dropout follow train() and eval()"
            )
    eager.eval()
    scripted.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="module:factory returning a torch.nn.Module")
    p.add_argument("--out", required=True, type=pathlib.Path, help="the TorchScript file to write")
    p.add_argument("--input-shape", help="one sample's shape, e.g. 3,32,32 or 784 (default: from --data)")
    p.add_argument("--classes", type=int, help="the number of classes (default: from --data)")
    p.add_argument("--data", help="module:Class:ROOT of a data set to export as well")
    p.add_argument("--data-out", type=pathlib.Path, help="where the data go (default: next to --out, as data.safetensors)")
    p.add_argument("--trace", action="store_true", help="trace instead of scripting")
    args = p.parse_args()

    import torch

    factory = load_object(args.model, "MODEL")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        fail(f"{args.model} returned {type(model).__name__}; expected a torch.nn.Module")
    model = model.float().cpu()
    if not list(model.parameters()):
        fail(f"{args.model} has no parameters; expected a network with trainable weights")

    example, classes = None, args.classes
    data_out = None
    if args.data:
        data_out = args.data_out or args.out.with_name("data.safetensors")
        sample, found = export_data(args.data, data_out, torch)
        example = sample.float() / 255.0 if sample.dtype == torch.uint8 else sample
        classes = classes or found
    if args.input_shape:
        try:
            shape = [int(v) for v in args.input_shape.split(",")]
        except ValueError:
            fail(f"--input-shape {args.input_shape!r}: expected sizes separated by commas, e.g. 3,32,32")
        example = torch.randn(8, *shape)
    if example is None:
        fail("give --input-shape (e.g. 3,32,32) or --data, so that the module can be checked")

    model.eval()
    with torch.no_grad():
        try:
            logits = model(example)
        except Exception as e:  # noqa: BLE001
            fail(f"the model fails on a batch of shape {list(example.shape)}: {e}")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != example.shape[0]:
        fail(f"the model maps {list(example.shape)} to {getattr(logits, 'shape', type(logits).__name__)}; expected logits [N, classes]")
    if classes is not None and logits.shape[1] != classes:
        fail(f"the model gives {logits.shape[1]} logits; the data have {classes} classes")

    how = "traced"
    if not args.trace:
        try:
            exported = torch.jit.script(model)
            how = "scripted"
        except Exception as e:  # noqa: BLE001
            print(f"scripting failed ({str(e).splitlines()[0]}); tracing instead", file=sys.stderr)
            exported = None
    if how == "traced":
        exported = torch.jit.trace(model, example)
    with torch.no_grad():
        check_modes(model, exported, example, torch)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    exported.save(str(tmp))
    os.replace(tmp, args.out)
    bn = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {how}, {params} parameters, {bn} batch-norm layers; checked in eval and train mode")
    print("\n# paste into your experiment (paths relative to the experiment file):")
    print(f"model:\n  arch: torchscript\n  path: {args.out}")
    if data_out:
        print(f"data:\n  dataset: tensors\n  path: {data_out}")


if __name__ == "__main__":
    main()
