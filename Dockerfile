# syntax=docker/dockerfile:1
# The ztwim image for users who have a container engine:
#   docker build -t ztwim:0.1.0 .
#   docker run --rm ztwim:0.1.0 version
# Without an engine, scripts/k8s/image.sh builds the same image as an OCI tarball.
#
# Build stage: npm ci compiles the workspaces and the native addons (better-sqlite3, SO_PEERCRED)
# and bundles the CLI; scripts/k8s/image-contents.mjs stages the app, its entry and util-linux's
# mount/umount (for `ztwim csi`, with the libraries they need beyond glibc) exactly as image.sh
# does. Final stage: distroless (glibc, libstdc++, CA certificates, the non-root user 65532; no
# shell, no package manager) plus node and that staged tree: IMAGE.added of image-contents.mjs.
# test/integration/k8s-image.test.ts fails when this file and that list part ways.
FROM node:20-bookworm AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && node scripts/k8s/image-contents.mjs stage-app /image

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /image/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/usr/local/bin/ztwim"]
