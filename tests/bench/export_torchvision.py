"""Export the torchvision networks the benchmarks time (docs/benchmarks.md#torchvision):
random weights, batch 1, 3x224x224, opset 17, TorchScript exporter. Not run by the
tests; needs torch and torchvision (no download: weights=None).

    pip install torch torchvision
    python tests/bench/export_torchvision.py [--out DIR] [NAME ...]

NAME: a `torchvision.models` builder (default: the table's nine), or `vit` (a ViT of 4
layers, hidden 192, 3 heads, patch 16: 197 tokens; its head, which torchvision starts
at zero, drawn at random so the outputs are worth comparing). The files go to DIR
(default /tmp/sketchtune-torchvision); then, e.g.:

    python tests/bench/bench_models.py --models /tmp/sketchtune-torchvision/resnet50.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAMES = [
    "resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121", "convnext_tiny",
    "shufflenet_v2_x1_0", "regnet_y_400mf", "mnasnet0_5", "vit",
]  # fmt: skip


def build(name: str):
    import torch
    import torchvision

    torch.manual_seed(0)
    if name != "vit":
        return getattr(torchvision.models, name)(weights=None).eval()
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(image_size=224, patch_size=16, num_layers=4, num_heads=3,
                              hidden_dim=192, mlp_dim=768).eval()  # fmt: skip
    torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/sketchtune-torchvision")
    parser.add_argument("names", nargs="*", default=NAMES)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        path = out / f"{name}.onnx"
        torch.onnx.export(build(name), (torch.randn(1, 3, 224, 224),), str(path),
                          opset_version=17, dynamo=False, input_names=["input"],
                          output_names=["logits"])  # fmt: skip
        print(path)


if __name__ == "__main__":
    main()
