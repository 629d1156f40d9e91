# A minimal template: busybox's shell and tools.
FROM busybox:1.36
RUN mkdir -p /etc/sudoers.d /home
WORKDIR /
