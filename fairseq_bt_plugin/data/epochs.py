"""Training data that change every epoch (noise, synthetic sample) and fairseq's iterators.

Written for fairseq 0.12. fairseq keeps one ``EpochBatchIterator``, its DataLoader and the
DataLoader's worker processes across epochs when the dataset says
``can_reuse_epoch_itr_across_epochs``. The workers hold copies of the dataset made when they
started, and ``set_epoch`` only reaches the copy in the main process: with ``--num-workers``
>= 1 every epoch would repeat the noise and synthetic sample of the first. So these datasets
say False (:class:`RebuiltEveryEpoch`), and fairseq builds a new iterator, with new workers
started after ``set_epoch``, every epoch. That also makes each epoch's batches depend on
``(seed, epoch)`` only, so a resumed run gets the batches of an uninterrupted one (a reused
iterator keeps the batches made at its first epoch).

An ``EpochBatchIterator`` refers to itself through its batch sampler, so fairseq's previous
iterator, and its worker processes, live on until Python's cycle collector runs: one more set
of idle workers per epoch (seen: 14 processes after 7 epochs with ``--num-workers 2``).
:class:`StopsPreviousWorkers` lets them go when the next iterator for the dataset is made.
"""
import weakref


class RebuiltEveryEpoch:
    """Dataset mixin: fairseq must build a new batch iterator (and workers) every epoch."""

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False


class StopsPreviousWorkers:
    """Task mixin: a new batch iterator for a dataset that cannot reuse one ends the previous
    iterator for it (as ``fairseq-train`` uses them), and its worker processes exit."""

    def get_batch_iterator(self, dataset, *args, **kwargs):
        itr = super().get_batch_iterator(dataset, *args, **kwargs)
        if not self.can_reuse_epoch_itr(dataset):
            last = self.__dict__.setdefault("_last_batch_iterator", weakref.WeakKeyDictionary())
            previous = last.get(dataset, lambda: None)()
            if previous is not None and previous is not itr:
                # the references to its DataLoader iterator; torch stops the workers once
                # nothing refers to it
                previous._cur_epoch_itr = previous._next_epoch_itr = previous.dataloader = None
            last[dataset] = weakref.ref(itr)
        return itr
