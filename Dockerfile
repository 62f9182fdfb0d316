# ztwatch: one image for every role (collector, sink, detector, api, run); the role is the command.
#   docker build -t ztwatch .
#   docker run --rm -p 8080:8080 ztwatch run
# TypeScript runs through tsx's loader (a runtime dependency), so there is no build stage.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    ZTWATCH_HTTP_HOST=0.0.0.0 \
    ZTWATCH_HTTP_PORT=8080 \
    ZTWATCH_DATA_DIR=/var/lib/ztwatch

WORKDIR /app

# Dependencies first, so source changes reuse this layer.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force

COPY . .

# Run as the image's unprivileged `node` user; only the data directory is writable.
RUN mkdir -p /var/lib/ztwatch && chown node:node /var/lib/ztwatch
USER node
VOLUME ["/var/lib/ztwatch"]

EXPOSE 8080

# Liveness of whatever role runs: every role serves /healthz on its HTTP port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ZTWATCH_HTTP_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "bin/ztwatch.js"]
CMD ["run"]
