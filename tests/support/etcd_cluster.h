#pragma once

// A real etcd (Debian's etcd-server, 3.4) of one or more members on loopback ports, each with
// its data in the test's directory; started by the test that makes it and ended by PID, even
// when the test fails. Members can be killed and started again to test what the agent does then.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvstore/etcd_client.h"
#include "tests/support/free_port.h"
#include "tests/support/temp_dir.h"

namespace bulkhead::testing {

class EtcdCluster {
 public:
  static constexpr const char* Binary = "/usr/bin/etcd";
  static bool available() { return ::access(Binary, X_OK) == 0; }

  // TLS for the client URLs (https), with client certificates required: the files etcd gets
  // (its own certificate and the CA that signed the clients') and those a client needs.
  struct Tls {
    std::string caFile;
    std::string serverCert;
    std::string serverKey;
    std::string clientCert;
    std::string clientKey;
  };

  EtcdCluster(const TempDir& dir, int members, std::optional<Tls> tls = std::nullopt)
      : dir_(dir), tls_(std::move(tls)) {
    for (int i = 0; i < members; ++i) {
      members_.push_back({"m" + std::to_string(i), freePort(), freePort(), -1});
    }
    for (const Member& member : members_) {
      initialCluster_ += (initialCluster_.empty() ? "" : ",") + member.name +
                         "=http://127.0.0.1:" + std::to_string(member.peerPort);
    }
    for (size_t i = 0; i < members_.size(); ++i) {
      start(i);
    }
  }
  ~EtcdCluster() {
    for (size_t i = 0; i < members_.size(); ++i) {
      stop(i, SIGKILL);
    }
  }
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  std::string clientUrl(size_t member) const {
    return std::string(tls_ ? "https" : "http") +
           "://127.0.0.1:" + std::to_string(members_[member].clientPort);
  }
  // A client of every member (or one), with the client certificate when there is TLS.
  kvstore::EtcdOptions clientOptions(int member = -1) const {
    kvstore::EtcdOptions options;
    options.endpoints = member < 0 ? clientUrls() : std::vector{clientUrl(member)};
    options.timeoutSeconds = 2;
    if (tls_) {
      options.caFile = tls_->caFile;
      options.certFile = tls_->clientCert;
      options.keyFile = tls_->clientKey;
    }
    return options;
  }
  std::vector<std::string> clientUrls() const {
    std::vector<std::string> urls;
    for (size_t i = 0; i < members_.size(); ++i) {
      urls.push_back(clientUrl(i));
    }
    return urls;
  }

  // Starts (or starts again, on its data) one member.
  void start(size_t index) {
    Member& member = members_[index];
    const std::string client = clientUrl(index);
    const std::string peer = "http://127.0.0.1:" + std::to_string(member.peerPort);
    std::vector<std::string> args = {
        Binary, "--name=" + member.name, "--data-dir=" + dir_.file("etcd-" + member.name),
        "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
        "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
        "--initial-cluster=" + initialCluster_, "--initial-cluster-token=bulkhead-test",
        "--initial-cluster-state=new",
        // elections in a second, not five: faults resolve quickly
        "--heartbeat-interval=50", "--election-timeout=500", "--logger=zap",
        "--log-outputs=" + dir_.file("etcd-" + member.name + ".log")};
    if (tls_) {
      args.insert(args.end(), {"--cert-file=" + tls_->serverCert, "--key-file=" + tls_->serverKey,
                               "--trusted-ca-file=" + tls_->caFile, "--client-cert-auth"});
    }
    std::vector<char*> argv;
    for (auto& arg : args) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    const std::string output = dir_.file("etcd-" + member.name + ".out");
    const pid_t parent = ::getpid();
    member.pid = ::fork();
    if (member.pid == 0) {
      // Dies with the test, even one that crashed; and holds none of its pipes open (ctest
      // would wait for them).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) {
        ::_exit(127);
      }
      const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      ::dup2(null, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execv(Binary, argv.data());
      ::_exit(127);
    }
  }

  // Ends one member by its PID (SIGKILL: as a crash; SIGTERM: as a clean stop).
  void stop(size_t index, int signal = SIGKILL) {
    Member& member = members_[index];
    if (member.pid <= 0) {
      return;
    }
    ::kill(member.pid, signal);
    int status = 0;
    for (int i = 0; i < 100 && ::waitpid(member.pid, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (::waitpid(member.pid, &status, WNOHANG) == 0) {
      ::kill(member.pid, SIGKILL);
      ::waitpid(member.pid, &status, 0);
    }
    member.pid = -1;
  }

  // True once a write through `member` (or any member) is accepted, within `seconds`.
  bool ready(int seconds = 30, int member = -1) const {
    const kvstore::EtcdClient client(clientOptions(member));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string error;
      if (client.put("/bulkhead-test/ready", "1", 0, &error)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string log(size_t member) const {
    return readFile(dir_.file("etcd-" + members_[member].name + ".log")) +
           readFile(dir_.file("etcd-" + members_[member].name + ".out"));
  }

 private:
  struct Member {
    std::string name;
    int clientPort;
    int peerPort;
    pid_t pid;
  };

  const TempDir& dir_;
  std::optional<Tls> tls_;
  std::vector<Member> members_;
  std::string initialCluster_;
};

}  // namespace bulkhead::testing
