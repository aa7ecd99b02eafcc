# The worker image for the KubernetesExecutor (see docs/deploy.md): Airflow and
# credit-batch installed from the built wheel with the pinned constraints; the
# DAG files are the wheel's own (credit-batch dags-folder prints where).
# Not built in CI (no Docker engine on the CI machines).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY credit_batch ./credit_batch
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/usr/local/lib/python3.11/site-packages/credit_batch/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
COPY constraints.txt /tmp/constraints.txt
COPY --from=wheel /dist /tmp/dist
# libgomp1: LightGBM's OpenMP runtime (the slim image lacks it)
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install -c /tmp/constraints.txt "$(ls /tmp/dist/credit_batch-*.whl)[celery]" \
    && test "$(credit-batch dags-folder)" = "$AIRFLOW__CORE__DAGS_FOLDER" \
    && rm -rf /tmp/dist \
    && useradd --create-home --uid 50000 airflow \
    && mkdir -p "$AIRFLOW_HOME" && chown airflow "$AIRFLOW_HOME"

USER airflow
ENTRYPOINT ["airflow"]
CMD ["--help"]
