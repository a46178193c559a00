# Every target builds what it needs: a virtualenv with pinned dependencies (constraints.txt)
# and, for anything that talks to Kafka, the broker fetched by gateway.localkafka.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The image: `make image` builds $(IMAGE):$(VERSION); `make image push IMAGE=<registry>/<name>`
# also pushes it where the cluster pulls from (the chart's image.repository).
IMAGE ?= smsc-gateway
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: demo test lint typecheck check bench clean image push

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/smsc-gateway demo

test: $(STAMP) lint typecheck
	bash deploy/local/install-test-tools.sh
	$(PY) -m gateway.localkafka fetch
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway tests bench
	$(VENV)/bin/ruff format --check gateway tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m gateway.localkafka fetch
	$(PY) bench/send_pipeline.py

image:
	docker build -f deploy/Dockerfile -t $(IMAGE):$(VERSION) .

push: image
	docker push $(IMAGE):$(VERSION)

clean:
	rm -rf $(VENV) .cache
