#include "controlplane/policy_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "text/sha256.h"

namespace bulkhead::controlplane {

namespace fs = std::filesystem;

std::unique_ptr<PolicyWatcher> PolicyWatcher::open(const std::vector<std::string>& paths,
                                                   std::string* error, uint64_t settleMs) {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    *error = std::string("inotify: ") + std::strerror(errno);
    return nullptr;
  }
  constexpr uint32_t Events =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;
  std::vector<std::string> files;
  bool anyName = false;
  for (const auto& path : paths) {
    std::error_code ec;
    // A file is watched through its directory: editors replace files by renaming, which a watch
    // on the file itself would lose.
    const bool directory = fs::is_directory(path, ec);
    const std::string watched = directory ? path : fs::path(path).parent_path().string();
    if (directory) {
      anyName = true;  // any file in a watched directory may be a policy
    } else {
      files.push_back(fs::path(path).filename().string());
    }
    if (inotify_add_watch(fd, watched.empty() ? "." : watched.c_str(), Events) < 0) {
      *error = "cannot watch " + watched + ": " + std::strerror(errno);
      ::close(fd);
      return nullptr;
    }
  }
  if (anyName) {
    files.clear();
  }
  return std::unique_ptr<PolicyWatcher>(new PolicyWatcher(fd, std::move(files), settleMs));
}

PolicyWatcher::~PolicyWatcher() {
  ::close(fd_);
}

bool PolicyWatcher::poll(uint64_t nowMs) {
  alignas(inotify_event) char buffer[4096];
  for (;;) {
    const ssize_t length = ::read(fd_, buffer, sizeof(buffer));
    if (length <= 0) {
      break;
    }
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      const std::string name = event->len > 0 ? event->name : "";
      const bool relevant =
          files_.empty() || std::find(files_.begin(), files_.end(), name) != files_.end();
      if (relevant && !name.starts_with('.')) {  // editors' swap and temp files start with '.'
        pending_ = true;
        lastEventMs_ = nowMs;
      }
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
  if (pending_ && nowMs - lastEventMs_ >= settleMs_) {
    pending_ = false;
    return true;
  }
  return false;
}

std::string policyDigest(const std::vector<std::string>& files) {
  return policyDigest(files, {});
}

std::string policyDigest(const std::vector<std::string>& files,
                         const std::vector<rules::PolicyText>& texts) {
  text::Sha256 digest;
  // Length-prefixed so that moving text between files changes the digest.
  const auto add = [&](const std::string& name, const std::string& content) {
    digest.update(name + "\n" + std::to_string(content.size()) + "\n");
    digest.update(content);
  };
  for (const auto& file : files) {
    if (std::any_of(texts.begin(), texts.end(),
                    [&](const rules::PolicyText& text) { return text.name == file; })) {
      continue;  // a source that is no file: its text is added below
    }
    std::ifstream in(file, std::ios::binary);
    add(file, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  }
  for (const auto& text : texts) {
    add(text.name, text.text);
  }
  return digest.hex();
}

}  // namespace bulkhead::controlplane
