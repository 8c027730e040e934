FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libxmlsec1-dev pkg-config gcc xmlsec1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/varco
COPY pyproject.toml README.md ./
COPY idp ./idp
COPY federation ./federation
COPY metadata ./metadata
COPY config/varco.example.toml ./config/varco.example.toml
RUN pip install --no-cache-dir .
ENV VARCO_HOME=/var/lib/varco
RUN useradd --system --home /var/lib/varco varco && mkdir -p /var/lib/varco && chown varco /var/lib/varco
USER varco
EXPOSE 8080
# The workers' heartbeat file goes to /dev/shm (memory): on the image's overlay file system, gunicorn's
# heartbeat write on every loop can block a worker.
CMD ["sh", "-c", "varco init && exec gunicorn --workers 4 --worker-class gthread --threads 4 --worker-tmp-dir /dev/shm --bind 0.0.0.0:8080 --forwarded-allow-ips='*' 'idp.app:create_app()'"]
