# The load generator alone (httpx, no torch): `docker compose -f stress-test.yaml up --build`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# httpx and its dependencies at the versions `make test` ran (requirements/stress.lock, hash-checked, no resolving)
COPY requirements/stress.lock /tmp/stress.lock
RUN pip install --no-deps --require-hashes -r /tmp/stress.lock \
    && rm /tmp/stress.lock \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin stress

WORKDIR /opt/stress
COPY stress_test ./stress_test
RUN python -c "import stress_test.stats, stress_test.runner"

USER stress
ENTRYPOINT ["python", "-m", "stress_test"]
