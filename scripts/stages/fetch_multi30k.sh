#!/usr/bin/env bash
# Stage 0: make sure a Multi30K folder (task1/ and mono/) exists; print its path.
# Uses $CORPUS when it holds task1/train.de.gz; otherwise downloads the raw upstream files
# (GitHub multi30k/dataset, pinned commit) into $DOWNLOAD_DIR, checks every md5 against
# scripts/multi30k.md5, and builds mono/ from task2 as ../shared/data/multi30k/README.md says.
set -euo pipefail
trap 'echo "error: $0 line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

: "${CORPUS?set CORPUS (may be empty)}" "${DOWNLOAD_DIR:?set DOWNLOAD_DIR}"  # defaults: pipeline.sh
COMMIT=a3d2e0d26b56f3846f66a952536ffed4e401d05a
BASE_URL=${BASE_URL:-https://github.com/multi30k/dataset/raw/$COMMIT/data}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "$CORPUS" ] && [ -f "$CORPUS/task1/train.de.gz" ]; then
  echo "$CORPUS"; exit 0
fi
dest=$DOWNLOAD_DIR
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi
echo "== fetch: Multi30K from $BASE_URL into $dest" >&2
mkdir -p "$dest/task1" "$dest/task2" "$dest/mono"
while read -r md5 rel; do
  out="$dest/$rel"
  if [ ! -f "$out" ]; then
    curl -fsSL --retry 3 -o "$out.part" "$BASE_URL/${rel%%/*}/raw/${rel#*/}"
    mv "$out.part" "$out"
  fi
  got=$(md5sum "$out" | cut -d' ' -f1)
  if [ "$got" != "$md5" ]; then
    rm -f "$out"; echo "error: $out: md5 $got, expected $md5 (download corrupted?)" >&2; exit 1
  fi
done < "$here/multi30k.md5"
for l in de en; do
  out="$dest/mono/task2_train.$l.dedup_notask1.gz"
  [ -f "$out" ] && continue
  zcat "$dest"/task1/*."$l".gz | sort -u > "$dest/excl.$l"
  zcat "$dest"/task2/train.{1,2,3,4,5}."$l".gz \
    | awk 'NR==FNR{ex[$0]=1;next} !($0 in ex) && !seen[$0]++ && $0 !~ /^[[:space:]]*$/' "$dest/excl.$l" - \
    | gzip -n > "$out.part"
  mv "$out.part" "$out"; rm -f "$dest/excl.$l"
done
touch "$dest/.complete"
echo "$dest"
