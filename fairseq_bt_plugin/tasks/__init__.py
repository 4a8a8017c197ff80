from . import bt_translation  # noqa: F401
