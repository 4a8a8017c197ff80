"""Small transformer sizes for CPU tests and demos (fairseq's ``transformer`` model)."""
from fairseq.models import register_model_architecture
from fairseq.models.transformer import base_architecture


def _sizes(args, layers: int, dim: int, ffn: int, heads: int) -> None:
    """Encoder and decoder of the same size, unless set on the command line."""
    for side in ("encoder", "decoder"):
        for name, value in (("layers", layers), ("embed_dim", dim), ("ffn_embed_dim", ffn),
                            ("attention_heads", heads)):
            setattr(args, f"{side}_{name}", getattr(args, f"{side}_{name}", value))
    base_architecture(args)


@register_model_architecture("transformer", "bt_transformer_tiny")
def bt_transformer_tiny(args):
    """Unit tests: 1+1 layers, 32 dimensions. Trains a few updates in seconds on CPU."""
    _sizes(args, layers=1, dim=32, ffn=64, heads=2)


@register_model_architecture("transformer", "bt_transformer_small")
def bt_transformer_small(args):
    """CPU demo size: 3+3 layers, 256 dimensions, 4 heads, 1024 FFN."""
    _sizes(args, layers=3, dim=256, ffn=1024, heads=4)
