#!/usr/bin/env bash
# Regenerates the data embedded in assets/ from pinned packages; needs no root.
#   assets/fashion-mnist-10k/   class-balanced Fashion-MNIST subset (10 000 train / 2 000 test)
#                               from Debian's dataset-fashion-mnist package
#   assets/cifar/               the first 20 CIFAR-10 and CIFAR-100 test images as CIFAR binary
#                               records, from the PNGs inside PyPI's foolbox 3.3.4
#   assets/fonts/               DejaVu Sans and Sans Mono from Debian's fonts-dejavu-core
# The outputs are deterministic; their sha256 sums are in the NOTICE files and are checked here.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deb_sha=39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0
whl_sha=11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb

(cd "$work" && apt-get download dataset-fashion-mnist=0.0~git20200523.55506a9-1 >/dev/null)
echo "$deb_sha  $(ls "$work"/dataset-fashion-mnist_*.deb)" | sha256sum -c --quiet
dpkg-deb -x "$work"/dataset-fashion-mnist_*.deb "$work/deb"

python3 -m pip download --quiet --no-deps --no-cache-dir -d "$work" foolbox==3.3.4
echo "$whl_sha  $work/foolbox-3.3.4-py3-none-any.whl" | sha256sum -c --quiet

font_sha=8892669e51aab4dc56682c8e39d8ddb7d70fad83c369344e1e240bf3ca22bb76
(cd "$work" && apt-get download fonts-dejavu-core=2.37-6 >/dev/null)
echo "$font_sha  $(ls "$work"/fonts-dejavu-core_*.deb)" | sha256sum -c --quiet
dpkg-deb -x "$work"/fonts-dejavu-core_*.deb "$work/fonts"
mkdir -p "$repo_root/assets/fonts"
cp "$work"/fonts/usr/share/fonts/truetype/dejavu/{DejaVuSans,DejaVuSansMono}.ttf "$repo_root/assets/fonts/"
cp "$work"/fonts/usr/share/doc/fonts-dejavu-core/copyright "$repo_root/assets/fonts/LICENSE"

python3 "$repo_root/scripts/make_assets.py" \
    --fashion-dir "$work/deb/usr/share/datasets/fashion-mnist" \
    --foolbox-wheel "$work/foolbox-3.3.4-py3-none-any.whl" \
    --out "$repo_root/assets"
