#!/usr/bin/env bash
# Segment the sacrum on the TESTING images of a config with the trained nnU-Net model and
# write BIDS derivatives (seed workflow, "Inference on whole-spine and spider dataset").
# One call to totalseg_bids.predict: the model is loaded once for all images.
#
#   DATASETS_PATH=/data bash scripts/generate_sacrum_masks/generate_sacrum.sh
#
# Variables (defaults in brackets):
#   DATASETS_PATH       parent folder of the datasets listed in the config (required unless the
#                       config's DATASETS_PATH is set)
#   PATH_CONFIG         [resources/configs/test_sacrum.json]
#   PATH_NNUNET_MODEL   model folder [$nnUNet_results/Dataset300_SacrumDataset/nnUNetTrainer__nnUNetPlans__3d_fullres]
#   FOLD [0] (several, space separated, are ensembled: "0 1 2 3 4")
#   CHECKPOINT [checkpoint_final.pth]  DEVICE [auto]  DERIVATIVE_FOLDER [labels]
#   LABEL_NAME [sacrum]  NUM_PARTS [1]  PART_ID [0]  QC_DIR [none]  EXTRA_ARGS [none]
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PATH_CONFIG="${PATH_CONFIG:-$repo_dir/resources/configs/test_sacrum.json}"
if [[ -z "${PATH_NNUNET_MODEL:-}" ]]; then
    if [[ -z "${nnUNet_results:-}" ]]; then
        echo "generate_sacrum.sh: error: set PATH_NNUNET_MODEL or nnUNet_results" >&2
        exit 1
    fi
    PATH_NNUNET_MODEL="$nnUNet_results/Dataset300_SacrumDataset/nnUNetTrainer__nnUNetPlans__3d_fullres"
fi
FOLD="${FOLD:-0}"
CHECKPOINT="${CHECKPOINT:-checkpoint_final.pth}"
DEVICE="${DEVICE:-auto}"
DERIVATIVE_FOLDER="${DERIVATIVE_FOLDER:-labels}"
LABEL_NAME="${LABEL_NAME:-sacrum}"
NUM_PARTS="${NUM_PARTS:-1}"
PART_ID="${PART_ID:-0}"

read -r -a folds <<< "$FOLD"
args=(--config "$PATH_CONFIG" --split TESTING --model-dir "$PATH_NNUNET_MODEL" -f "${folds[@]}"
      --checkpoint "$CHECKPOINT" --device "$DEVICE" --derivatives "$DERIVATIVE_FOLDER"
      --label-name "$LABEL_NAME" --largest-component --num-parts "$NUM_PARTS" --part-id "$PART_ID")
if [[ -n "${DATASETS_PATH:-}" ]]; then
    args+=(--datasets-path "$DATASETS_PATH")
fi
if [[ -n "${QC_DIR:-}" ]]; then
    args+=(--qc "$QC_DIR")
fi
read -r -a extra_args <<< "${EXTRA_ARGS:-}"

echo "generate_sacrum.sh: config $PATH_CONFIG, model $PATH_NNUNET_MODEL (fold $FOLD), device $DEVICE" >&2
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$repo_dir"
exec "${PYTHON:-python3}" -m totalseg_bids.predict "${args[@]}" "${extra_args[@]}"
