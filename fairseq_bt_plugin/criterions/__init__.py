from . import bt_label_smoothed_cross_entropy  # noqa: F401
from . import bt_vae_seq2seq  # noqa: F401
