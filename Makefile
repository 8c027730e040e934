# Two commands: `make demo` runs Varco with a demo instance, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint install system-deps translations bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/varco demo --port 8080

system-deps:
	@scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .

tests/oidc/node/node_modules: tests/oidc/node/package-lock.json
	npm ci --prefix tests/oidc/node --no-audit --no-fund --loglevel=error
	touch $@

tests/browser/node/node_modules: tests/browser/node/package-lock.json
	npm ci --prefix tests/browser/node --no-audit --no-fund --loglevel=error
	touch $@

test: $(STAMP) system-deps lint tests/oidc/node/node_modules tests/browser/node/node_modules
	$(BIN)/pytest

translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -o var/messages.pot .
	$(BIN)/pybabel update -i var/messages.pot -d idp/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d idp/translations

bench: $(STAMP)
	$(BIN)/python bench/login.py

clean:
	rm -rf $(VENV) var/demo .pytest_cache
