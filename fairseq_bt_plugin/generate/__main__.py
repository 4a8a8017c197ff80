"""``python -m fairseq_bt_plugin.generate``: same as ``fairseq-bt-backtranslate``."""
from .cli import main

if __name__ == "__main__":
    main()
