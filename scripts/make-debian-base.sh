#!/usr/bin/env bash
# Makes Debian 12 base images locally, for machines that reach Debian's package mirror but no
# image registry: debootstrap (variant minbase, as Debian's official images) into a directory,
# imported into podman (or docker) as localhost/debian:12, and a slim copy as
# localhost/debian:12-slim (documentation, man pages and locales removed and kept out of later
# installs, as the official -slim images do). Needs root, debootstrap and podman or docker.
# Usage: scripts/make-debian-base.sh [WORK_DIR]   (default /var/tmp/nmid-debian-base)
# Then: scripts/build-image.sh --base-image localhost/debian:12 --runtime-image localhost/debian:12-slim
set -euo pipefail
work=${1:-/var/tmp/nmid-debian-base}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
engine=${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}
if [ -z "$engine" ]; then
    echo "make-debian-base: needs podman or docker" >&2
    exit 1
fi

rm -rf "$work"
mkdir -p "$work"
full=$work/debian12
slim=$work/debian12-slim

debootstrap --variant=minbase bookworm "$full" "$mirror"
# The official images' sources: the release, its updates and the security archive.
rm -f "$full/etc/apt/sources.list"
cat >"$full/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# No package lists or downloaded packages in the image; an image's build runs apt-get update.
chroot "$full" apt-get clean
rm -rf "$full"/var/lib/apt/lists/* "$full"/var/cache/apt/*.bin "$full"/var/log/*.log \
    "$full"/var/log/apt/* "$full"/tmp/* "$full"/var/tmp/*

# Slim: what Debian's -slim images leave out, now and in every later dpkg install.
cp -a "$full" "$slim"
cat >"$slim/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
find "$slim/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$slim/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$slim"/usr/share/{man,groff,info,lintian,linda}/*
find "$slim/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +

for variant in "12:$full" "12-slim:$slim"; do
    tag=${variant%%:*}
    dir=${variant#*:}
    tar -C "$dir" --numeric-owner -c . |
        "$engine" import --change 'CMD ["bash"]' - "localhost/debian:$tag"
done
"$engine" image ls localhost/debian
