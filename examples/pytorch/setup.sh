#!/bin/sh
# Installs what the PyTorch example and its spec need, from Debian 12:
# python3-torch (brings python3-numpy; ~1 GB installed) and the Fashion-MNIST
# data. For the example and tests only: ipk itself never needs them.
# Run as root (or through sudo).
set -eu
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch python3-numpy dataset-fashion-mnist
/usr/bin/python3 -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'
