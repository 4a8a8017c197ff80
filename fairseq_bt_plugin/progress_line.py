"""The progress lines the translating tools print on stderr, each format defined once:
:data:`TRANSLATED` (``fairseq-bt-evaluate --log-interval``) and :data:`DECODED`
(``fairseq-bt-backtranslate`` when stderr is no terminal). :meth:`LineFormat.format` writes a line
and :meth:`LineFormat.parse` reads its values back (the stage runner's status line reads
``fairseq-bt-evaluate``'s), both from the one template. Standard library only: the stage
runner imports it when run by its path.
"""
import re
from typing import Dict, NamedTuple, Optional


class Kind(NamedTuple):
    """How a field of a line is written, and read back."""

    spec: str  #: format spec (``str.format``)
    pattern: str  #: regular expression of the written text
    type: type  #: the value read back


COUNT = Kind("{}", r"\d+", int)
RATE = Kind("{:.1f}", r"[\d.]+", float)

_FIELD = re.compile(r"\{(\w+)\}")


class LineFormat:
    """A line ``PROG: TEMPLATE``; each ``{name}`` of ``template`` is a field of kind
    ``kinds[name]``."""

    def __init__(self, template: str, **kinds: Kind):
        self.template, self.kinds = template, kinds
        pieces = _FIELD.split(template)  # text, name, text, name, ..., text
        self.names = pieces[1::2]
        self.pattern = re.compile("".join(
            f"({kinds[p].pattern})" if i % 2 else re.escape(p) for i, p in enumerate(pieces)))

    def format(self, prog: str, **values) -> str:
        """The line of ``prog`` with ``values`` (one per field)."""
        return f"{prog}: " + _FIELD.sub(
            lambda m: self.kinds[m.group(1)].spec.format(values[m.group(1)]), self.template)

    def parse(self, text: str) -> Optional[Dict[str, float]]:
        """The values of the first such line in ``text`` (whichever program wrote it); None
        when there is none."""
        m = self.pattern.search(text)
        if m is None:
            return None
        return {name: self.kinds[name].type(value) for name, value in zip(self.names, m.groups())}


#: ``fairseq-bt-evaluate``: sentences translated so far, of all, and the rate
TRANSLATED = LineFormat("{done} of {total} sentences translated, {rate} sentences/s",
                        done=COUNT, total=COUNT, rate=RATE)
#: ``fairseq-bt-backtranslate``: the current chunk, input lines read and sentences decoded so far
#: (in this run: a resumed run skips finished chunks), and the rate
DECODED = LineFormat("chunk {chunk}: {lines} input lines, {decoded} sentences decoded in this "
                     "run, {rate} sentences/s", chunk=COUNT, lines=COUNT, decoded=COUNT,
                     rate=RATE)
