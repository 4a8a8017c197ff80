"""``fairseq-bt-filter``: keep the synthetic pairs of a ``fairseq-bt-backtranslate`` output that
models score best. :mod:`.scoring` (per-token cross-entropies by fairseq's forced decoding,
the dual conditional cross-entropy score, the selection), :mod:`.cli` (options, reading the
generator's output, writing the filtered corpus in the same format).
"""
