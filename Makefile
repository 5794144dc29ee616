# One entry point for people and CI. `make run` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION ?= What did Japan and Ukraine agree on in the security sector?
EVAL ?= ../shared/eval/dev.jsonl

.PHONY: run ask index test lint eval fusion clean

$(BIN)/rag: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: ask  ## set up, build or refresh the index of corpus/, answer a sample question

ask: $(BIN)/rag
	$(BIN)/rag ask "$(QUESTION)"

index: $(BIN)/rag
	$(BIN)/rag index

test: $(BIN)/rag  ## set up and run the whole test suite (real model, no network)
	$(BIN)/python -m pytest

lint: $(BIN)/rag
	$(BIN)/ruff check rag tests bench
	$(BIN)/ruff format --check rag tests bench
	$(BIN)/mypy rag

eval: $(BIN)/rag  ## metrics on the development questions
	$(BIN)/rag eval $(EVAL)

fusion: $(BIN)/rag  ## each retrieval signal alone against the fusion
	$(BIN)/python bench/fusion.py $(EVAL)

clean:
	rm -rf index .index.* $(VENV) *.egg-info
