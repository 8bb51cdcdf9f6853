# shellcheck shell=bash
# Run a pipeline step under `datalad run` when the target is a datalad dataset, directly otherwise.
#
#   source scripts/lib/datalad_run.sh
#   run_step <dataset> <input>... -- <output>... -- <command>...
#
# Example (paths relative to the dataset, so `datalad rerun` works in any clone):
#   run_step "$bids" 'sub-*/**/anat/*_T[12]w.nii.gz' 'derivatives/labels' -- 'derivatives/reg-labels' -- \
#       python -m totalseg_bids.register --path-img . -j 4
# (`**` is any depth, so the globs match datasets with and without ses-* folders.)
#
# * The command runs in <dataset> (the working directory datalad records), both ways.
# * Inside a datalad dataset (a folder with .datalad here or above) it becomes
#   `datalad run --input I... --output O... -m MESSAGE -- COMMAND`: datalad gets the
#   inputs (globs allowed, re-expanded on rerun), unlocks the outputs, runs the command
#   and saves the changes with a run record, so `datalad rerun` reproduces the step.
#   datalad run wants a clean dataset: save or discard changes first.
# * Elsewhere the command runs as it is; inputs and outputs are then only documentation.
# Environment:
#   TOTALSEG_BIDS_RUN_MESSAGE   commit message (default: "totalseg_bids: <stage> step")
#   TOTALSEG_BIDS_RUN_EXPLICIT  1: `datalad run --explicit` (save only the declared outputs,
#                               allow unrelated unsaved changes)
#   TOTALSEG_BIDS_DATALAD_RUN   0: never use datalad run, even in a datalad dataset
#   TOTALSEG_BIDS_RUN_OVERWRITE 0: do not add --overwrite (see below)
# A totalseg_bids stage that skips complete outputs gets --overwrite under datalad run, so the
# recorded command recomputes its declared outputs on `datalad rerun` (datalad unlocks them and
# a stage would otherwise find them complete and skip them).
# Returns the command's exit status (datalad run's, which fails when the command fails);
# 2 for a usage error. Meant for scripts running with `set -euo pipefail`.

# Print the root of the datalad dataset containing folder $1 (exit 1 when there is none).
tsb_datalad_root() {
  local dir
  dir="$(cd "$1" && pwd -P)" || return 1
  while :; do
    if [ -d "$dir/.datalad" ] && [ -e "$dir/.git" ]; then
      printf '%s\n' "$dir"
      return 0
    fi
    [ "$dir" = "/" ] && return 1
    dir="$(dirname "$dir")"
  done
}

# Whether the command is a totalseg_bids stage that skips complete outputs without --overwrite.
tsb_needs_overwrite() {
  local arg stage=0
  for arg in "$@"; do
    case "$arg" in
      --overwrite) return 1 ;;
      totalseg_bids.register|totalseg_bids.segment_ct|totalseg_bids.crop|totalseg_bids.slices|\
      totalseg_bids.predict|totalseg_bids.convert_config_to_nnunet) stage=1 ;;
      totalseg-bids-register|totalseg-bids-segment_ct|totalseg-bids-crop|totalseg-bids-slices|\
      totalseg-bids-predict|totalseg-bids-convert_config_to_nnunet) stage=1 ;;
    esac
  done
  [ "$stage" = 1 ]
}

# A short title for the command: the totalseg_bids stage it runs, else its program name.
tsb_step_title() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      totalseg_bids.*) printf 'totalseg_bids: %s step\n' "${arg#totalseg_bids.}"; return 0 ;;
    esac
  done
  printf 'totalseg_bids: %s step\n' "$(basename -- "$1")"
}

run_step() {
  local usage="usage: run_step <dataset> <input>... -- <output>... -- <command>..."
  if [ "$#" -lt 1 ] || [ ! -d "$1" ]; then
    printf 'run_step: error: %s: dataset folder not found; %s\n' "${1:-}" "$usage" >&2
    return 2
  fi
  local ds="$1"
  shift
  local -a inputs=() outputs=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  if [ "$#" -eq 0 ]; then
    printf 'run_step: error: missing "--" after the inputs; %s\n' "$usage" >&2
    return 2
  fi
  shift
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  if [ "$#" -eq 0 ]; then
    printf 'run_step: error: missing "--" after the outputs; %s\n' "$usage" >&2
    return 2
  fi
  shift
  if [ "$#" -eq 0 ]; then
    printf 'run_step: error: no command given; %s\n' "$usage" >&2
    return 2
  fi

  if [ "${TOTALSEG_BIDS_DATALAD_RUN:-1}" != "0" ] && tsb_datalad_root "$ds" >/dev/null; then
    if ! command -v datalad >/dev/null 2>&1; then
      printf 'run_step: error: %s: is a datalad dataset but the datalad command is not found; ' "$ds" >&2
      printf 'install datalad (pip install datalad) or set TOTALSEG_BIDS_DATALAD_RUN=0\n' >&2
      return 2
    fi
    local -a args=()
    local path
    for path in ${inputs[@]+"${inputs[@]}"}; do args+=(--input "$path"); done
    for path in ${outputs[@]+"${outputs[@]}"}; do args+=(--output "$path"); done
    if [ "${TOTALSEG_BIDS_RUN_EXPLICIT:-0}" = "1" ]; then args+=(--explicit); fi
    local message="${TOTALSEG_BIDS_RUN_MESSAGE:-$(tsb_step_title "$@")}"
    local -a cmd=("$@")
    if [ "${TOTALSEG_BIDS_RUN_OVERWRITE:-1}" != "0" ] && tsb_needs_overwrite "$@"; then cmd+=(--overwrite); fi
    (cd "$ds" && datalad run ${args[@]+"${args[@]}"} -m "$message" -- "${cmd[@]}")
  else
    (cd "$ds" && "$@")
  fi
}
