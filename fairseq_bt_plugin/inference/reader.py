"""Input reading: raw lines of one or more files, checked and grouped into numbered chunks.

A chunk is ``chunk_size`` consecutive input lines (counting the ones skipped), so chunk
boundaries, chunk numbers and line numbers depend only on the input: the same in every run,
shard and resume.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Tuple

from ..errors import check
from ..text_processing import LINE_BREAKS_KEY, bad_line_error, open_binary, read_raw_lines


SKIP_HINT = " (use --skip-invalid to skip such lines)"


@dataclass
class Chunk:
    index: int
    lines: List[Tuple[int, str]] = field(default_factory=list)  # (input line index, text)
    skipped: Counter = field(default_factory=Counter)  # reason -> lines
    num_lines: int = 0  # input lines in the chunk, skipped ones included
    line_breaks_replaced: int = 0  # kept lines with a line-break character made a space
    selected: bool = True  # False: lines neither kept nor checked (another shard's, or done)


def input_files(spec: str) -> List[str]:
    files = [p for p in spec.split(",") if p]
    check(bool(files), "--input: no file given")
    for p in files:  # fails early, naming the file
        check(next(read_raw_lines(p), None) is not None, f"{p}: empty file (--input)")
    return files


def count_lines(files: List[str]) -> int:
    total = 0
    for p in files:
        with open_binary(p) as f:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return total


def read_chunks(files: List[str], chunk_size: int, max_chars: int, skip_invalid: bool,
                wanted: Callable[[int], bool] = lambda c: True) -> Iterator[Chunk]:
    """Every chunk of the concatenated input. Lines of chunks that are not ``wanted`` (another
    shard's, or already done) are counted but neither kept nor checked (``selected=False``).
    Empty lines, lines over ``max_chars`` characters and (with ``skip_invalid``) lines that
    are not text (invalid UTF-8, NUL bytes: otherwise an error naming file and line) are
    skipped and counted in ``Chunk.skipped``. Line-break characters inside a line (``\\r``,
    ``\\u2028``, ...) become spaces (:func:`~fairseq_bt_plugin.text_processing.one_line`),
    counted in ``Chunk.line_breaks_replaced``."""
    chunk: Optional[Chunk] = None
    index = 0
    counts: Counter = Counter()  # lines with line breaks made spaces, so far
    for path in files:
        for n, text, problem in read_raw_lines(path, counts):
            c = index // chunk_size
            if chunk is None or chunk.index != c:
                if chunk is not None:
                    yield chunk
                chunk = Chunk(c, selected=wanted(c))
            chunk.num_lines += 1
            if chunk.selected:
                if problem:
                    if not skip_invalid:
                        raise bad_line_error(path, n, problem, SKIP_HINT)
                    chunk.skipped[problem] += 1
                elif not text.strip():
                    chunk.skipped["empty_input"] += 1
                elif max_chars > 0 and len(text) > max_chars:
                    chunk.skipped["input_too_long"] += 1
                else:
                    chunk.lines.append((index, text.strip()))
                    chunk.line_breaks_replaced += counts.pop(LINE_BREAKS_KEY, 0)
            counts.clear()
            index += 1
    if chunk is not None:
        yield chunk


def num_chunks(num_lines: int, chunk_size: int) -> int:
    return (num_lines + chunk_size - 1) // chunk_size
