"""The translator of ``--backend``: :class:`~.translator.Translator` (fairseq) or
:class:`~.translator_ct2.CT2Translator` (CTranslate2); both backends sit below this module."""
from .config import DecodingConfig, is_ct2_model_dir
from .translator import Translator
from .translator_ct2 import CT2ModelTranslator, CT2Translator


def build_translator(cfg: DecodingConfig, ct2_model_dir: str, **kwargs) -> Translator:
    """The translator of ``--backend`` (``kwargs``: :class:`Translator`'s). CTranslate2 keeps
    its converted model in ``--ct2-model-dir``, or else in ``ct2_model_dir`` (the tool's); a
    ``--path`` that is a CTranslate2 model directory is decoded as it is."""
    if cfg.backend == "ctranslate2" and is_ct2_model_dir(cfg.path):
        return CT2ModelTranslator(cfg, **kwargs)
    if cfg.backend == "ctranslate2":
        return CT2Translator(cfg, cfg.ct2_model_dir or ct2_model_dir, **kwargs)
    return Translator(cfg, **kwargs)
