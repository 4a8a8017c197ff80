"""Every bt_ name resolves to this package's class; stock components still work."""
import fairseq_bt_plugin  # noqa: F401
from fairseq.criterions import CRITERION_REGISTRY
from fairseq.models import ARCH_MODEL_REGISTRY
from fairseq.tasks import TASK_REGISTRY

from helpers import SRC, TGT, setup_task


def test_bt_names_resolve_to_plugin_classes():
    names = {**{k: v for k, v in TASK_REGISTRY.items() if k.startswith("bt_")},
             **{k: v for k, v in CRITERION_REGISTRY.items() if k.startswith("bt_")}}
    assert "bt_translation" in names and "bt_label_smoothed_cross_entropy" in names
    for name, cls in names.items():
        assert cls.__module__.startswith("fairseq_bt_plugin."), (name, cls)
    assert ARCH_MODEL_REGISTRY["bt_transformer_tiny"].__name__ == "TransformerModel"


def test_stock_translation_still_works(corpus):
    task, _ = setup_task([str(corpus.bin), "--task", "translation", "-s", SRC, "-t", TGT])
    assert type(task).__name__ == "TranslationTask"
    task.load_dataset("train")
    assert len(task.dataset("train")) == 500
