# StickerBench: the two set-up commands of the README.
#   make bench   install (first time) and run the main job: bench run --systems all
#   make test    install (first time) and run the test suite
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: bench test install
bench: $(STAMP)
	$(VENV)/bin/bench run --systems all

test: $(STAMP)
	$(VENV)/bin/python -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --constraint requirements.lock --editable '.[test]'
	touch $(STAMP)
