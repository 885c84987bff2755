#!/usr/bin/env bash
# Tables IV / V in one command: the full model and the paper's four ablations, each trained on the
# face-mask and on the rectangle dataset separately, on equal terms (same config, data, seed and
# step budget), scored on the same test images; writes WORKDIR/ablations.md (the paper's layout:
# PSNR / SSIM / LPIPS per variant) and ablations.json with the runs they come from.
#
#   launch/ablations.sh IMG_ALIGN_CELEBA_DIR LIST_EVAL_PARTITION_TXT [WORKDIR]     # one GPU / node
#   sbatch --nodes=4 launch/ablations.sh IMG_ALIGN_CELEBA_DIR LIST_EVAL_PARTITION_TXT WORKDIR
#
# It is launch/gpu_node.sh (or, under SLURM, launch/slurm.sbatch) with VARIANTS=all: same
# datasets, same knobs, same WORKDIR layout (<occlusion>/<variant>), so the full models of a
# previous gpu_node.sh run are reused, not trained again. Re-running resumes like training does.
#SBATCH --job-name=maskinpaint-ablations
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --signal=B:TERM@120
#SBATCH --requeue
#SBATCH --output=%x-%j.out
set -euo pipefail
export VARIANTS=${VARIANTS:-all}
if [ -n "${SLURM_JOB_ID:-}" ]; then
  # sbatch runs a copy of this file: the repository is where the job was submitted from.
  cd "${SLURM_SUBMIT_DIR:-.}"
  exec bash launch/slurm.sbatch "$@"
fi
exec bash "$(dirname "$0")/gpu_node.sh" "$@"
