#!/usr/bin/env bash
# The whole pipeline on bundled phantom data: installs what is missing, then runs
# python -m totalseg_bids.demo: the summary table on stderr, its figures as one JSON record on stdout.
#   bash scripts/demo.sh [--out DIR] [--subjects N] [--device auto|cuda|cpu]
#                        [--source phantoms|synthrad2023|dicom|goldatlas] [--stop-after STAGE]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"
if ! "$py" -c "import totalseg_bids, nnunetv2, SimpleITK, cc3d" >/dev/null 2>&1; then
  bash "$here/scripts/install.sh"
fi
export nnUNet_def_n_proc="${nnUNet_def_n_proc:-1}"
args=("$@")
case " ${args[*]-} " in
  *" --out "*) ;;
  *) args+=(--out "$here/demo_output") ;;
esac
cd "$here"
exec "$py" -m totalseg_bids.demo "${args[@]}"
