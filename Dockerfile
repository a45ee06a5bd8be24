# copybot in a container, for those who do not run systemd (deploy/README.md has the systemd way).
#
#   docker compose up -d            # compose.yaml: the daemon, a state volume, secrets, read-only root
#
# Runs as an unprivileged user and writes only to the state volume (/var/lib/copybot: the journal)
# and to /tmp, so the root filesystem can be mounted read-only. No secret is baked in: API keys and
# the API token come at run time from the environment or from files (compose secrets in
# /run/secrets, which CREDENTIALS_DIRECTORY points at), exactly as in docs/config.md.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
RUN python -m venv /opt/copybot \
 && /opt/copybot/bin/pip install --no-cache-dir -c constraints.txt . \
 && /opt/copybot/bin/python -m compileall -q /opt/copybot

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/copybot --shell /usr/sbin/nologin copybot \
 && install -d -o copybot -g copybot -m 0700 /var/lib/copybot
COPY --from=build /opt/copybot /opt/copybot
# HOME and the temporary folder are writable paths on a read-only root; STATE_DIRECTORY is where a
# relative journal.path goes (bot/service/app.py), as under systemd.
ENV PATH=/opt/copybot/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATE_DIRECTORY=/var/lib/copybot \
    CREDENTIALS_DIRECTORY=/run/secrets
USER 10001:10001
WORKDIR /var/lib/copybot
VOLUME ["/var/lib/copybot"]
EXPOSE 8787
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/readyz', timeout=4)"]
ENTRYPOINT ["copybot"]
CMD ["run", "--config", "/etc/copybot/config.yaml"]
