# syntax=docker/dockerfile:1
# The fedgpu image: one binary (`fedgpu hub`, `fedgpu agent`, ...) that the chart runs in both modes.

# Production dependencies only: what the runtime image ships.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# Compile TypeScript with the pinned compiler (dev dependencies live only in this stage).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY operator ./operator
RUN npx tsc -p tsconfig.json

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json carries "type": "module", which makes node load dist/**/*.js as ES modules.
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that Kubernetes can verify runAsNonRoot; matches the chart's runAsUser.
USER 10001:10001
ENTRYPOINT ["node", "dist/operator/src/cli/main.js"]
