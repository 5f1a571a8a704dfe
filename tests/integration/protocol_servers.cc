#include "tests/integration/protocol_servers.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/integration/host_tools.h"

namespace bulkhead::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* PostgresBin = "/usr/lib/postgresql/15/bin/";
constexpr const char* RabbitBin = "/usr/lib/rabbitmq/bin/";

void run(const std::vector<std::string>& argv, const std::string& what, int timeoutSeconds = 60) {
  const CommandResult result = runTool(argv, timeoutSeconds);
  if (result.exitCode != 0) {
    throw std::runtime_error(what + " failed (" + joined(argv) + "): " + result.out + result.err);
  }
}

void writeFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  chmod(path.c_str(), mode);
}

}  // namespace

ProtocolServers::ProtocolServers(Lab& lab, const Host& host) : lab_(lab), host_(host) {
  // Some servers (PostgreSQL) run as their own user and must reach their directory inside.
  chmod(lab_.dir().path().c_str(), 0711);
}

std::string ProtocolServers::missingProgram() {
  for (const std::string program : {"nginx",
                                    "openssl",
                                    "dnsmasq",
                                    "dig",
                                    "sshd",
                                    "ssh",
                                    "ssh-keygen",
                                    "psql",
                                    "mariadbd",
                                    "mariadb",
                                    "mariadb-install-db",
                                    "redis-server",
                                    "redis-cli",
                                    "memcached",
                                    "memccp",
                                    "memcstat",
                                    "mosquitto",
                                    "mosquitto_pub",
                                    "smtpd",
                                    "swaks",
                                    "amqp-publish",
                                    "epmd",
                                    "curl",
                                    "tcpdump",
                                    "runuser"}) {
    if (findOnPath(program).empty()) {
      return program;
    }
  }
  for (const std::string& path :
       {std::string(PostgresBin) + "postgres", std::string(PostgresBin) + "initdb",
        std::string(RabbitBin) + "rabbitmq-server"}) {
    if (!fs::exists(path)) {
      return path;
    }
  }
  return "";
}

std::string ProtocolServers::directory(const std::string& name) {
  const std::string path = lab_.dir().file(host_.role + "-" + name);
  fs::create_directories(path);
  return path;
}

void ProtocolServers::awaitTcp(uint16_t port, int timeoutSeconds, Process& process,
                               const std::string& what) {
  const std::string probe = "exec 3<>/dev/tcp/" + host_.ip + "/" + std::to_string(port);
  const bool up = waitFor(
      [&] {
        return process.running() && lab_.exec(host_, {"bash", "-c", probe}, 5).exitCode == 0;
      },
      timeoutSeconds);
  if (!up) {
    throw std::runtime_error(what + " did not accept connections on " + host_.ip + ":" +
                             std::to_string(port) + " within " + std::to_string(timeoutSeconds) +
                             " s: " + process.log());
  }
}

void ProtocolServers::http(uint16_t port) {
  const std::string dir = directory("nginx");
  fs::create_directories(dir + "/www");
  writeFile(dir + "/www/index.html", "hello from nginx\n");
  const std::string temp = dir + "/tmp";
  writeFile(dir + "/nginx.conf", "daemon off;\nworker_processes 1;\npid " + dir +
                                     "/nginx.pid;\nerror_log stderr;\n"
                                     "events { worker_connections 64; }\n"
                                     "http {\n  access_log off;\n  client_body_temp_path " +
                                     temp +
                                     "_body;\n"
                                     "  proxy_temp_path " +
                                     temp + "_proxy;\n  fastcgi_temp_path " + temp +
                                     "_fastcgi;\n"
                                     "  uwsgi_temp_path " +
                                     temp + "_uwsgi;\n  scgi_temp_path " + temp +
                                     "_scgi;\n"
                                     "  server { listen " +
                                     host_.ip + ":" + std::to_string(port) + "; root " + dir +
                                     "/www; }\n}\n");
  auto& process =
      lab_.spawn(&host_, {"nginx", "-c", dir + "/nginx.conf", "-e", "stderr"}, "nginx.log");
  awaitTcp(port, 10, process, "nginx");
}

void ProtocolServers::tls(uint16_t port, const std::string& name) {
  const std::string dir = directory("tls");
  run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem",
       "-out", dir + "/cert.pem", "-days", "2", "-subj", "/CN=" + name},
      "making a certificate");
  auto& process =
      lab_.spawn(&host_,
                 {"openssl", "s_server", "-accept", host_.ip + ":" + std::to_string(port), "-cert",
                  dir + "/cert.pem", "-key", dir + "/key.pem", "-www", "-quiet"},
                 "tls-server.log");
  awaitTcp(port, 10, process, "openssl s_server");
}

void ProtocolServers::dns(uint16_t port) {
  const std::string dir = directory("dnsmasq");
  auto& process = lab_.spawn(
      &host_,
      {"dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--log-facility=-",
       "--listen-address=" + host_.ip, "--bind-interfaces", "--port=" + std::to_string(port),
       "--address=/matrix.test/10.9.9.9", "--pid-file=" + dir + "/dnsmasq.pid", "--user=root"},
      "dnsmasq.log");
  awaitTcp(port, 10, process, "dnsmasq");
}

