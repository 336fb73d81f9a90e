#include "replication/cluster/cluster_secret.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace sessiond {

Result<std::string> LoadClusterSecret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument(
        fmt::format("cannot read the cluster secret file '{}': {}", path, std::strerror(errno)));
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!secret.empty() && std::strchr(" \t\r\n", secret.back()) != nullptr) secret.pop_back();
  if (secret.size() < kMinClusterSecretBytes) {
    return InvalidArgument(fmt::format(
        "the cluster secret in '{}' is {} bytes long; use at least {} random bytes (for "
        "example `openssl rand -base64 32 > {}`) and the same file on every node",
        path, secret.size(), kMinClusterSecretBytes, path));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    spdlog::warn("cluster secret file '{}' is accessible to group or others; chmod 600 it", path);
  }
  return secret;
}

}  // namespace sessiond
