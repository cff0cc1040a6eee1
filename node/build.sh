#!/bin/sh
# The build stage of node/Dockerfile, as a script CI runs too (base images cannot be
# pulled everywhere CI runs, so the Dockerfile's build step is checked by running it
# here): builds rumor-node in release from the locked dependency versions and copies
# the binary to OUT (default target/image). Run from the repository root.
set -eu
out=${1:-target/image}
cargo build --release --locked -p rumor-node
mkdir -p "$out"
cp target/release/rumor-node "$out/rumor-node"
"$out/rumor-node" --version
