# syntax=docker/dockerfile:1
# Production image: compiled JavaScript, production dependencies only, non-root, signals reach node directly.
# It needs an external PostgreSQL (DATABASE_URL) and your identity provider's keys (AUTH_*).
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --omit=optional
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The embedded PostgreSQL is an optional dependency for development; the image leaves it out.
RUN npm ci --no-audit --no-fund --ignore-scripts --omit=dev --omit=optional && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root package.json ./
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The V8 heap is capped at 1 GiB (README "Memory"): V8 lets garbage grow to a multiple of the live heap before a
# full collection, 4x under Node's default cap on a large host, 1.6x under this one. Keep in step with start:prod.
CMD ["node", "--max-old-space-size=1024", "dist/server.js"]
