# HITL Control Tower: dashboard (8501) and Prometheus metrics (9464).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /opt/hitl-tower
COPY pyproject.toml README.md ./
COPY collectors ./collectors
COPY app ./app
COPY config ./config
RUN pip install ".[auth]" && useradd --create-home --uid 10001 tower && mkdir -p /data && chown tower /data

USER tower
ENV HITL_TOWER_DB_URL=sqlite:////data/hitl-tower.db \
    HITL_TOWER_CONFIG=/opt/hitl-tower/config/tower.yaml
EXPOSE 8501 9464

# The metrics endpoint answers as soon as the tower is up, whatever the dashboard does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=4); sys.exit(0)"

CMD ["hitl-tower", "demo", "--db", "sqlite:////data/hitl-tower.db"]
