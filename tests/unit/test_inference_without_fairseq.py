"""What the CTranslate2 backend computes without fairseq stands for what fairseq computes: the
search's defaults are fairseq's GenerationConfig's, an output's pieces are those fairseq's
Dictionary gives from their ids, and --path splits as fairseq's split_paths."""
import dataclasses

from fairseq import utils
from fairseq.data import Dictionary
from fairseq.dataclass.configs import GenerationConfig

from fairseq_bt_plugin.inference.config import model_paths
from fairseq_bt_plugin.inference.translator import Search
from fairseq_bt_plugin.inference.translator_ct2 import FAIRSEQ_SYMBOLS, output_pieces


def test_search_defaults_are_fairseqs():
    fairseq = GenerationConfig()
    for f in dataclasses.fields(Search):
        assert f.default == getattr(fairseq, f.name), f.name


def test_output_pieces_are_fairseqs_string_of_their_ids():
    d = Dictionary()
    for piece in ("▁a", "b", "▁c", "<BT>"):
        d.add_symbol(piece)
    assert tuple(d.symbols[:4]) == FAIRSEQ_SYMBOLS
    tokens = ["▁a", "<s>", "b", "unknown", "</s>", "<pad>", "<unk>", "<BT>", "▁c"]
    ids = d.encode_line(" ".join(tokens), add_if_not_exist=False, append_eos=True).long()
    expected = d.string(ids)
    assert output_pieces(tokens, frozenset(d.symbols)) == expected == \
        "▁a b <unk> <pad> <unk> <BT> ▁c"
    assert output_pieces([], frozenset(d.symbols)) == d.string(ids[-1:]) == ""


def test_paths_split_as_fairseqs():
    for path in ("a.pt", "a.pt:b.pt", "a.pt::b.pt", "s3://x/a.pt|s3://x/b.pt", ""):
        assert model_paths(path) == [p for p in utils.split_paths(path) if p]
