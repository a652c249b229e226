# syntax=docker/dockerfile:1
# The fedgpu image: one binary (`fedgpu hub`, `fedgpu agent`, ...) that the chart runs in both modes.

# Type-check with the pinned compiler, then bundle the CLI and what it imports into one file
# (hack/bundle.mjs): node then holds only the code the binary uses, not every module of every
# dependency (docs/benchmarks.md, "One file instead of node_modules").
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY operator ./operator
COPY hack/bundle.mjs ./hack/
RUN npx tsc -p tsconfig.json --noEmit && node hack/bundle.mjs dist/fedgpu.mjs

# No node_modules: the bundle needs none (hack/bundle.test.ts runs it without them).
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json names the version fedgpu_build_info reports.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist ./dist
# Numeric, so that Kubernetes can verify runAsNonRoot; matches the chart's runAsUser.
USER 10001:10001
ENTRYPOINT ["node", "dist/fedgpu.mjs"]
