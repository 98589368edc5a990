"""Export the networks the onnxruntime column of the report is checked on (issue #30),
and print how onnxruntime's profile maps onto their tasks. Not run by the tests: it
needs torch, torchvision and transformers (random weights, no download):

    pip install torch torchvision transformers
    python tests/data/make_profile_models.py [--out DIR] [--profile] [NAME ...]

NAME: resnet50, mobilenet_v2, efficientnet_b0, vit (2 layers, hidden 256), bert (2
layers, hidden 128, fed float embeddings: our importer takes no int64 input_ids). The
.onnx files (up to 100 MB) go to DIR (default /tmp/sketchtune-profile-models), not into
the repository. With --profile, each is profiled (models.ort_profile, 1 thread) and one
line per model says how many onnxruntime nodes landed on a task and how many tasks
have an onnxruntime figure, then each task left without one and why.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAMES = ["resnet50", "mobilenet_v2", "efficientnet_b0", "vit", "bert"]


def export(name: str, path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    image = torch.randn(1, 3, 224, 224)
    if name in ("resnet50", "mobilenet_v2", "efficientnet_b0"):
        model, args = getattr(torchvision.models, name)(weights=None), (image,)
    elif name == "vit":
        from torchvision.models.vision_transformer import VisionTransformer

        model = VisionTransformer(image_size=224, patch_size=16, num_layers=2, num_heads=4,
                                  hidden_dim=256, mlp_dim=512)  # fmt: skip
        args = (image,)
    elif name == "bert":
        from transformers import BertConfig, BertModel

        config = BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                            intermediate_size=512)  # fmt: skip
        model, args = _embedded(BertModel(config)), (torch.randn(1, 32, 128),)
    else:
        raise SystemExit(f"unknown model {name!r}; one of {', '.join(NAMES)}")
    model.eval()
    torch.onnx.export(model, args, str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"])  # fmt: skip


def _embedded(bert):
    import torch

    class Embedded(torch.nn.Module):
        """BertModel on float embeddings; token types given, so no GatherElements."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, embeds):
            types = torch.zeros(1, embeds.shape[1], dtype=torch.long)
            return self.bert(inputs_embeds=embeds, token_type_ids=types).last_hidden_state

    return Embedded()


def summarize(path: Path) -> None:
    from models.ort_profile import profile_network

    profile = profile_network(str(path), None, threads=1)
    tasks = profile["tasks"]
    placed = sum(len(t["onnxruntime_nodes"]) for t in tasks)
    total = placed + len(profile["onnxruntime_unplaced"])
    compared = sum(t["onnxruntime_s"] is not None for t in tasks)
    print(f"{path.stem}: {placed} of {total} onnxruntime nodes on a task; "
          f"{compared} of {len(tasks)} tasks compared")  # fmt: skip
    for t in tasks:
        if t["onnxruntime_s"] is None:
            print(f"  task {t['id']}: {t['onnxruntime_note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=NAMES)
    parser.add_argument("--out", default="/tmp/sketchtune-profile-models")
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in options.names:
        path = out / f"{name}.onnx"
        if not path.is_file():
            export(name, path)
        if options.profile:
            summarize(path)


if __name__ == "__main__":
    main()
