#!/usr/bin/env bash
# The latent-discovery runs behind the comparison in bench/RESULTS.md, at the lengths 2 CPU cores allow
# (the paper: 10^5 steps per method on a GPU; pass --steps 100000 and --device auto there, nothing else changes).
# Usage: bash bench/discovery_runs.sh GENERATOR OUT SDD_STEPS STAGE2_STEPS HDP_STEPS [GANSPACE_SAMPLES]
# Each run resumes from its folder if it was stopped; the runs go one after another (never two at once).
# Then every set is labelled (WALKS sampled codes, default 200 as in the paper) and compared.
# BOUNDARIES: the generator's InterFaceGAN boundaries (`train-boundary RUN --all`).
set -euo pipefail
boundaries=${BOUNDARIES:?set BOUNDARIES to a folder of InterFaceGAN boundaries of one space}
generator=$1 out=$2 sdd=$3 stage2=$4 hdp=$5 samples=${6:-300000}
facesteer=${FACESTEER:-.venv/bin/facesteer}
"$facesteer" discover latent -g "$generator" --method sdd --steps "$sdd" --out "$out/sdd"
"$facesteer" discover latent -g "$generator" --method dth --from "$out/sdd" --steps "$stage2" --out "$out/dth"
"$facesteer" discover latent -g "$generator" --method dtj --from "$out/sdd" --steps "$stage2" --out "$out/dtj"
"$facesteer" discover latent -g "$generator" --method shp --steps "$stage2" --out "$out/shp"
"$facesteer" discover latent -g "$generator" --method hdp --steps "$hdp" --out "$out/hdp"
"$facesteer" discover sefa -g "$generator" --out "$out/sefa"
"$facesteer" discover ganspace -g "$generator" --num "$samples" --out "$out/ganspace"
"$facesteer" discover boundaries "$boundaries"/*.npy --out "$out/interfacegan"
for method in sefa ganspace sdd shp hdp dth dtj interfacegan; do
  "$facesteer" label "$out/$method" -g "$generator" --num "${WALKS:-200}" --directions 32 --boundaries "$boundaries"
done
.venv/bin/python bench/discovery_compare.py "$out"
