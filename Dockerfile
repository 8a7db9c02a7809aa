# syntax=docker/dockerfile:1
# Bizora in a container: built in one stage, run from `npm ci --omit=dev` plus dist/ in the next,
# as a non-root user, with a read-only root filesystem (the only writable place is /data, for
# SQLite; with PostgreSQL nothing is written at all). See the README, "Running it in Docker".

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 is built from source when no prebuilt binary can be fetched.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY web ./web
COPY scripts ./scripts
COPY tsconfig.json ./
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    BIZORA_HOST=0.0.0.0 \
    BIZORA_PORT=8080 \
    BIZORA_DATABASE_URL=sqlite:/data/bizora.db
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The same node flags as `npm start` (bench/README.md, src/lib/memory.ts).
CMD ["node", "--max-semi-space-size=4", "--v8-pool-size=2", "--heap-growing-percent=10", "--liftoff-only", "--expose-gc", "bin/bizora.js", "serve"]
