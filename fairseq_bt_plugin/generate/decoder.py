"""The reverse model of ``fairseq-bt-backtranslate``: the shared translator
(:mod:`fairseq_bt_plugin.inference`) with back-translation's search modes (``--mode``,
``--nbest``), its seed and ``noised_beam``'s noise."""
import os
from typing import Any, Dict, Optional

import numpy as np

from ..data.noising import build_noiser
from ..inference.factory import build_translator
from ..inference.translator import Noise, Translator, derived_seed
from .config import BTGenerateConfig


def search_options(cfg: BTGenerateConfig) -> Dict[str, Any]:
    """The fields of fairseq's ``GenerationConfig`` that ``--mode`` sets."""
    return dict(beam={"greedy": 1, "sample": cfg.nbest}.get(cfg.mode, cfg.beam),
                nbest=cfg.nbest, temperature=cfg.temperature, sampling=cfg.mode == "sample",
                sampling_topk=cfg.sampling_topk, sampling_topp=cfg.sampling_topp)


def reverse_model(cfg: BTGenerateConfig) -> Translator:
    """The translator of ``cfg``; a CTranslate2 model is kept in ``PREFIX.work/ct2_model``."""

    def noise(translator: Translator) -> Optional[Noise]:
        if cfg.mode != "noised_beam":
            return None
        noiser = build_noiser(translator.tgt_dict, cfg, "noise_", os.path.join(
            translator.data, f"dict.{cfg.target_lang}.txt"))
        if noiser is None:
            return None
        return lambda tokens, line, k: noiser(tokens, np.random.RandomState(
            derived_seed(cfg.seed, line, k)))

    return build_translator(
        cfg, os.path.join(cfg.output_dir, f"{cfg.prefix}.work", "ct2_model"),
        search=search_options(cfg), seed=cfg.seed, noise=noise, keep=frozenset({cfg.noise_filler}))
