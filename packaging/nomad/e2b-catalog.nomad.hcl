# The catalog of the e2b cluster: one Redis (Debian's redis-server on the
# client that runs it), registered as the Nomad service "e2b-catalog" that
# e2b.nomad.hcl looks up. It holds only what the nodes renew every few
# seconds, so it keeps nothing on disk: after a restart the nodes register
# again within their lease time, and sandboxes of a node that does not are
# reported lost.
job "e2b-catalog" {
  type        = "service"
  datacenters = ["*"]

  group "catalog" {
    count = 1

    network {
      port "redis" {
        static = 6379
      }
    }

    service {
      name     = "e2b-catalog"
      port     = "redis"
      provider = "nomad"

      check {
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "redis" {
      driver = "raw_exec"

      config {
        command = "/usr/bin/redis-server"
        args    = ["${NOMAD_TASK_DIR}/redis.conf"]
      }

      # the password the nodes' catalog URL carries (nomad/jobs/e2b, see e2b.nomad.hcl)
      template {
        destination = "local/redis.conf"
        perms       = "0600"
        data        = <<-EOT
          bind {{ env "NOMAD_IP_redis" }}
          port 6379
          save ""
          appendonly no
          {{ with nomadVar "nomad/jobs/e2b" }}requirepass {{ .catalog_password }}{{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
