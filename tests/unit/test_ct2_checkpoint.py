"""What CTranslate2's converter is given: a checkpoint of fairseq-hydra-train (model config a
dict) rewritten with an argparse Namespace, its task config a dict or, for a task fairseq still
configures with argparse (the multilingual one), a Namespace; the multilingual settings read
from either form."""
import argparse

import pytest
import torch

from fairseq_bt_plugin.inference.translator import language_symbols, multilingual_settings
from fairseq_bt_plugin.inference.translator_ct2 import argparse_checkpoint, task_config

MODEL = {"_name": "bt_transformer_tiny", "encoder_layers": 1, "dropout": 0.1}
MULTI = {"_name": "bt_multilingual", "lang_pairs": "de-en,fr-en", "encoder_langtok": "src",
         "decoder_langtok": True, "lang_tok_style": "multilingual", "data": "bin"}


@pytest.mark.parametrize("task", [dict(MULTI), argparse.Namespace(**MULTI)],
                         ids=["dict", "namespace"])
def test_a_hydra_checkpoint_rewritten_for_the_converter(tmp_path, task):
    state = {"args": None, "cfg": {"model": dict(MODEL), "task": task}, "model": {}}
    scratch = tmp_path / "ckpt.pt"
    assert argparse_checkpoint(state, "orig.pt", str(scratch)) == str(scratch)
    model = torch.load(scratch, weights_only=False)["cfg"]["model"]
    assert isinstance(model, argparse.Namespace)
    assert (model.arch, model.task, model.lang_pairs, model.encoder_layers) == (
        "bt_transformer_tiny", "bt_multilingual", "de-en,fr-en", 1)
    settings = multilingual_settings(task_config(state))
    assert settings == {"lang_pairs": ["de-en", "fr-en"], "encoder_langtok": "src",
                        "decoder_langtok": True, "lang_tok_style": "multilingual"}
    assert language_symbols(settings, "fr", "en") == ("__fr__", "__en__")


def test_language_tokens_of_other_settings():
    from fairseq_bt_plugin.errors import BTUserError

    base = {"lang_pairs": ["en-de", "en-fr"], "lang_tok_style": "multilingual"}
    assert language_symbols({**base, "encoder_langtok": "tgt", "decoder_langtok": True},
                            "en", "fr") == ("__fr__", "__fr__")
    assert language_symbols({**base, "encoder_langtok": None, "decoder_langtok": True},
                            "en", "de") == (None, "__de__")
    assert language_symbols({**base, "encoder_langtok": "src", "decoder_langtok": False,
                             "lang_tok_style": "mbart"}, "en", "de") == ("[en]", None)
    assert language_symbols(None, "en", "de") == (None, None)
    with pytest.raises(BTUserError, match="translates en-de, en-fr, not de-en"):
        language_symbols({**base, "encoder_langtok": "src", "decoder_langtok": True}, "de", "en")
    assert multilingual_settings(argparse.Namespace(source_lang="de", target_lang="en")) is None
    with pytest.raises(BTUserError, match="lang-tok-replacing-bos-eos"):
        multilingual_settings(argparse.Namespace(lang_pairs="a-b", lang_tok_replacing_bos_eos=True))


def test_a_checkpoint_of_argparse_training_is_given_as_it_is():
    assert argparse_checkpoint({"args": argparse.Namespace(arch="x"), "cfg": None}, "orig.pt",
                               "unused.pt") == "orig.pt"
