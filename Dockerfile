# One image for web, worker and beat; docker-compose.yml chooses the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MABDASH_VAR_DIR=/app/var DJANGO_STATIC_ROOT=/app/staticfiles \
    MABDASH_MANIFEST_STATIC=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

COPY . .
RUN useradd --system --uid 1000 mabdash \
    && DJANGO_SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0 \
    && mkdir -p /app/var && chown -R mabdash /app/var
USER mabdash

EXPOSE 8000
CMD ["gunicorn", "mabdash.wsgi", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
