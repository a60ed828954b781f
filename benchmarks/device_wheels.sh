#!/usr/bin/env bash
# Fetch the wheels that benchmarks/device_run.sh installs on the GPU machine, which has no network: its image (Python
# 3.12) has torch, transformers, peft and accelerate, not trl, datasets, liger-kernel or pydantic; pyarrow is carried
# for datasets. cp312 manylinux builds into .whl/ (ignored by git, 58 MiB of the 64 MiB a call may carry).
# Then: run(command="bash benchmarks/device_run.sh", carry=[".whl"], timeout_s=590).
set -eu
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
rm -rf .whl && mkdir .whl
PLATFORMS=""
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  PLATFORMS="$PLATFORMS --platform ${tag}_x86_64"
done
for spec in trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 liger_kernel==0.8.5 pyarrow==26.0.1 \
            pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0 typing_inspection==0.4.5; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS \
    -d .whl "$spec"
done
ls .whl && du -sh .whl
