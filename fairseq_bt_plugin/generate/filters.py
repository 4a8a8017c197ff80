"""Filters for synthetic pairs; each returns the reason a pair is dropped (summary key)."""
import hashlib
from collections import Counter
from typing import Optional, Set, Tuple


def pair_filter_reason(synthetic: str, original: str, synthetic_tokens: int,
                       original_tokens: int, max_len_ratio: float, max_output_tokens: int,
                       keep_identical: bool) -> Optional[str]:
    """Why the pair (synthetic source, original target) is dropped, or None to keep it.

    Token counts exclude eos. Reasons: ``empty_output``, ``output_too_long`` (more than
    ``max_output_tokens``), ``length_ratio`` (either way above ``max_len_ratio``),
    ``identical`` (synthetic text equals the input)."""
    if not synthetic.strip() or synthetic_tokens == 0:
        return "empty_output"
    if max_output_tokens > 0 and synthetic_tokens > max_output_tokens:
        return "output_too_long"
    if max_len_ratio > 0:
        ratio = synthetic_tokens / max(original_tokens, 1)
        if ratio > max_len_ratio or ratio < 1.0 / max_len_ratio:
            return "length_ratio"
    if not keep_identical and synthetic.strip() == original.strip():
        return "identical"
    return None


class DuplicateFilter:
    """Remembers an 8-byte hash of each kept pair (about 100 bytes per pair in a Python set)."""

    def __init__(self):
        self.seen: Set[bytes] = set()

    def is_duplicate(self, synthetic: str, original: str) -> bool:
        key = hashlib.blake2b(f"{synthetic}\t{original}".encode("utf-8"), digest_size=8).digest()
        if key in self.seen:
            return True
        self.seen.add(key)
        return False


def filter_hypotheses(hypotheses, cfg) -> Tuple[list, Counter]:
    """The hypotheses that pass :func:`pair_filter_reason` under ``cfg``'s options, and the
    count of the others by reason."""
    kept, dropped = [], Counter()
    for h in hypotheses:
        reason = pair_filter_reason(h.synthetic, h.original, len(h.synthetic_pieces.split()),
                                    len(h.original_pieces.split()), cfg.max_len_ratio,
                                    cfg.max_output_tokens, cfg.keep_identical)
        if reason is None:
            kept.append(h)
        else:
            dropped[reason] += 1
    return kept, dropped
