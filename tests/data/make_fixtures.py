"""Write the exported-model fixtures of tests/data (run by hand; torch is not a CI dependency).

    python tests/data/make_fixtures.py

tiny_bert.onnx: transformers' BertModel (2 layers, hidden 64, 2 heads, intermediate
128, vocab 100, 16 positions; random weights, seed 0), exported by torch.onnx.export
(dynamo=False, opset 17) with int64 inputs input_ids, attention_mask and
token_type_ids of shape [batch, sequence] and outputs last_hidden_state and
pooler_output. tiny_bert.npz: a seeded input (batch 2, sequence 16, the second row
padded after 11 tokens) and torch's outputs on it, so the tests compare with torch
without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
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


def make_tiny_bert() -> None:
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
    path = HERE / "tiny_bert.onnx"
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=names,
            output_names=["last_hidden_state", "pooler_output"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
        hidden, pooled = model(*args)
    np.savez(
        HERE / "tiny_bert.npz",
        **inputs,
        last_hidden_state=hidden.numpy(),
        pooler_output=pooled.numpy(),
    )
    print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    make_tiny_bert()
