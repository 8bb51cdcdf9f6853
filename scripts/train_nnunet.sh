#!/usr/bin/env bash
# Plan, preprocess and train an nnU-Net v2 dataset: a thin wrapper around
#   python -m totalseg_bids.train_nnunet DATASET_ID [CONFIGURATION] [FOLDS] [TRAINER] [PLANS]
# or its flags (-d ID -c CONFIGURATION... -f FOLD...|all -tr TRAINER); see its --help for the environment it
# reads. Works from any folder once totalseg_bids is installed; from a checkout, this repository's copy is used.
set -euo pipefail
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$repo_dir" exec "${PYTHON:-python3}" -m totalseg_bids.train_nnunet "$@"
