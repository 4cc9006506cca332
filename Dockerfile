# The hub image (web, worker, beat) and the demo relay share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY relayhub relayhub
COPY assignments assignments
COPY commands commands
COPY credentials credentials
COPY configpush configpush
COPY fleet fleet
COPY runbooks runbooks
COPY notifications notifications
COPY audit audit
COPY agentupdates agentupdates
COPY templates templates
COPY static static
COPY relay_agent relay_agent
RUN pip install --no-cache-dir . ./relay_agent \
 && DJANGO_SETTINGS_MODULE=relayhub.settings STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --noinput \
 && useradd --system --home /var/relayhub relayhub \
 && mkdir -p /var/relayhub && chown relayhub /var/relayhub
USER relayhub
ENV DJANGO_SETTINGS_MODULE=relayhub.settings_production STATIC_ROOT=/app/staticfiles RELAYHUB_VAR_DIR=/var/relayhub
EXPOSE 8000
# python -m relayhub.serve is uvicorn with the metrics directory readied (README, "Metrics"); add --workers N freely.
CMD ["python", "-m", "relayhub.serve", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", \
     "--timeout-graceful-shutdown", "5"]