void ProtocolServers::ssh(uint16_t port) {
  const std::string dir = directory("sshd");
  fs::create_directories("/run/sshd");  // sshd's privilege separation directory
  run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir + "/host_key"}, "ssh-keygen");
  sshKey_ = dir + "/client_key";
  run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshKey_}, "ssh-keygen");
  fs::copy_file(sshKey_ + ".pub", dir + "/authorized_keys", fs::copy_options::overwrite_existing);
  writeFile(dir + "/sshd_config",
            "ListenAddress " + host_.ip + ":" + std::to_string(port) + "\nHostKey " + dir +
                "/host_key\nPermitRootLogin yes\nAuthorizedKeysFile " + dir +
                "/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                "PidFile " +
                dir + "/sshd.pid\n");
  auto& process =
      lab_.spawn(&host_, {"/usr/sbin/sshd", "-D", "-e", "-f", dir + "/sshd_config"}, "sshd.log");
  awaitTcp(port, 10, process, "sshd");
}

void ProtocolServers::postgres(uint16_t port) {
  const std::string dir = directory("postgres");
  const passwd* user = getpwnam("postgres");
  if (user == nullptr) {
    throw std::runtime_error("PostgreSQL: there is no 'postgres' user (postgresql installs it)");
  }
  if (chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
    throw std::runtime_error("PostgreSQL: cannot hand " + dir + " to postgres");
  }
  run({"runuser", "-u", "postgres", "--", std::string(PostgresBin) + "initdb", "-D", dir + "/data",
       "-U", "postgres", "--auth=trust", "--no-sync"},
      "initdb");
  std::ofstream(dir + "/data/pg_hba.conf", std::ios::app) << "host all all 0.0.0.0/0 trust\n";
  auto& process =
      lab_.spawn(&host_,
                 {"runuser", "-u", "postgres", "--", std::string(PostgresBin) + "postgres", "-D",
                  dir + "/data", "-k", dir, "-h", host_.ip, "-p", std::to_string(port)},
                 "postgres.log");
  awaitTcp(port, 20, process, "PostgreSQL");
}

void ProtocolServers::mariadb(uint16_t port) {
  const std::string dir = directory("mariadb");
  run({"mariadb-install-db", "--no-defaults", "--datadir=" + dir + "/data", "--user=root",
       "--auth-root-authentication-method=normal", "--skip-test-db"},
      "mariadb-install-db", 120);
  auto& process = lab_.spawn(
      &host_,
      {"mariadbd", "--no-defaults", "--datadir=" + dir + "/data", "--socket=" + dir + "/sock",
       "--pid-file=" + dir + "/pid", "--bind-address=" + host_.ip, "--port=" + std::to_string(port),
       "--user=root", "--skip-grant-tables", "--skip-log-bin"},
      "mariadb.log");
  awaitTcp(port, 30, process, "MariaDB");
}

void ProtocolServers::redis(uint16_t port) {
  const std::string dir = directory("redis");
  auto& process = lab_.spawn(
      &host_,
      {"redis-server", "--port", std::to_string(port), "--bind", host_.ip, "--save", "",
       "--appendonly", "no", "--protected-mode", "no", "--dir", dir, "--daemonize", "no"},
      "redis.log");
  awaitTcp(port, 10, process, "redis-server");
}

void ProtocolServers::memcached(uint16_t port) {
  auto& process = lab_.spawn(
      &host_, {"memcached", "-u", "root", "-l", host_.ip, "-p", std::to_string(port), "-U", "0"},
      "memcached.log");
  awaitTcp(port, 10, process, "memcached");
}

void ProtocolServers::mqtt(uint16_t port) {
  const std::string dir = directory("mosquitto");
  writeFile(dir + "/mosquitto.conf", "listener " + std::to_string(port) + " " + host_.ip +
                                         "\nallow_anonymous true\npersistence false\n");
  auto& process = lab_.spawn(&host_, {"mosquitto", "-c", dir + "/mosquitto.conf"}, "mosquitto.log");
  awaitTcp(port, 10, process, "mosquitto");
}

void ProtocolServers::smtp(uint16_t port) {
  const std::string dir = directory("smtpd");
  // smtpd refuses a configuration others may write to.
  writeFile(dir + "/smtpd.conf",
            "listen on " + host_.ip + " port " + std::to_string(port) +
                "\naction \"deliver\" maildir \"" + dir +
                "/maildir\"\n"
                "match from any for any action \"deliver\"\n",
            0600);
  auto& process = lab_.spawn(&host_, {"smtpd", "-d", "-f", dir + "/smtpd.conf"}, "smtpd.log");
  awaitTcp(port, 15, process, "OpenSMTPD");
}

void ProtocolServers::amqp(uint16_t port) {
  const std::string dir = directory("rabbitmq");
  // rabbitmq-server would start epmd as a daemon that outlives the lab; run it as a lab process.
  lab_.spawn(&host_, {"epmd"}, "epmd.log");
  writeFile(dir + "/rabbitmq.conf", "loopback_users = none\nlisteners.tcp.1 = " + host_.ip + ":" +
                                        std::to_string(port) + "\n");
  writeFile(dir + "/enabled_plugins", "[].\n");
  auto& process =
      lab_.spawn(&host_,
                 {"env", "HOME=" + dir, "RABBITMQ_CONFIG_FILE=" + dir + "/rabbitmq",
                  "RABBITMQ_MNESIA_BASE=" + dir + "/mnesia", "RABBITMQ_LOG_BASE=" + dir + "/log",
                  "RABBITMQ_NODENAME=rabbit@localhost",
                  "RABBITMQ_ENABLED_PLUGINS_FILE=" + dir + "/enabled_plugins",
                  "RABBITMQ_PID_FILE=" + dir + "/pid", std::string(RabbitBin) + "rabbitmq-server"},
                 "rabbitmq.log");
  awaitTcp(port, 60, process, "RabbitMQ");
}

}  // namespace bulkhead::testing
