"""Write the exported-model fixtures of tests/data (run by hand; torch is not a CI dependency).

    pip install torch torchvision transformers onnxscript
    python tests/data/make_fixtures.py [NAME ...]      # all of them without a NAME

Every fixture: random weights (seed 0), a seeded input, NAME.onnx and NAME.npz (the
input and torch's outputs on it, so the tests compare with torch without torch).
TorchScript exporter (dynamo=False, opset 17) unless the name ends in `_dynamo`
(torch.onnx.export(dynamo=True), opset 18). The torch modules: fixture_models.py.

tiny_bert.onnx: transformers' BertModel (2 layers, hidden 64, 2 heads, intermediate
128, vocab 100, 16 positions; random weights, seed 0), exported by torch.onnx.export
(dynamo=False, opset 17) with int64 inputs input_ids, attention_mask and
token_type_ids of shape [batch, sequence] and outputs last_hidden_state and
pooler_output. tiny_bert.npz: a seeded input (batch 2, sequence 16, the second row
padded after 11 tokens) and torch's outputs on it, so the tests compare with torch
without torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
DYNAMO = ("tiny_vit", "tiny_bert", "lstm_lm")  # also exported by the dynamo exporter
BATCH, SEQUENCE, VOCAB = 2, 16, 100


def bert_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (BATCH, SEQUENCE)).astype(np.int64)
    mask = np.ones((BATCH, SEQUENCE), np.int64)
    mask[1, 11:] = 0
    ids[1, 11:] = 0
    types = np.zeros((BATCH, SEQUENCE), np.int64)
    types[:, SEQUENCE // 2 :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def make_tiny_bert(dynamo: bool = False) -> None:
    import torch
    from transformers import BertConfig, BertModel

    class Wrapper(torch.nn.Module):
        """BertModel called by keyword (its positional parameters vary across versions)."""

        def __init__(self, bert: BertModel):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state, out.pooler_output

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=SEQUENCE,
        attn_implementation="eager",
    )
    model = Wrapper(BertModel(config)).eval()
    inputs = bert_inputs()
    names = list(inputs)
    args = tuple(torch.from_numpy(inputs[n]) for n in names)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    name = "tiny_bert_dynamo" if dynamo else "tiny_bert"
    path = HERE / f"{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=names,
            output_names=["last_hidden_state", "pooler_output"],
            dynamic_axes=dynamic,
            opset_version=18 if dynamo else 17,
            dynamo=dynamo,
            external_data=False,
        )
        hidden, pooled = model(*args)
    np.savez(
        HERE / f"{name}.npz",
        **inputs,
        last_hidden_state=hidden.numpy(),
        pooler_output=pooled.numpy(),
    )
    print(f"{path}: {path.stat().st_size} bytes")


def export(name: str) -> None:
    import fixture_models
    import torch

    dynamo = name.endswith("_dynamo")
    torch.backends.mha.set_fastpath_enabled(False)  # nn.MultiheadAttention as plain ops
    torch.manual_seed(0)
    fixture = fixture_models.BUILDERS[name.removesuffix("_dynamo")]()
    model, inputs = fixture.module.eval(), fixture.inputs
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    path = HERE / f"{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=list(inputs),
            output_names=fixture.outputs,
            dynamic_axes=fixture.dynamic or None,
            opset_version=18 if dynamo else 17,
            dynamo=dynamo,
            external_data=False,
        )
        outputs = model(*args)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    saved = {n: o.numpy() for n, o in zip(fixture.outputs, outputs, strict=True)}
    np.savez(HERE / f"{name}.npz", **inputs, **saved)
    print(f"{path}: {path.stat().st_size} bytes")


def names() -> list[str]:
    import fixture_models

    return ["tiny_bert", *fixture_models.BUILDERS, *(f"{n}_dynamo" for n in DYNAMO)]


def make(name: str) -> None:
    if name == "tiny_bert":
        make_tiny_bert()
    elif name == "tiny_bert_dynamo":
        make_tiny_bert(dynamo=True)
    else:
        export(name)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    for name in sys.argv[1:] or names():
        make(name)
