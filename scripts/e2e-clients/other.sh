#!/bin/sh
# The JavaScript, Java and Go clients of the end-to-end client matrix
# (tests/e2e/clients/other_clients.py): Debian's nodejs and npm (@azure/identity from the lock
# files under tests/e2e/clients/node-*), and a JDK with Maven (azure-identity through the Azure SDK
# BOM, tests/e2e/clients/java/pom.xml). A command that is already present (for example node, java
# or mvn installed in /usr/local) is kept: NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package.
#
# Go is not installed here: Debian 12's golang is 1.19, and azidentity needs the Go version named
# by the `go` line of tests/e2e/clients/go/go.mod (1.25 today). Without a new enough `go` on PATH
# (or in /usr/local/go/bin) the Go client is skipped with a message naming the version it needs.
#
# Called by scripts/install-deps.sh after its `apt-get update` (run `apt-get update` first when
# calling it alone). Idempotent: installs nothing when every command is present.
set -eu

missing=""
need() {  # need COMMAND PACKAGE
    if ! command -v "$1" >/dev/null 2>&1; then
        case " $missing " in
            *" $2 "*) ;;
            *) missing="$missing $2" ;;
        esac
    fi
}
need node nodejs
need npm npm
need java default-jdk-headless
need javac default-jdk-headless
need mvn maven

if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one word per package
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing
fi
