"""The torch modules behind the exported-model fixtures (imported by make_fixtures.py only;
needs torch, torchvision and transformers). Each builder returns a `Fixture`: the module
in eval mode (random weights, seeded by the caller), its seeded numpy inputs, its output
names and the dynamic axes of its inputs. Tiny configs: each .onnx is well under a MB."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 100


@dataclass
class Fixture:
    module: nn.Module
    inputs: dict[str, np.ndarray]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)


def tokens(batch: int, sequence: int, seed: int = 0, pad_after: int = 11) -> dict:
    """input_ids and an attention_mask; the last row padded after `pad_after` tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (batch, sequence)).astype(np.int64)
    mask = np.ones((batch, sequence), np.int64)
    mask[-1, pad_after:] = 0
    ids[-1, pad_after:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def token_axes(names) -> dict[str, dict[int, str]]:
    return {n: {0: "batch", 1: "sequence"} for n in names}


class HiddenState(nn.Module):
    """A transformers model called by keyword, returning last_hidden_state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state


class EncoderState(HiddenState):
    """An encoder (T5, BART) has no cache to turn off."""

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def tiny_gpt2() -> Fixture:
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=64, n_layer=2, n_head=2,
                        attn_implementation="eager")  # fmt: skip
    inputs = tokens(2, 16)
    return Fixture(HiddenState(GPT2Model(config)), inputs, ["last_hidden_state"],
                   token_axes(inputs))  # fmt: skip


def tiny_distilbert() -> Fixture:
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=VOCAB, max_position_embeddings=32, dim=64, n_layers=2,
                              n_heads=2, hidden_dim=128, attn_implementation="eager")  # fmt: skip

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = DistilBertModel(config)

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    inputs = tokens(2, 16)
    return Fixture(Model(), inputs, ["last_hidden_state"], token_axes(inputs))


def tiny_t5_encoder() -> Fixture:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=VOCAB, d_model=64, d_kv=32, d_ff=128, num_layers=2,
                      num_heads=2, relative_attention_num_buckets=8,
                      relative_attention_max_distance=16, attn_implementation="eager")  # fmt: skip
    inputs = tokens(2, 16)
    return Fixture(EncoderState(T5EncoderModel(config)), inputs, ["last_hidden_state"],
                   token_axes(inputs))  # fmt: skip


def tiny_bart_encoder() -> Fixture:
    from transformers import BartConfig, BartModel

    config = BartConfig(vocab_size=VOCAB, d_model=64, encoder_layers=2, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=32,
                        attn_implementation="eager")  # fmt: skip
    inputs = tokens(2, 16)
    return Fixture(EncoderState(BartModel(config).get_encoder()), inputs,
                   ["last_hidden_state"], token_axes(inputs))  # fmt: skip


def tiny_vit() -> Fixture:
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                              hidden_dim=64, mlp_dim=128, num_classes=10)  # fmt: skip
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision zeroes the head
    nn.init.normal_(model.heads.head.bias, std=0.5)
    image = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    return Fixture(model, {"pixel_values": image}, ["logits"], {"pixel_values": {0: "batch"}})


class RecurrentLM(nn.Module):
    """Embedding, a 2-layer recurrent net (batch first), a Linear to the vocabulary."""

    def __init__(self, cell: type[nn.Module], bidirectional: bool):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        self.rnn = cell(32, 48, num_layers=2, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(48 * (2 if bidirectional else 1), VOCAB)

    def forward(self, input_ids):
        hidden, _ = self.rnn(self.embed(input_ids))
        return self.head(hidden)


def lstm_lm() -> Fixture:
    ids = tokens(2, 12)["input_ids"]
    return Fixture(RecurrentLM(nn.LSTM, False), {"input_ids": ids}, ["logits"],
                   token_axes(["input_ids"]))  # fmt: skip


def gru_lm() -> Fixture:
    ids = tokens(2, 12)["input_ids"]
    return Fixture(RecurrentLM(nn.GRU, True), {"input_ids": ids}, ["logits"],
                   token_axes(["input_ids"]))  # fmt: skip


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())  # fmt: skip


class TinyUNet(nn.Module):
    """Two levels down (conv, max pool), up by ConvTranspose2d and by F.interpolate in the
    modes torchvision and transformers use (nearest; bilinear, align_corners False/True)."""

    def __init__(self):
        super().__init__()
        self.down1, self.down2, self.mid = block(3, 8), block(8, 16), block(16, 32)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec2 = block(32, 16)
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec1 = block(16 + 8, 8)
        self.head = nn.Conv2d(8 + 8, 2, 1)

    def forward(self, image):
        d1 = self.down1(image)
        d2 = self.down2(F.max_pool2d(d1, 2))
        mid = self.mid(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(mid), d2], 1))
        nearest = F.interpolate(u2, scale_factor=2.0, mode="nearest")
        u1 = self.dec1(torch.cat([self.up1(u2), d1, nearest[:, :8]], 1))
        aligned = F.interpolate(mid[:, :8], size=d1.shape[2:], mode="bilinear",
                                align_corners=True)  # fmt: skip
        half = F.interpolate(F.avg_pool2d(u1, 2), scale_factor=2.0, mode="bilinear",
                             align_corners=False)  # fmt: skip
        return self.head(torch.cat([u1 + half, aligned], 1))


def tiny_unet() -> Fixture:
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    return Fixture(TinyUNet(), {"image": image}, ["mask"])


class AudioFrontEnd(nn.Module):
    """wav2vec2's feature encoder in small: a Conv1d stack (GroupNorm after the first conv,
    GELU), then LayerNorm and a Linear projection over the channels of each frame."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv1d(1, 32, 10, stride=5, bias=False)
        self.norm = nn.GroupNorm(32, 32, affine=True)
        self.convs = nn.ModuleList(nn.Conv1d(32, 32, k, stride=2, bias=False) for k in (3, 3, 2))
        self.layer_norm = nn.LayerNorm(32)
        self.projection = nn.Linear(32, 48)

    def forward(self, audio):
        x = F.gelu(self.norm(self.first(audio[:, None])))
        for conv in self.convs:
            x = F.gelu(conv(x))
        return self.projection(self.layer_norm(x.transpose(1, 2)))


def conv1d_audio() -> Fixture:
    audio = np.random.default_rng(0).standard_normal((2, 1600)).astype(np.float32)
    return Fixture(AudioFrontEnd(), {"audio": audio}, ["features"],
                   {"audio": {0: "batch", 1: "samples"}})  # fmt: skip


BUILDERS = {
    "tiny_gpt2": tiny_gpt2,
    "tiny_distilbert": tiny_distilbert,
    "tiny_t5_encoder": tiny_t5_encoder,
    "tiny_bart_encoder": tiny_bart_encoder,
    "tiny_vit": tiny_vit,
    "lstm_lm": lstm_lm,
    "gru_lm": gru_lm,
    "tiny_unet": tiny_unet,
    "conv1d_audio": conv1d_audio,
}
