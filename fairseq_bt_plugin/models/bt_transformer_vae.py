"""Model ``bt_transformer_vae``: a fairseq transformer with a sentence-level Gaussian latent z.

Two modes (``--latent-mode``):

* ``translation`` (conditional VAE): prior ``p(z|x)`` from the mean-pooled source encoding,
  posterior ``q(z|x,y)`` from the pooled source encoding and the pooled target (its
  decoder input embeddings, or the shared encoder run on it: ``--latent-posterior-input``).
* ``autoencoder``: ``q(z|x)`` from the pooled source encoding against a standard normal prior
  (for ``bt_denoising``: the source is the noised sentence, the target the clean one).

The decoder sees z as one extra encoder-output position (``latent_proj(z)`` appended after the
source states, never masked), so fairseq's decoder, incremental decoding and beam reordering
are unchanged. The encoder's own ``forward`` (what ``fairseq-generate`` calls) uses the mean
of the source-side Gaussian: the prior mean in translation mode, the posterior mean in
autoencoder mode. Training samples z from q (reparameterisation); evaluation uses q's mean.

Both modes name the source-side Gaussian ``encoder.source_latent``, so an autoencoder
pretrained with ``bt_denoising`` hands its q(z|x) to a translation child as the prior p(z|x)
(``--init-parts latent``); the child's posterior is new and starts from its own init.

The decoder output extras carry ``extra["latent"]``: ``q_mu``, ``q_logvar``, ``p_mu``,
``p_logvar`` (None for the standard normal), ``z`` and, with a bag-of-words head,
``bow_logits`` and ``bow_side`` (which side it reconstructs), for the ``bt_vae_seq2seq``
criterion. ``--print-alignment`` is not supported (the extra position shifts attention).
"""
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import (
    TransformerConfig,
    TransformerEncoderBase,
    TransformerModel,
    base_architecture,
)
from torch import Tensor

from ..errors import check

LATENT_MODES = ("translation", "autoencoder")
POSTERIOR_INPUTS = ("embeddings", "encoder")
BOW_SIDES = ("auto", "source", "target", "none")


@dataclass
class BTTransformerVAEConfig(FairseqDataclass):
    """Latent-variable options; the transformer options are fairseq's own."""

    latent_dim: int = field(default=32, metadata={"help": "size of the sentence latent z"})
    latent_mode: ChoiceEnum(LATENT_MODES) = field(
        default="translation",
        metadata={"help": "translation: prior p(z|x), posterior q(z|x,y); autoencoder: "
                  "q(z|x) against a standard normal (use with bt_denoising)"})
    latent_posterior_input: ChoiceEnum(POSTERIOR_INPUTS) = field(
        default="embeddings",
        metadata={"help": "translation mode: how q(z|x,y) reads the target: 'embeddings' "
                  "(mean of the decoder input embeddings, cheap) or 'encoder' (the shared "
                  "encoder run on the target; needs one dictionary for both sides)"})
    latent_bow: ChoiceEnum(BOW_SIDES) = field(
        default="auto",
        metadata={"help": "bag-of-words head predicting the words of one side from z (the "
                  "reconstruction term of bt_vae_seq2seq, --rec-weight): source, target, "
                  "none, or auto (source in translation mode, target -- the clean sentence -- "
                  "in autoencoder mode)"})


