#!/usr/bin/env bash
# Train and export one of the models that ship with the kit (itespy/pretrained_models/NAME).
#   bash tools/make_pretrained.sh synthetic-tutorial | bandai-tutorial
# Refuses to replace a shipped model: delete itespy/pretrained_models/NAME first.
set -euo pipefail
name=${1:?usage: bash tools/make_pretrained.sh synthetic-tutorial|bandai-tutorial}
case "$name" in
  synthetic-tutorial) data=synthetic ;;
  bandai-tutorial) data=mocap:../shared/data/bandai/bandai_h36m17.npz ;;
  *) echo "unknown model $name: expected synthetic-tutorial or bandai-tutorial" >&2; exit 2 ;;
esac
run=runs/pretrained/$name
python -m itespy train --profile tutorial --data "$data" --seed 0 --device cpu --out "$run" --resume --quiet
python -m itespy pretrained export --run "$run" --name "$name" --readme "tools/pretrained/$name.md"
