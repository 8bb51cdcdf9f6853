#!/usr/bin/env bash
# Install totalseg_bids and everything its pipeline, demo and tests need, on a fresh machine.
#   bash scripts/install.sh           # Debian packages (git-annex, chromium, slurm-wlm, munge) + Python packages
# Environment: PYTHON (default python3), TOTALSEG_BIDS_SKIP_APT=1 to skip apt-get.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"

# Debian packages: git-annex for datalad, chromium for the QC report's browser tests, SLURM and munge
# for the cluster tests (they start their own single-node SLURM; nothing is configured system-wide).
if [ "${TOTALSEG_BIDS_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  command -v git-annex >/dev/null 2>&1 || need+=(git-annex)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  sbin="$PATH:/usr/sbin:/sbin"  # the daemons live in sbin, which a user's PATH may lack
  { PATH="$sbin" command -v slurmctld && PATH="$sbin" command -v slurmd && command -v sbatch; } >/dev/null 2>&1 \
    || need+=(slurm-wlm)
  PATH="$sbin" command -v munged >/dev/null 2>&1 || need+=(munge)
  if [ "${#need[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "install.sh: apt-get install ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

# torch and torchvision as a matched pair, before anything that depends on torch
# (nnunetv2, TotalSegmentator); an unmatched torchvision fails to import.
if ! "$py" -c "from importlib.metadata import version as v; assert (v('torch').split('+')[0], v('torchvision').split('+')[0]) == ('2.14.1', '0.29.1')" >/dev/null 2>&1; then
  echo "install.sh: pip install torch==2.14.1 torchvision==0.29.1" >&2
  "$py" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
# pip's resolution costs ~30 s: skip it when this checkout is installed with every requirement met
if "$py" "$here/scripts/lib/requirements_met.py" all test 2>/dev/null; then
  echo "install.sh: totalseg_bids[all,test] is installed from this checkout" >&2
else
  echo "install.sh: pip install -e .[all,test]" >&2
  "$py" -m pip install -q -e "$here[all,test]"
fi

# datalad needs a git identity to commit; set one only where none exists.
git config --global user.name >/dev/null 2>&1 || git config --global user.name "totalseg_bids"
git config --global user.email >/dev/null 2>&1 || git config --global user.email "totalseg_bids@localhost"
