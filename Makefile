# Two commands for a fresh machine:
#   make demo   creates .venv, installs archdsl with every backend, runs the main job
#   make test   installs what the tests need and runs the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
# The CPU build of torch must be installed before the project: left to resolve a
# bare `torch` requirement, pip would pull gigabytes of CUDA packages.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps textmate-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	$(PIP) install -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP) system-deps

# Graphviz's `dot` renders diagrams; headless Chromium opens `archdsl inspect`'s report in
# the tests. Debian's packages, each installed when its program is missing.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing graphviz (dot)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (headless, for the report test)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || echo "could not install chromium: the test that opens the inspect report in a browser will be skipped"; }
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing node and npm (VS Code's TextMate engine tokenises the zoo in the tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }

# vscode-textmate and vscode-oniguruma, pinned by tests/textmate/package-lock.json, into
# tests/textmate/node_modules (ignored by git): tests/test_editors.py runs the grammar through them.
TEXTMATE := tests/textmate/node_modules/vscode-textmate/package.json
$(TEXTMATE): tests/textmate/package.json tests/textmate/package-lock.json
	cd tests/textmate && npm ci --no-audit --no-fund --loglevel=error
	touch $(TEXTMATE)

textmate-deps: system-deps $(TEXTMATE)

demo: install
	@echo "== archdsl check: the zoo =="
	$(VENV)/bin/archdsl check --quiet specs/*.arch
	@echo "== archdsl render: the zoo's diagrams =="
	@mkdir -p diagrams
	@for spec in specs/*.arch; do \
	  $(VENV)/bin/archdsl render $$spec -o diagrams/$$(basename $$spec .arch).svg || exit 1; done
	$(VENV)/bin/archdsl render specs/resnet152.arch --depth 1 -o diagrams/resnet152_depth1.svg
	$(VENV)/bin/archdsl render specs/googlenet.arch --depth 1 -o diagrams/googlenet_depth1.png
	@echo "diagrams written to $(CURDIR)/diagrams/"
	@echo "== archdsl train: LeNet-5 on scikit-learn's digits, no flags =="
	rm -rf runs/demo-lenet5  # the demo's own previous run
	$(VENV)/bin/archdsl train specs/lenet5.arch --out runs/demo-lenet5
	$(VENV)/bin/archdsl evaluate specs/lenet5.arch runs/demo-lenet5/last.pt
	@echo "== archdsl compile: the trained LeNet-5 as standalone PyTorch code, ONNX and a TVM library =="
	$(VENV)/bin/archdsl compile specs/lenet5.arch --target torch -o runs/demo-lenet5/lenet5.py
	$(VENV)/bin/archdsl compile specs/lenet5.arch --target onnx --checkpoint runs/demo-lenet5/last.pt -o runs/demo-lenet5/lenet5.onnx
	$(VENV)/bin/archdsl compile specs/lenet5.arch --target tvm --checkpoint runs/demo-lenet5/last.pt -o runs/demo-lenet5/tvm
	@echo "== archdsl inspect: what the trained LeNet-5 sees =="
	$(VENV)/bin/archdsl inspect specs/lenet5.arch runs/demo-lenet5/last.pt -o runs/demo-lenet5/inspect
	$(VENV)/bin/archdsl embed specs/lenet5.arch runs/demo-lenet5/last.pt -o runs/demo-lenet5/features.npz --probe

test: install textmate-deps
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) runs diagrams .pytest_cache tests/textmate/node_modules
