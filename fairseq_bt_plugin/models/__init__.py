from . import bt_transformer_archs  # noqa: F401
