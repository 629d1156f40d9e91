# e2b serve on every Nomad client: a system job, one node of the cluster per
# machine, all sharing the catalog of e2b-catalog.nomad.hcl.
#
#   nomad var put nomad/jobs/e2b cluster_secret="$(head -c 32 /dev/urandom | base64)" \
#       catalog_password="$(head -c 24 /dev/urandom | base64 | tr -d /+=)" \
#       api_keys=@/var/lib/e2b/serve/keys.json     # from `e2b key create` on any machine
#   nomad job run e2b-catalog.nomad.hcl
#   nomad job run e2b.nomad.hcl
#
# Each client needs the Debian package of e2b (`make deb`), which puts the
# binary at /usr/bin/e2b and the guest agent at /usr/lib/e2b/envd, and the
# raw_exec driver enabled: e2b makes namespaces, cgroups and mounts for its
# sandboxes, so it runs as root on the machine, as the systemd unit does.
# Clients reach each other on port 3000 (the API, envd traffic, and the
# signed calls between nodes); point the SDK's E2B_API_URL and
# E2B_SANDBOX_URL at any of them, or at a load balancer in front of all.
job "e2b" {
  type        = "system"
  datacenters = ["*"]

  update {
    max_parallel = 1 # one machine at a time; a restart within the lease keeps its sandboxes
  }

  group "node" {
    network {
      port "api" {
        static = 3000
      }
    }

    service {
      name     = "e2b"
      port     = "api"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "serve" {
      driver = "raw_exec"

      config {
        command = "/usr/bin/e2b"
        args = [
          "serve",
          "--listen", "0.0.0.0:3000",
          "--cluster", "${E2B_CATALOG}",
          "--node-address", "${NOMAD_IP_api}:3000",
          "--node-id", "${node.unique.name}",
          "--cluster-secret-file", "${NOMAD_SECRETS_DIR}/cluster-secret",
          "--lease", "10",
          "--keys", "${NOMAD_SECRETS_DIR}/keys.json",
        ]
      }

      # the catalog: wherever Nomad runs e2b-catalog
      template {
        destination = "local/catalog.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/e2b" }}{{ $pw := .catalog_password }}{{ range nomadService "e2b-catalog" }}E2B_CATALOG=redis://:{{ $pw }}@{{ .Address }}:{{ .Port }}{{ end }}{{ end }}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/cluster-secret"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/e2b\" }}{{ .cluster_secret }}{{ end }}"
      }

      # the API keys (hashes only), the same on every node
      template {
        destination = "${NOMAD_SECRETS_DIR}/keys.json"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/e2b\" }}{{ .api_keys }}{{ end }}"
      }

      env {
        E2B_DATA_DIR = "/var/lib/e2b"
      }

      # sandboxes outlive a restart of the task (their supervisors leave its cgroup)
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
