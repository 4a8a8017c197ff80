"""``TransferConfig``: the ``--init-*`` options of the tasks that initialise from a parent
(``bt_translation``, ``bt_denoising``) and of ``fairseq-bt-init-checkpoint``, and the names
of the parts that can be loaded."""
from dataclasses import dataclass, field
from typing import List, Tuple

from fairseq.dataclass import FairseqDataclass

from ..errors import check

INIT_PARTS = ("encoder", "decoder", "embeddings", "output_projection", "latent")


@dataclass
class TransferConfig(FairseqDataclass):
    init_from: str = field(
        default="",
        metadata={"help": "parent checkpoint to initialise the new model from (transfer "
                  "learning); ignored when the model is loaded from a checkpoint, e.g. when "
                  "training resumes from checkpoint_last.pt"})
    init_parts: str = field(
        default="all",
        metadata={"help": "comma-separated parts to take from --init-from: encoder, decoder, "
                  "embeddings, output_projection, latent; 'all': every part both models have"})
    init_freeze_updates: int = field(
        default=0,
        metadata={"help": "keep the loaded parameters fixed for this many updates, then "
                  "train them (0: never frozen)"})
    init_parent_dicts: str = field(
        default="",
        metadata={"help": "directory with the parent's dict.*.txt; default: the data "
                  "directory recorded in the parent checkpoint"})


def parse_parts(spec: str) -> Tuple[List[str], bool]:
    """``(parts, is_all)`` from the ``--init-parts`` string."""
    names = [p.strip() for p in spec.split(",") if p.strip()]
    if names == ["all"]:
        return list(INIT_PARTS), True
    bad = [p for p in names if p not in INIT_PARTS]
    check(not bad and names, f"--init-parts: unknown part(s) {', '.join(bad) or '(none)'}; "
          f"choose from {', '.join(INIT_PARTS)} or 'all'")
    return names, False
