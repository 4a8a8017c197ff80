"""Initialise a freshly built model from a parent checkpoint (transfer learning).

Modules: :mod:`.config` (the ``--init-*`` options), :mod:`.initialise` (copying and
remapping), :mod:`.freezing`, :mod:`.task_mixin` (the tasks' side), :mod:`.trainer_hook`
(the patch to fairseq's ``Trainer``, installed by :func:`install_trainer_hook`) and
:mod:`.init_checkpoint` (``fairseq-bt-init-checkpoint``).

Applied after the model is built (:class:`TransferTaskMixin` does it for ``bt_translation``
and ``bt_denoising``; ``fairseq-bt-init-checkpoint`` does it offline for stock tasks):

* parts: ``encoder``, ``decoder`` (their layers, norms, learned positions), ``embeddings``
  (token embeddings), ``output_projection``, ``latent`` (the z modules of
  ``bt_transformer_vae``); ``all`` is every part that both models have.
* vocabulary remapping: parent and child dictionaries may differ. A row of a vocabulary-sized
  parameter (embeddings, output projection, bag-of-words head) is copied bit-exactly when its
  token is in both dictionaries; tokens new to the child keep the child's own initialisation.
  The share of the child's tokens found in the parent (coverage) is logged.
* every other loaded parameter must have the same name and shape in both models; a
  mismatch is an error naming the parameter. Latent modules that only one mode has (the
  posterior of a translation-mode VAE) are left at their initialisation and listed.
* freezing (:mod:`.freezing`): the loaded parameters, and of a vocabulary-sized parameter
  only the rows copied from the parent, stay at their values for the first
  ``--init-freeze-updates`` updates of the run, then train normally (rows of new tokens train
  from update 1); exact under ``legacy_ddp`` and ``--fp16`` too. A checkpoint written by
  ``fairseq-bt-init-checkpoint --init-freeze-updates N`` carries the frozen names and rows in
  its ``extra_state["bt_init"]``: with the plugin loaded, any task (stock ``translation`` too)
  that starts from it (``--finetune-from-model`` or ``--restore-file``) freezes them; a resumed
  run goes on freezing, a new run started from a later checkpoint does not
  (:mod:`.trainer_hook`).

The parent's dictionaries are read from ``--init-parent-dicts`` or else from the data
directory recorded in the parent checkpoint: ``dict.SRC.txt`` and ``dict.TGT.txt`` of its
language pair, or ``dict.LANG.txt`` of a ``bt_denoising`` parent; a multilingual parent
(``bt_multilingual``, fairseq's ``translation_multi_simple_epoch``) gets them from its own task
set up on that directory, with the language tokens (``__en__``) the task adds.
"""
from .config import INIT_PARTS, TransferConfig, parse_parts
from .freezing import Freezing, freeze_record, freezing_of
from .initialise import TransferResult, coverage, init_from_parent
from .task_mixin import TransferTaskMixin
from .trainer_hook import install_trainer_hook

__all__ = ["INIT_PARTS", "Freezing", "TransferConfig", "TransferResult", "TransferTaskMixin",
           "coverage", "freeze_record", "freezing_of", "init_from_parent",
           "install_trainer_hook", "parse_parts"]
