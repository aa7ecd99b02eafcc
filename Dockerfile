# The worker image for the KubernetesExecutor (see docs/deploy.md): Airflow and
# credit-batch installed with the pinned constraints, the DAGs baked in.
# Not built in CI (no Docker engine on the CI machines).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/credit-batch/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

WORKDIR /opt/credit-batch
COPY pyproject.toml constraints.txt README.md ./
COPY credit_batch ./credit_batch
COPY sql ./sql
COPY dags ./dags
# libgomp1: LightGBM's OpenMP runtime (the slim image lacks it)
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# editable: sql/ stays beside the package, where the settings look for it
RUN pip install -c constraints.txt -e '.[celery]' \
    && useradd --create-home --uid 50000 airflow \
    && mkdir -p "$AIRFLOW_HOME" && chown airflow "$AIRFLOW_HOME"

USER airflow
ENTRYPOINT ["airflow"]
CMD ["--help"]