def reparameterize(mu: Tensor, logvar: Tensor, generator: Optional[torch.Generator] = None
                   ) -> Tensor:
    """``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``; differentiable in mu and logvar."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def masked_mean(x: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
    """Mean over time of ``x`` (T x B x C) ignoring padded positions (B x T, True = pad)."""
    if padding_mask is None:
        return x.mean(dim=0)
    keep = (~padding_mask).transpose(0, 1).unsqueeze(-1).to(x.dtype)  # T x B x 1
    return (x * keep).sum(dim=0) / keep.sum(dim=0).clamp(min=1.0)


class GaussianHead(nn.Module):
    """Features -> (mu, logvar) of a diagonal Gaussian: Linear, tanh, Linear."""

    def __init__(self, in_dim: int, hidden_dim: int, latent_dim: int):
        super().__init__()
        self.hidden = nn.Linear(in_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, 2 * latent_dim)

    def forward(self, h: Tensor) -> Tuple[Tensor, Tensor]:
        mu, logvar = self.out(torch.tanh(self.hidden(h))).chunk(2, dim=-1)
        return mu, logvar


class BTVAEEncoder(TransformerEncoderBase):
    """Transformer encoder whose output carries z as one extra (last) position."""

    def build_latent(self, latent_dim: int) -> None:
        dim = self.embed_tokens.embedding_dim
        self.source_latent = GaussianHead(dim, dim, latent_dim)
        self.latent_proj = nn.Linear(latent_dim, dim)

    def encode(self, src_tokens, src_lengths=None, return_all_hiddens: bool = False,
               token_embeddings=None) -> Tuple[Dict[str, List[Tensor]], Tensor]:
        """Plain transformer encoding (no latent) and its masked mean (B x C)."""
        out = self.forward_scriptable(src_tokens, src_lengths, return_all_hiddens,
                                      token_embeddings)
        return out, masked_mean(out["encoder_out"][0], out["encoder_padding_mask"][0])

    def append_latent(self, out: Dict[str, List[Tensor]], z: Tensor) -> Dict[str, List[Tensor]]:
        x = out["encoder_out"][0]  # T x B x C
        mask = out["encoder_padding_mask"][0]  # B x T
        slot = self.latent_proj(z).to(x.dtype).unsqueeze(0)  # 1 x B x C
        out = dict(out)
        out["encoder_out"] = [torch.cat([x, slot], dim=0)]
        out["encoder_padding_mask"] = [torch.cat([mask, mask.new_zeros(mask.size(0), 1)], dim=1)]
        return out

    def forward(self, src_tokens, src_lengths: Optional[Tensor] = None,
                return_all_hiddens: bool = False, token_embeddings: Optional[Tensor] = None):
        """Inference path (``fairseq-generate``): z is the mean of the source-side Gaussian."""
        out, pooled = self.encode(src_tokens, src_lengths, return_all_hiddens, token_embeddings)
        mu, _ = self.source_latent(pooled)
        return self.append_latent(out, mu)


@register_model("bt_transformer_vae")
class BTTransformerVAEModel(TransformerModel):
    """Transformer with a sentence-level Gaussian latent (see the module docstring)."""

    #: parameter-name prefixes of the latent modules (``--init-parts latent`` in transfer/initialise.py)
    bt_latent_prefixes = ("encoder.source_latent.", "encoder.latent_proj.",
                          "posterior_latent.", "bow_proj.")

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        gen_parser_from_dataclass(parser, BTTransformerVAEConfig(), delete_default=True)

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        return BTVAEEncoder(TransformerConfig.from_namespace(args), src_dict, embed_tokens)

    @classmethod
    def build_model(cls, args, task):
        vae_defaults(args)
        check(args.latent_dim > 0, f"--latent-dim must be > 0, got {args.latent_dim}")
        model = super().build_model(args, task)
        model.build_latent(args, task)
        return model

    def build_latent(self, args, task) -> None:
        self.latent_dim = args.latent_dim
        self.latent_mode = str(args.latent_mode)
        self.posterior_input = str(args.latent_posterior_input)
        bow = str(args.latent_bow)
        if bow == "auto":
            bow = "source" if self.latent_mode == "translation" else "target"
        self.bow_side = None if bow == "none" else bow
        self.bt_num_updates = 0
        self.encoder.build_latent(self.latent_dim)
        enc_dim = self.encoder.embed_tokens.embedding_dim
        dec_dim = self.decoder.embed_tokens.embedding_dim
        self.posterior_latent = None
        if self.latent_mode == "translation":
            if self.posterior_input == "encoder":
                check(task.source_dictionary == task.target_dictionary,
                      "--latent-posterior-input encoder runs the encoder on the target: it "
                      "needs one (joined) dictionary for both sides")
                tgt_dim = enc_dim
            else:
                tgt_dim = dec_dim
            self.posterior_latent = GaussianHead(enc_dim + tgt_dim, enc_dim, self.latent_dim)
        self.bow_proj = None
        if self.bow_side is not None:
            d = task.source_dictionary if self.bow_side == "source" else task.target_dictionary
            self.bow_proj = nn.Linear(self.latent_dim, len(d))

    @property
    def bt_vocab_parameters(self) -> Dict[str, str]:
        """Parameters with one row per dictionary entry, and the side of that dictionary."""
        if self.bow_proj is None:
            return {}
        return {"bow_proj.weight": self.bow_side, "bow_proj.bias": self.bow_side}

    def set_num_updates(self, num_updates):
        self.bt_num_updates = num_updates  # read by the bt_vae_seq2seq criterion (beta(t))
        super().set_num_updates(num_updates)

    def pool_target(self, prev_output_tokens: Tensor) -> Tensor:
        """Target summary for q(z|x,y): B x C."""
        pad = prev_output_tokens.eq(self.decoder.padding_idx)
        if self.posterior_input == "encoder":
            out, pooled = self.encoder.encode(prev_output_tokens)
            return pooled
        emb = self.decoder.embed_tokens(prev_output_tokens).transpose(0, 1)  # T x B x C
        return masked_mean(emb, pad)

    def latent(self, pooled_src: Tensor, prev_output_tokens: Tensor) -> Dict[str, Optional[Tensor]]:
        src_mu, src_logvar = self.encoder.source_latent(pooled_src)
        if self.latent_mode == "translation":
            h = torch.cat([pooled_src, self.pool_target(prev_output_tokens)], dim=-1)
            q_mu, q_logvar = self.posterior_latent(h)
            p_mu, p_logvar = src_mu, src_logvar
        else:
            q_mu, q_logvar, p_mu, p_logvar = src_mu, src_logvar, None, None
        z = reparameterize(q_mu, q_logvar) if self.training else q_mu
        return {"q_mu": q_mu, "q_logvar": q_logvar, "p_mu": p_mu, "p_logvar": p_logvar, "z": z}

    def forward(self, src_tokens, src_lengths, prev_output_tokens, return_all_hiddens: bool = True,
                features_only: bool = False, alignment_layer: Optional[int] = None,
                alignment_heads: Optional[int] = None):
        """Training / scoring: z ~ q (its mean in eval mode); extras gain ``latent``."""
        enc, pooled = self.encoder.encode(src_tokens, src_lengths, return_all_hiddens)
        lat = self.latent(pooled, prev_output_tokens)
        enc = self.encoder.append_latent(enc, lat["z"])
        x, extra = self.decoder(prev_output_tokens, encoder_out=enc, features_only=features_only,
                                alignment_layer=alignment_layer, alignment_heads=alignment_heads,
                                src_lengths=src_lengths, return_all_hiddens=return_all_hiddens)
        if self.bow_proj is not None:
            lat["bow_logits"] = self.bow_proj(lat["z"])  # B x V
            lat["bow_side"] = self.bow_side
        extra["latent"] = lat
        return x, extra


def vae_defaults(args) -> None:
    """Fill missing latent options from :class:`BTTransformerVAEConfig` (their one home)."""
    for f in fields(BTTransformerVAEConfig):
        if not hasattr(args, f.name):
            setattr(args, f.name, f.default)


@register_model_architecture("bt_transformer_vae", "bt_transformer_vae_base")
def bt_transformer_vae_base(args):
    """fairseq's transformer base sizes (6+6 layers, 512 dimensions) plus the latent."""
    vae_defaults(args)
    base_architecture(args)


@register_model_architecture("bt_transformer_vae", "bt_transformer_vae_tiny")
def bt_transformer_vae_tiny(args):
    """Tests and CPU demos: the sizes of bt_transformer_tiny (1+1 layers, 32 dimensions),
    latent of 8 dimensions."""
    from .bt_transformer_archs import bt_transformer_tiny

    args.latent_dim = getattr(args, "latent_dim", 8)
    vae_defaults(args)
    bt_transformer_tiny(args)


@register_model_architecture("bt_transformer_vae", "bt_transformer_vae_small")
def bt_transformer_vae_small(args):
    """CPU demos: the sizes of bt_transformer_small (3+3 layers, 256 dimensions) plus the
    latent, so a pretrained (V)AE transfers to a bt_transformer_small child part by part."""
    from .bt_transformer_archs import bt_transformer_small

    vae_defaults(args)
    bt_transformer_small(args)
