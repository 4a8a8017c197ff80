"""A LanguagePairDataset whose source is re-noised every epoch (denoising autoencoding)."""
from fairseq.data import LanguagePairDataset

from .epochs import RebuiltEveryEpoch


class DenoisingPairDataset(RebuiltEveryEpoch, LanguagePairDataset):
    """(noised sentence, clean sentence) pairs. Stock ``LanguagePairDataset`` does not pass
    ``set_epoch`` on to its source; this one does, so a
    :class:`~fairseq_bt_plugin.data.synthetic_source_dataset.SyntheticSourceDataset` source
    draws fresh noise each epoch (from ``example_rng(seed, epoch, index)``)."""

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        if hasattr(self.src, "set_epoch"):
            self.src.set_epoch(epoch)
