from . import bt_translation  # noqa: F401
from . import bt_denoising  # noqa: F401
from . import bt_multilingual  # noqa: F401
