# E2B's base template: Debian 12 with Python, Node.js, git, curl and sudo.
# The `user` account (passwordless sudo) is added by e2b template build.
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8
RUN apt-get update && \
    apt-get install -y --no-install-recommends \
        ca-certificates curl git sudo python3 python3-pip python3-venv nodejs npm \
        procps iproute2 less && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /home/user
