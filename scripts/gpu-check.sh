#!/usr/bin/env bash
# The real-GPU checks of docs/gpus.md, for a lent machine with an NVIDIA GPU, PyTorch and a built jobq
# (node_modules and dist carried). Three --gpu-mem jobs of 40% of GPU 0 each allocate 30% with PyTorch: two
# must run together, the third wait with the reason; each job's VRAM as jobq shows it must be within 5% of
# nvidia-smi's own per-process figure; the third starts once one ends. Prints one line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBQ_HOME=$(mktemp -d)
XDG_CONFIG_HOME=$(mktemp -d)
export JOBQ_HOME XDG_CONFIG_HOME
unset NODE_EXTRA_CA_CERTS
mkdir -p "$XDG_CONFIG_HOME/jobq"
echo '{"sampleInterval":"500ms"}' >"$XDG_CONFIG_HOME/jobq/config.json"
jq() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const j=JSON.parse(s);console.log($1)})"; }
cleanup() {
  bin/jobq cancel --all >/dev/null 2>&1 || true
  rm -rf "$JOBQ_HOME" "$XDG_CONFIG_HOME"
}
trap cleanup EXIT

nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
total=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0)
share=$((total * 2 / 5))
alloc=$((total * 3 / 10))
hold='import os,time,torch
x=torch.empty(int(os.environ["MIB"])*2**20, dtype=torch.uint8, device="cuda"); x.fill_(1); torch.cuda.synchronize()
print("held", os.environ["CUDA_VISIBLE_DEVICES"], flush=True); time.sleep(900)'
for n in a b c; do MIB=$alloc bin/jobq run "gpu-$n" -q --gpu-mem "${share}M" -- python3 -c "$hold"; done
held() { grep -q held "$(bin/jobq status "gpu-$1" --json | jq 'j.log')" 2>/dev/null; }
for _ in $(seq 120); do held a && held b && break; sleep 0.5; done
sleep 3 # a few samples after the allocation
echo "states: $(for n in a b c; do bin/jobq status "gpu-$n" --json | jq 'j.state.status'; done | xargs)"
echo "c waits: $(bin/jobq status gpu-c --json | jq 'j.waiting && j.waiting.reason')"
apps=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits)
for n in a b; do
  pid=$(bin/jobq status "gpu-$n" --json | jq 'j.job.pid')
  mine=$(bin/jobq status "gpu-$n" --json | jq 'j.vramBytes')
  smi=$(echo "$apps" | awk -F', ' -v p="$pid" '$1==p {s+=$2} END {print s*1048576}')
  echo "gpu-$n: jobq ${mine} B, nvidia-smi ${smi} B, ratio $(node -e "console.log(($mine/$smi).toFixed(4))")"
done
bin/jobq status gpu-a | grep -E 'needs gpus|gpu uuids|gpu memory'
t0=$(date +%s.%N)
bin/jobq cancel gpu-a >/dev/null
for _ in $(seq 120); do held c && break; sleep 0.25; done
echo "c started and allocated $(node -e "console.log(($(date +%s.%N)-$t0).toFixed(2))") s after a's cancel"
