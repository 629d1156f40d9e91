# E2B's base template: Debian 12 with Python, Node.js, git, curl and sudo.
# The `user` account (passwordless sudo) is added by e2b template build.
#   e2b template build -n base templates/base
# RUN steps have no network unless they ask for it (--network=host here, or
# `e2b template build --network host` for every step). BASE names another
# Debian 12 image (a mirror, say): --build-arg BASE=registry.local/debian:12
ARG BASE=debian:12
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8
RUN --network=host apt-get update && \
    apt-get install -y --no-install-recommends \
        ca-certificates curl git sudo python3 python3-pip python3-venv nodejs npm \
        procps iproute2 less && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /home/user
