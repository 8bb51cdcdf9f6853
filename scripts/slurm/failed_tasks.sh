#!/usr/bin/env bash
# The indices of a finished SLURM array's tasks that did not complete (cancelled, failed, timed out,
# node failure, out of memory, preempted), comma-separated for sbatch --array; empty when all completed.
#
#   bash scripts/slurm/failed_tasks.sh <array job id>
#   NUM_PARTS=4 sbatch --array=$(bash scripts/slurm/failed_tasks.sh 1234) scripts/slurm/register_array.sbatch
#
# Asks sacct (the accounting database) and, where the cluster keeps none, scontrol, which knows a
# finished job for MinJobAge seconds (default 300) after it ended. Exit 1 while tasks still run or wait,
# 2 when SLURM knows nothing of the job.
set -euo pipefail
job="${1:?usage: failed_tasks.sh <array job id>}"

# "<index> <state>" per task, from sacct or scontrol
if ! states=$(sacct -j "$job" -X -n -P -o JobID,State 2>/dev/null) || [ -z "$states" ]; then
  states=$(scontrol -o show job "$job" 2>/dev/null) || {
    echo "failed_tasks: error: SLURM knows no job $job (sacct has no record, scontrol forgot it after MinJobAge)" >&2
    exit 2
  }
  states=$(printf '%s\n' "$states" | sed -n 's/.*ArrayTaskId=\([^ ]*\).* JobState=\([A-Z_]*\).*/\1 \2/p')
else
  states=$(printf '%s\n' "$states" | sed -n "s/^${job}_\([^|]*\)|\([A-Z_]*\).*/\1 \2/p")
fi

failed=()
running=0
while read -r index state; do
  [ -n "$index" ] || continue
  case "$state" in
    COMPLETED) ;;
    PENDING|RUNNING|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|CONFIGURING|COMPLETING|SUSPENDED|RESIZING|SIGNALING|STAGE_OUT)
      running=1 ;;
    *) failed+=("$index") ;;
  esac
done <<< "$states"
if [ "$running" = 1 ]; then
  echo "failed_tasks: error: array $job still has tasks waiting or running; run this once it has ended" >&2
  exit 1
fi
(IFS=,; echo "${failed[*]}" | tr ',' '\n' | sort -n | paste -sd, -)
