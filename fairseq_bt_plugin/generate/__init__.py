"""``fairseq-bt-backtranslate``: back-translate target-language monolingual text.

A reverse (target->source) fairseq model turns each input sentence into one or more synthetic
source sentences. Modules: :mod:`.config` (options), :mod:`.decoder` (the reverse model: the
shared :mod:`fairseq_bt_plugin.inference` translator with the search modes and noise),
:mod:`.filters`, :mod:`.writer` (resumable chunk store, final files, binarized corpus),
:mod:`.convert` (``fairseq-generate`` logs), :mod:`.cli`.
"""
