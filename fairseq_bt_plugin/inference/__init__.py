"""Inference for every tool that translates (``fairseq-bt-backtranslate``, ``fairseq-bt-evaluate``):
:mod:`.config` (decoding options), :mod:`.reader` (input chunks), :mod:`.translator` (fairseq
backend), :mod:`.translator_ct2` (CTranslate2 backend), :mod:`.factory` (the backend's
translator, :func:`~.factory.build_translator`).
"""
