# Two commands do all set-up on a fresh machine:  make demo   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test test-quick demo experiment bench clean

setup:              ## create .venv and install torch, fairseq, this plugin (idempotent)
	VENV=$(VENV) bash scripts/setup_env.sh

TEST_WORKERS ?= 2
test: setup         ## the test suite (CPU, about 20 minutes on 2 cores): every tier without the slow tests, TEST_WORKERS (2) processes side by side; CI runs exactly this
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder tests

test-quick: setup   ## the unit tier alone (under a minute)
	$(PY) -m pytest -q -m "unit and not slow" tests

demo: setup         ## main job: configs/experiments/multi30k_demo.yaml (Multi30K de-en; about 46 minutes on 2 CPU cores)
	bash scripts/pipeline.sh configs/experiments/multi30k_demo.yaml

experiment: setup   ## configs/experiments/multi30k_full.yaml: full task1 train, 100k monolingual lines, models to convergence
	bash scripts/pipeline.sh configs/experiments/multi30k_full.yaml

bench: setup        ## benchmarks, each as a ratio against stock fairseq in the same run
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) *.egg-info
