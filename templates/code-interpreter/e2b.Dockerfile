# E2B's code interpreter (`code-interpreter-v1`, the default template of the
# @e2b/code-interpreter SDK): Debian 12 with Jupyter kernels for Python
# (python3-ipykernel, numpy, pandas, matplotlib), JavaScript (Node.js) and
# bash, and the code-interpreter server of the guest binary on port 49999.
#
#   e2b template build -n code-interpreter-v1 \
#       --cmd '/run/e2b/envd code-interpreter' \
#       --ready-cmd 'curl -sf http://127.0.0.1:49999/health' templates/code-interpreter
#
# BASE names the Debian 12 image: debian:12 from a registry, or a local one
# (tools/debian-image.sh makes one with debootstrap when no registry is
# reachable): --build-arg BASE=oci:/var/cache/e2b/debian-bookworm:bookworm
# With r-cran-irkernel in the image (--build-arg R=r-cran-irkernel) R
# contexts work too.
ARG BASE=debian:12
FROM ${BASE}
ARG R=
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8
RUN --network=host apt-get update && \
    apt-get install -y --no-install-recommends \
        ca-certificates curl sudo procps less git \
        python3 python3-ipykernel python3-numpy python3-pandas python3-matplotlib \
        nodejs ${R} && \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# Kernel specs for JavaScript and bash (wrapper kernels on ipykernel's kernel
# base: Debian packages no Jupyter kernel for either), IPython's settings and
# the formatters that fill E2B's `data` and `chart` fields.
COPY kernels/ /usr/local/share/jupyter/kernels/
COPY lib/ /usr/local/lib/e2b-kernels/
COPY ipython/ /etc/ipython/
WORKDIR /home/user
