#!/usr/bin/env bash
# Builds the nmid container image (Dockerfile) with docker or podman, stamped with the version,
# commit and date that `nmid --version` and the image's OCI labels show.
# Usage: scripts/build-image.sh [options] [-- extra engine build args]
#   --engine docker|podman   default: the first whose engine answers (`docker` may be only a
#                            client with no daemon behind it; podman needs none)
#   --base-image IMAGE       build stage base (default debian:12)
#   --runtime-image IMAGE    runtime stage base (default debian:12-slim)
#   --tag TAG                default nmid:<version>
#   --version V              default: git describe --tags --dirty, else the CMake project version
# Environment: NMID_JOBS (parallel compiles in the build, default all cores),
#   NMID_IMAGE_NETWORK (default host: the build's RUN steps share the host's network, so the
#   engine sets up no network or iptables rules of its own), NMID_IMAGE_ISOLATION (podman).
# Locally made bases (no registry needed): scripts/make-debian-base.sh, then
#   scripts/build-image.sh --base-image localhost/debian:12 --runtime-image localhost/debian:12-slim
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

engine="" base="" runtime="" tag="" version=""
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) engine=$2; shift 2 ;;
        --base-image) base=$2; shift 2 ;;
        --runtime-image) runtime=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "$engine" ]; then
    for candidate in docker podman; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then
            engine=$candidate
            break
        fi
    done
    if [ -z "$engine" ]; then
        echo "build-image: neither docker (with a running engine) nor podman works here" >&2
        exit 1
    fi
fi

git_in() { git -C "$root" "$@" 2>/dev/null; }
commit=$(git_in rev-parse HEAD || echo unknown)
if [ -z "$version" ]; then
    version=$(git_in describe --tags --dirty ||
        sed -n 's/^project(nmid VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
fi
# A commit with uncommitted changes on top is not that commit.
if [ "$commit" != unknown ] && [ -n "$(git_in status --porcelain --untracked-files=no)" ]; then
    commit="$commit-dirty"
fi
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
source=$(git_in remote get-url origin || true)
tag=${tag:-nmid:$version}

args=(--build-arg "NMID_VERSION=$version" --build-arg "NMID_COMMIT=$commit"
      --build-arg "NMID_BUILD_DATE=$date" --build-arg "NMID_SOURCE=$source"
      --build-arg "JOBS=${NMID_JOBS:-}" --network "${NMID_IMAGE_NETWORK:-host}")
[ -n "$base" ] && args+=(--build-arg "BUILD_IMAGE=$base")
[ -n "$runtime" ] && args+=(--build-arg "RUNTIME_IMAGE=$runtime")
if [ "$engine" = podman ]; then
    # Build from the base images held locally when there are any (a made base has no registry).
    args+=(--pull=missing)
    # NMID_IMAGE_ISOLATION=chroot: RUN steps without an OCI runtime (crun refuses hybrid
    # cgroups on some VMs; the README's measured build needed it).
    [ -n "${NMID_IMAGE_ISOLATION:-}" ] && args+=(--isolation "$NMID_IMAGE_ISOLATION")
fi

echo "build-image: $engine, $tag, version $version, commit $commit, date $date"
start=$(date +%s)
"$engine" build "${args[@]}" -t "$tag" "$@" "$root"
echo "build-image: built $tag in $(($(date +%s) - start)) s"
"$engine" run --rm --network none "$tag" --version
