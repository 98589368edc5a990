"""The exported-model fixtures of tests/data, read with onnx and numpy alone (the tests and
tests/bench/bench_models.py use this; tests/data/make_fixtures.py writes the files).

Each NAME.onnx was exported by torch (random weights) and NAME.npz holds a seeded input
and torch's outputs on it, under the model's input and output names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

DATA = Path(__file__).parent

# family: a fixture per family of exported model; *_dynamo: torch.onnx.export(dynamo=True)
FIXTURES = {
    "tiny_bert": "BERT: token ids, attention mask, token types",
    "tiny_gpt2": "GPT-2: causal mask",
    "tiny_distilbert": "DistilBERT",
    "tiny_t5_encoder": "T5 encoder: relative position buckets, RMS norm",
    "tiny_bart_encoder": "BART encoder",
    "tiny_vit": "ViT (torchvision)",
    "lstm_lm": "LSTM language model",
    "gru_lm": "GRU language model (bidirectional)",
    "tiny_unet": "UNet: ConvTranspose, Resize nearest and bilinear",
    "conv1d_audio": "Conv1d audio front end (wav2vec2-style)",
    "tiny_bert_dynamo": "BERT, dynamo exporter",
    "tiny_vit_dynamo": "ViT, dynamo exporter",
    "lstm_lm_dynamo": "LSTM language model, dynamo exporter",
}


@dataclass(frozen=True)
class Exported:
    name: str
    path: Path
    inputs: dict[str, np.ndarray]  # the seeded input, by input name
    torch_outputs: dict[str, np.ndarray]  # torch's outputs on it, by output name

    def proto(self) -> onnx.ModelProto:
        return onnx.load(str(self.path))

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: a.shape for n, a in self.inputs.items()}

    def input_shape_args(self) -> list[str]:
        """`--input-shape` arguments for the saved input's shapes (one per input)."""
        args = []
        for name, shape in self.input_shapes.items():
            args += ["--input-shape", f"{name}={','.join(map(str, shape))}"]
        return args


def load(name: str) -> Exported:
    path = DATA / f"{name}.onnx"
    model = onnx.load(str(path), load_external_data=False)
    saved = np.load(DATA / f"{name}.npz")
    inputs = {i.name: saved[i.name] for i in model.graph.input}
    outputs = {o.name: saved[o.name] for o in model.graph.output}
    return Exported(name, path, inputs, outputs)
