# nmid container image. Build it with scripts/build-image.sh (docker or podman), which stamps
# the version, the commit and the date; a plain `docker build -t nmid:dev .` works too and
# prints "unknown" for what it was not given. deploy/20-daemonset.yaml runs the image: push it to
# your registry and point the DaemonSet there.
#
# No SHELL instruction: podman's default (OCI) image format ignores SHELL, so nothing here may
# depend on it. RUN lines use no pipes; what needs one is a script with its own `pipefail`.

# The bases, replaceable by locally made ones (scripts/make-debian-base.sh).
ARG BUILD_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Only what building nmid needs (no test tools). First, so this layer is rebuilt only when the
# package list changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
# What `nmid --version` prints (CMake's NMID_VERSION, NMID_COMMIT, NMID_BUILD_DATE; .git is not
# in the build context). An empty version means the project's own. JOBS: parallel compiles.
ARG NMID_VERSION=
ARG NMID_COMMIT=unknown
ARG NMID_BUILD_DATE=unknown
ARG JOBS=
# Only the nmid target, optimised. Warnings do not fail this build (NMID_WERROR is off): a
# newer compiler in a replaced base image still builds; scripts/test.sh is where they fail.
RUN cmake -S /src -B /src/build -DCMAKE_BUILD_TYPE=Release \
        -DNMID_BUILD_TESTS=OFF -DNMID_BUILD_BENCH=OFF \
        -DNMID_VERSION="${NMID_VERSION}" -DNMID_COMMIT="${NMID_COMMIT}" \
        -DNMID_BUILD_DATE="${NMID_BUILD_DATE}" \
    && cmake --build /src/build --target nmid -j"${JOBS:-$(nproc)}"
# The binary without debug sections (symbols stay, for stack traces), and the Debian packages
# that provide the shared libraries it links, so the runtime stage installs exactly those.
RUN mkdir /out \
    && strip --strip-debug -o /out/nmid /src/build/bin/nmid \
    && scripts/runtime-packages.sh /out/nmid >/out/runtime-packages \
    && cat /out/runtime-packages

FROM ${RUNTIME_IMAGE}
ARG NMID_VERSION=
ARG NMID_COMMIT=unknown
ARG NMID_BUILD_DATE=unknown
ARG NMID_SOURCE=
LABEL org.opencontainers.image.title="nmid" \
      org.opencontainers.image.description="Node Managed Identity daemon: IMDS token proxy for pods" \
      org.opencontainers.image.version="${NMID_VERSION:-unknown}" \
      org.opencontainers.image.revision="${NMID_COMMIT}" \
      org.opencontainers.image.created="${NMID_BUILD_DATE}" \
      org.opencontainers.image.source="${NMID_SOURCE}"
# iptables: the nat rules that redirect pods' IMDS traffic to nmid (Debian's package carries
# both the nft and the legacy backends). conntrack: deleting connections opened before the
# rules existed (--enable-conntrack-deletion). ca-certificates: TLS to AAD and the API server.
# Then the libraries' packages found in the build stage. No package lists, caches or logs kept.
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN test -s /tmp/runtime-packages \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        iptables conntrack ca-certificates $(cat /tmp/runtime-packages) \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
        /tmp/runtime-packages
COPY --from=build /out/nmid /usr/local/bin/nmid
# Fails the build if a shared library is missing.
RUN ["/usr/local/bin/nmid", "--version"]
# Runs as root on purpose: nmid needs NET_ADMIN and NET_RAW for iptables and conntrack, and
# Kubernetes cannot hand capabilities to a non-root process's children (no ambient
# capabilities). The DaemonSet drops every other capability.
ENTRYPOINT ["/usr/local/bin/nmid"]
