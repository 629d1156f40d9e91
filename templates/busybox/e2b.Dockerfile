# A minimal template: busybox's shell and tools.
#   e2b template build -n busybox templates/busybox
# BASE names another busybox image: --build-arg BASE=127.0.0.1:5000/busybox:1
ARG BASE=busybox:1.36
FROM ${BASE}
RUN mkdir -p /etc/sudoers.d /home
WORKDIR /
