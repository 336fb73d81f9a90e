#include "tools/bench/workload_options.h"

#include <charconv>
#include <vector>

namespace sessiond::bench {

Result<OpMix> OpMix::Parse(std::string_view text) {
  std::vector<std::string_view> tokens;
  for (size_t start = 0;;) {
    const size_t colon = text.find(':', start);
    tokens.push_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  std::vector<int> parts;
  for (std::string_view token : tokens) {
    int value = -1;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (token.empty() || ec != std::errc() || ptr != token.data() + token.size() || value < 0) {
      break;
    }
    parts.push_back(value);
  }
  if (tokens.size() != 3 || parts.size() != 3 || parts[0] + parts[1] + parts[2] <= 0) {
    return InvalidArgument(
        "--mix must be read:write:create as three non-negative whole numbers "
        "with a positive sum, e.g. 80:15:5; got \"" +
        std::string(text) + "\"");
  }
  return OpMix{parts[0], parts[1], parts[2]};
}

std::string OpMix::ToString() const {
  return std::to_string(read) + ":" + std::to_string(write) + ":" + std::to_string(create);
}

}  // namespace sessiond::bench
