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
# The demo writes its store to the working directory; `docker exec ... hitl-tower report` reads it.
WORKDIR /data
ENV HITL_TOWER_DB_URL=sqlite:////data/hitl-demo.db \
    HITL_TOWER_CONFIG=/opt/hitl-tower/config/tower.yaml
EXPOSE 8501 9464

# The metrics endpoint answers as soon as the tower is up, whatever the dashboard does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=4); sys.exit(0)"

# Both servers listen on every interface, so `docker run -p 8501:8501 -p 9464:9464` reaches them.
CMD ["hitl-tower", "demo", "--host", "0.0.0.0"]
