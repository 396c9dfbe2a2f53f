# syntax=docker/dockerfile:1
# leanguard: the web service and the rq worker share this image.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/leanguard
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY webhooks ./webhooks
COPY plugin ./plugin
RUN /opt/leanguard/bin/pip install --no-compile . \
    && /opt/leanguard/bin/python -m compileall -q /opt/leanguard/lib

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/leanguard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LEANGUARD_HOST=0.0.0.0 \
    LEANGUARD_PORT=8080 \
    LEANGUARD_INSTANCE_PATH=/var/lib/leanguard
RUN groupadd --system --gid 10001 leanguard \
    && useradd --system --uid 10001 --gid leanguard --home-dir /var/lib/leanguard \
       --shell /usr/sbin/nologin leanguard \
    && mkdir -p /var/lib/leanguard \
    && chown leanguard:leanguard /var/lib/leanguard
COPY --from=build /opt/leanguard /opt/leanguard
COPY atlassian-connect.json /opt/leanguard/atlassian-connect.json
ENV LEANGUARD_CONNECT_DESCRIPTOR=/opt/leanguard/atlassian-connect.json
USER 10001:10001
WORKDIR /var/lib/leanguard
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LEANGUARD_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["leanguard"]
CMD ["serve", "--workers", "2"]
