from . import bt_transformer_archs  # noqa: F401
from . import bt_transformer_vae  # noqa: F401
