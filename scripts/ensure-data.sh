#!/usr/bin/env bash
# Make sure the built-in default dataset (Fashion-MNIST, Debian package
# dataset-fashion-mnist) is present; install it when we can, else say how.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if [ -n "${CONDGAN_FASHION_MNIST_DIR:-}" ] && [ -f "$CONDGAN_FASHION_MNIST_DIR/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Fashion-MNIST not found in $dir: installing Debian package dataset-fashion-mnist"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  exit 0
fi
cat >&2 <<MSG
Fashion-MNIST is not in $dir.
Get it with:   sudo apt-get install dataset-fashion-mnist
or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist
into a folder and set CONDGAN_FASHION_MNIST_DIR=/that/folder.
(The tests that need it are skipped; make demo needs it.)
MSG
exit 0
