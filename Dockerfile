# nmid container image: docker build -t nmid:latest .
# (deploy/20-daemonset.yaml runs it; push it to your registry and point the DaemonSet there.)

# Build with the README's own scripts, so the image is built exactly as CI builds and tests.
FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the package list changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN scripts/build.sh /src/build -DNMID_BUILD_TESTS=OFF -DNMID_BUILD_BENCH=OFF
# The binary without its DWARF (symbols stay for stack traces), and the Debian packages that
# provide the shared libraries it links, so the runtime stage installs exactly those.
# (dpkg records some libraries under /lib and others under /usr/lib: match either.)
RUN mkdir /out \
    && strip --strip-debug -o /out/nmid /src/build/bin/nmid \
    && for lib in $(ldd /out/nmid | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do \
           real=$(readlink -f "$lib"); \
           dpkg -S "*${real#/usr}" | cut -d: -f1 || exit 1; \
       done | sort -u >/out/runtime-packages \
    && cat /out/runtime-packages

FROM debian:12-slim
# iptables: the nat rules that redirect pods' IMDS traffic to nmid (Debian's package carries
# both the nft and the legacy backends). conntrack: deleting connections opened before the
# rules existed (--enable-conntrack-deletion). ca-certificates: TLS to AAD and the API server.
COPY --from=build /out/runtime-packages /tmp/runtime-packages
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        iptables conntrack ca-certificates $(cat /tmp/runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /out/nmid /usr/local/bin/nmid
# Fails the build if a shared library is missing.
RUN ["/usr/local/bin/nmid", "--version"]
# Runs as root on purpose: nmid needs NET_ADMIN and NET_RAW for iptables and conntrack, and
# Kubernetes cannot hand capabilities to a non-root process's children (no ambient
# capabilities). The DaemonSet drops every other capability.
ENTRYPOINT ["/usr/local/bin/nmid"]
