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

.PHONY: demo test install system-deps textmate-deps vendor-js clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	$(PIP) install -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP) system-deps

# Graphviz's `dot` renders diagrams; headless Chromium opens `archdsl inspect`'s report and
# the interactive diagrams in the tests; LaTeX (with TikZ) compiles the paper-style figure's
# .tex in the tests. Debian's packages, each installed when its program is missing.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing graphviz (dot)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (headless, for the tests that open pages)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || echo "could not install chromium: the tests that open pages in a browser will be skipped"; }
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing node and npm (VS Code's TextMate engine tokenises the zoo in the tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	@command -v pdflatex >/dev/null 2>&1 || { \
	  echo "installing LaTeX with TikZ (for the test that compiles render --style blocks' .tex)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends texlive-latex-base texlive-pictures >/dev/null \
	  || echo "could not install LaTeX: the test that compiles the TikZ figure will be skipped"; }

# The interactive page lays its graph out with Graphviz compiled to WebAssembly, vendored
# (committed) under archdsl/render/assets/graphviz: this refreshes it from npm.
GRAPHVIZ_WASM := @hpcc-js/wasm-graphviz@1.29.2
vendor-js:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack -q $(GRAPHVIZ_WASM) >/dev/null && tar xzf *.tgz && \
	  cp package/dist/index.js $(CURDIR)/archdsl/render/assets/graphviz/graphviz.js && \
	  cp package/LICENSE $(CURDIR)/archdsl/render/assets/graphviz/LICENSE.hpcc-js-Apache-2.0 && \
	  rm -rf $$tmp && sha256sum $(CURDIR)/archdsl/render/assets/graphviz/graphviz.js

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
	@echo "== archdsl render: the zoo's diagrams (compact), paper-style figures, interactive pages =="
	@mkdir -p diagrams
	@for spec in specs/*.arch; do \
	  $(VENV)/bin/archdsl render $$spec -o diagrams/$$(basename $$spec .arch).svg || exit 1; done
	$(VENV)/bin/archdsl render specs/resnet152.arch --depth 1 -o diagrams/resnet152_depth1.svg
	$(VENV)/bin/archdsl render specs/googlenet.arch --depth 1 -o diagrams/googlenet_depth1.png
	$(VENV)/bin/archdsl render specs/resnet18.arch --full -o diagrams/resnet18_full.svg
	@for net in vgg16 alexnet; do for ext in svg pdf tex; do \
	  $(VENV)/bin/archdsl render specs/$$net.arch --style blocks -o diagrams/$${net}_blocks.$$ext || exit 1; done; done
	$(VENV)/bin/archdsl render specs/googlenet.arch -o diagrams/googlenet.html
	$(VENV)/bin/archdsl render specs/resnet50.arch -o diagrams/resnet50.html
	@echo "diagrams written to $(CURDIR)/diagrams/: the zoo compact (NAME.svg), paper-style VGG-16 and AlexNet"
	@echo "(NAME_blocks.svg/.pdf/.tex), interactive GoogLeNet and ResNet-50 (open diagrams/googlenet.html in a browser)"
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
