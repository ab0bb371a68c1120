# api_gateway image: slim, non-root, only this project's code and pinned dependencies.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TASKSTREAM_ENV=production BIND_HOST=0.0.0.0 GATEWAY_PORT=5000 DATA_DIR=/tmp/taskstream
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY shared ./shared
COPY services ./services
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
RUN pip install -c constraints.txt . && useradd --system --uid 10001 --no-create-home taskstream
USER taskstream
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=2)"
CMD ["sh", "-c", "gunicorn --config deploy/gunicorn.conf.py --bind ${BIND_HOST:-127.0.0.1}:${GATEWAY_PORT:-5000} \"services.api_gateway.entrypoints.app:create_app()\""]
