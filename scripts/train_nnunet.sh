#!/usr/bin/env bash
# Plan, preprocess and train an nnU-Net v2 dataset written by totalseg_bids.convert_config_to_nnunet.
#
#   bash scripts/train_nnunet.sh DATASET_ID [CONFIGURATION] [FOLDS] [TRAINER] [PLANS]
#   e.g. bash scripts/train_nnunet.sh 300 3d_fullres 0
#        bash scripts/train_nnunet.sh 300 3d_fullres "0 1 2 3 4" nnUNetTrainer
#        bash scripts/train_nnunet.sh 300 3d_fullres 0 nnUNetTrainer_2epochs_10iters   # quick CPU run
#
# Needs nnUNet_raw, nnUNet_preprocessed and nnUNet_results. Fold 0 is the config's
# TRAINING/VALIDATION split: the converter's splits_final.json is copied into
# $nnUNet_preprocessed/Dataset<ID>_<Name>/ after preprocessing. Trains on the GPU when
# nvidia-smi works (CUDA_VISIBLE_DEVICES picks which), else on the CPU; DEVICE=cpu|cuda|mps
# overrides. Trainers in totalseg_bids/nnunet_trainers are found through nnUNet_extTrainer.
# Extra environment: NNUNET_NP (preprocessing processes, default 1 on <=2 cores, else 4),
# SKIP_PREPROCESS=1 (reuse existing preprocessed data), TRAIN_ARGS (more nnUNetv2_train flags).
set -euo pipefail

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
[[ $# -ge 1 && $# -le 5 ]] || usage
dataset_id="$1"
configuration="${2:-3d_fullres}"
folds="${3:-0}"
trainer="${4:-nnUNetTrainer}"
plans="${5:-nnUNetPlans}"
[[ "$dataset_id" =~ ^[0-9]+$ ]] || { echo "train_nnunet.sh: error: dataset id must be a number, got '$dataset_id'" >&2; exit 2; }

for var in nnUNet_raw nnUNet_preprocessed nnUNet_results; do
    if [[ -z "${!var:-}" ]]; then
        echo "train_nnunet.sh: error: $var is not set; export $var=DIR (see docs/conventions.md section 6)" >&2
        exit 1
    fi
done

python_bin="${PYTHON:-python3}"
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# the installed package, else this checkout's copy
trainer_dir="$(PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$repo_dir" "$python_bin" -c \
    'from totalseg_bids.nnunet_trainers import trainer_dir; print(trainer_dir())')"
export nnUNet_extTrainer="${trainer_dir}${nnUNet_extTrainer:+:${nnUNet_extTrainer}}"

dataset_dir="$(find "$nnUNet_raw" -maxdepth 1 -type d -name "$(printf 'Dataset%03d_*' "$((10#$dataset_id))")" | head -n 1)"
if [[ -z "$dataset_dir" ]]; then
    echo "train_nnunet.sh: error: $nnUNet_raw: no Dataset$(printf '%03d' "$((10#$dataset_id))")_* folder; run python -m totalseg_bids.convert_config_to_nnunet first" >&2
    exit 1
fi
dataset_name="$(basename "$dataset_dir")"

cores="$(nproc 2>/dev/null || echo 1)"
np_default=4
(( cores <= 2 )) && np_default=1
np="${NNUNET_NP:-$np_default}"
export nnUNet_def_n_proc="${nnUNet_def_n_proc:-$np}"

if [[ -n "${DEVICE:-}" ]]; then
    device="$DEVICE"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    device="cuda"
else
    device="cpu"
    export nnUNet_n_proc_DA="${nnUNet_n_proc_DA:-$(( cores <= 2 ? 1 : cores - 1 ))}"
fi
echo "train_nnunet.sh: $dataset_name, configuration $configuration, folds $folds, trainer $trainer, plans $plans, device $device" >&2

if [[ "${SKIP_PREPROCESS:-0}" != "1" ]]; then
    nnUNetv2_plan_and_preprocess -d "$dataset_id" --verify_dataset_integrity -c "$configuration" -np "$np" -npfp "$np"
fi

if [[ -f "$dataset_dir/splits_final.json" ]]; then
    mkdir -p "$nnUNet_preprocessed/$dataset_name"
    cp "$dataset_dir/splits_final.json" "$nnUNet_preprocessed/$dataset_name/splits_final.json"
else
    echo "train_nnunet.sh: warning: $dataset_dir/splits_final.json missing; nnU-Net makes a random 5-fold split" >&2
fi

read -r -a fold_list <<< "$folds"
read -r -a extra_args <<< "${TRAIN_ARGS:-}"
for fold in "${fold_list[@]}"; do
    nnUNetv2_train "$dataset_id" "$configuration" "$fold" -tr "$trainer" -p "$plans" -device "$device" "${extra_args[@]}"
done
echo "train_nnunet.sh: done; model in $nnUNet_results/$dataset_name/${trainer}__${plans}__${configuration}" >&2
