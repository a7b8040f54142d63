#!/usr/bin/env bash
# Installs the Debian 12 packages nmid needs to build, test and benchmark. Idempotent: when
# everything is present it does nothing (no apt-get update).
# Usage: scripts/install-deps.sh [--build-only]
#   --build-only: only what building the nmid binary needs (compiler, cmake, the -dev
#   libraries); nothing for tests, benchmarks or tools (the Dockerfile's build stage).
set -euo pipefail

build_only=false
case "${1:-}" in
    "") ;;
    --build-only) build_only=true ;;
    *)
        echo "usage: $0 [--build-only]" >&2
        exit 2
        ;;
esac
# What `cmake --build <dir> --target nmid` needs: Boost is used header-only (Asio, Beast), so
# libboost1.81-dev rather than -all-dev; the -dev packages pull their own dependencies
# (prometheus-cpp-dev: civetweb, zlib, curl; libspdlog-dev: libfmt-dev).
build_packages=(
    g++ make cmake
    libboost1.81-dev libssl-dev libspdlog-dev nlohmann-json3-dev libyaml-cpp-dev
    prometheus-cpp-dev
)

# libclang-rt-14-dev: clang's ASan/UBSan and libFuzzer runtimes (the ASan build and the fuzz
# targets; Debian 12's clang only recommends it).
packages=(
    build-essential cmake ccache clang clang-format clang-tidy pkg-config
    libclang-rt-14-dev
    libboost1.81-all-dev libssl-dev libspdlog-dev nlohmann-json3-dev libyaml-cpp-dev
    prometheus-cpp-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
    curl wrk nginx-light procps iproute2 python3 python3-yaml python3-jsonschema
    iptables conntrack util-linux python3-azure python3-venv
    prometheus azure-cli
)
# The fake API server's fidelity test runs a real kubectl. Debian's kubernetes-client provides
# one; a machine that already has kubectl from elsewhere keeps it (the two packages conflict).
if ! command -v kubectl >/dev/null 2>&1; then
    packages+=(kubernetes-client)
fi
# The end-to-end client matrix (tests/e2e/clients) runs each SDK unmodified: Python's
# azure-identity (python3-venv for the newest from PyPI, python3-azure for Debian's), the Azure
# CLI (azure-cli, above), Node's @azure/identity, Java's azure-identity (a JDK and Maven) and Go's
# azidentity. A command already present from elsewhere is kept (NodeSource's nodejs bundles npm
# and conflicts with Debian's npm; a JDK or Maven in /usr/local is as good). Go is not installed
# here: Debian 12's golang is 1.19 and azidentity needs the `go` line of
# tests/e2e/clients/go/go.mod; without it the Go client skips, naming the version. Each client's
# packages come from its lock file (requirements.txt with hashes, package-lock.json, pom.xml,
# go.sum) into the build directory the first time its test runs.
for tool in node:nodejs npm:npm java:default-jdk-headless javac:default-jdk-headless mvn:maven; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        packages+=("${tool#*:}")
    fi
done
if [ "$build_only" = true ]; then
    packages=("${build_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -ne 0 ]; then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -o DPkg::Lock::Timeout=600 -q
    # prometheus is there for promtool (tests/deploy/test_observability.py); its postinst would
    # start and enable a Prometheus server on :9090, nmid's metrics port. Service starts are
    # refused during the install (unless the machine has its own policy-rc.d) and it is disabled.
    policy_guard=""
    if [[ " ${missing[*]} " == *" prometheus "* && ! -e /usr/sbin/policy-rc.d ]]; then
        policy_guard=/usr/sbin/policy-rc.d
        trap 'rm -f "$policy_guard"' EXIT
        printf '#!/bin/sh\nexit 101\n' >"$policy_guard"
        chmod 755 "$policy_guard"
    fi
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
    if [[ " ${missing[*]} " == *" prometheus "* ]]; then
        systemctl disable --quiet prometheus.service 2>/dev/null || true
    fi
    if [ -n "$policy_guard" ]; then
        rm -f "$policy_guard"
        trap - EXIT
    fi
fi
if [ "$build_only" = true ]; then
    exit 0
fi

# cel-python for the workload identity policy's test, pinned with hashes, in a venv of Debian's
# python3 inside the checkout (ignored by git). Done once; a failure leaves the test to skip
# with a message rather than failing the install.
root=$(cd "$(dirname "$0")/.." && pwd)
requirements="$root/tests/deploy/requirements-cel.txt"
stamp="$root/.venv-cel/.installed"
if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
    if /usr/bin/python3 -m venv "$root/.venv-cel" &&
        "$root/.venv-cel/bin/pip" install -q --disable-pip-version-check --require-hashes \
            --only-binary=:all: -r "$requirements"; then
        touch "$stamp"
    else
        echo "install-deps: cel-python could not be installed; the policy test will skip" >&2
    fi
fi

# helm for the chart's tests (tests/deploy/test_chart.py) and scripts/render-deploy.sh: the
# approved version, built with Go from the Go module proxy into .tools/bin (ignored by git).
# Done once; without Go, or on a failure, the chart tests skip with a message.
helm_version=v3.21.4
go=$(command -v go || true)
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then
    go=/usr/local/go/bin/go
fi
if [ ! -x "$root/.tools/bin/helm" ]; then
    if [ -z "$go" ]; then
        echo "install-deps: Go is missing, so helm is not installed; the chart tests will skip" >&2
    elif ! GOBIN="$root/.tools/bin" "$go" install "helm.sh/helm/v3/cmd/helm@$helm_version"; then
        echo "install-deps: helm $helm_version could not be built; the chart tests will skip" >&2
    fi
fi
